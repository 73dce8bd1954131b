"""Family link pages (亲情通): kiosk invites, redeeming on a phone, the family home, admin.

- The kiosk's own screen (``/kiosk/family``): a villager picks the household, types its PIN and
  gets a one-time invite code with a QR code of the phone link. These pages answer 404 to any
  other client: the PIN can be tried only by someone standing at the kiosk.
- A phone (``/family/join``): the code, then a new family account or the signed-in one; the
  account is linked and lands on ``/family``.
- ``/family``: the households of a family account and a live player per linked camera.
- ``/admin/households``: households, their cameras, PIN and members, for the admin.

The code travels only in the QR link and the redeem form; access logs are off, so it reaches
no log. PIN checks and new passwords are hashed through the password-check gate, which bounds
argon2's memory like sign-ins do.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

import segno
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from agent.accounts import Role, check_password, check_username
from agent.errors import ValidationError
from agent.village.family import (
    AttemptsPausedError,
    FamilyService,
    Household,
    HouseholdNotFoundError,
    Invite,
)
from web_ui.context import WebContext
from web_ui.errors import NotFoundError
from web_ui.i18n import Translator
from web_ui.params import RecordId
from web_ui.rendering import client_address, is_kiosk_screen, render, translator
from web_ui.routes.auth import password_gate
from web_ui.routes.status import camera_summaries
from web_ui.security import SESSION_COOKIE, Principal, public, require_roles, web_context
from web_ui.throttle import GateBusyError

router = APIRouter()

T = TypeVar("T")
_MAX_FIELD = 256
_BUSY_RETRY_SECONDS = "1"
_NOTICES = frozenset({"linked", "left", "created", "saved", "pin_set", "removed", "deleted"})
_LOOPBACK_NAMES = frozenset({"localhost", "testserver"})


# -- helpers -------------------------------------------------------------------------------------


def _family(request: Request) -> FamilyService:
    return web_context(request).family


def _text(form: FormData, name: str, limit: int = _MAX_FIELD) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _error_text(t: Translator, error: ValidationError) -> str:
    return t.error_message(error.message)


def _notice(request: Request) -> str | None:
    done = request.query_params.get("done", "")
    return translator(request)(f"family.notice.{done}") if done in _NOTICES else None


async def _gated(request: Request, function: Callable[..., T], *args: Any) -> T:
    """Run an argon2 hash or check in the app's password-check gate (bounded memory)."""
    return await password_gate(request).run(function, *args)


def _busy(request: Request, principal: Principal, template: str, **context: Any) -> Response:
    response = render(
        request,
        template,
        principal,
        status_code=429,
        error=translator(request)("error.auth.busy"),
        **context,
    )
    response.headers["Retry-After"] = _BUSY_RETRY_SECONDS
    return response


def _not_on_this_screen(request: Request, principal: Principal) -> Response:
    """Kiosk pages from anywhere but the kiosk's own screen: as if they did not exist."""
    message = translator(request)("family.kiosk_only")
    return render(request, "error.html", principal, status_code=404, status=404, message=message)


def phone_base_url(context: WebContext, request: Request) -> str:
    """Where a phone reaches this kiosk: the first non-loopback name in ``web.allowed_hosts``
    (HTTPS on the agent's port, or on 443 behind a configured TLS proxy), else the address the
    request came in on."""
    web = context.config.web
    for name in web.allowed_hosts:
        host = name.strip().lower()
        if not host or host in _LOOPBACK_NAMES:
            continue
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            address = None
        if address is not None and address.is_loopback:
            continue
        if address is not None and address.version == 6:
            host = f"[{address}]"
        if web.https:
            return f"https://{host}:{web.port}"
        if web.trusted_proxies:
            return f"https://{host}"
        return f"http://{host}:{web.port}"
    return f"{request.url.scheme}://{request.url.netloc}"


def join_link(context: WebContext, request: Request, code: str) -> str:
    return f"{phone_base_url(context, request)}/family/join?{urlencode({'code': code})}"


def qr_svg(link: str, title: str) -> str:
    """The link as an inline SVG QR code (drawn here: the kiosk has no internet to fetch one)."""
    code = segno.make(link, error="m")
    svg: str = code.svg_inline(
        scale=1, border=2, omitsize=True, title=title, svgclass="qr", lineclass=None
    )
    return svg


def _set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=web_context(request).config.web.secure_cookies,
        path="/",
    )


def _own_household(family: FamilyService, principal: Principal, household_id: int) -> Household:
    """A household of the signed-in family account; any other answers 404."""
    for household in family.households_of(str(principal.username)):
        if household.id == household_id:
            return household
    raise NotFoundError("household")


def _household_or_404(family: FamilyService, household_id: int) -> Household:
    try:
        return family.get_household(household_id)
    except HouseholdNotFoundError as exc:
        raise NotFoundError("household") from exc


# -- the kiosk's own screen ----------------------------------------------------------------------


@router.get("/kiosk/family", include_in_schema=False)
def kiosk_households(request: Request, principal: Annotated[Principal, public()]) -> Response:
    if not is_kiosk_screen(request):
        return _not_on_this_screen(request, principal)
    households = _family(request).list_households()
    return render(request, "family_kiosk.html", principal, households=households)


def _render_pin(
    request: Request,
    principal: Principal,
    household: Household,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "family_kiosk_pin.html",
        principal,
        status_code=status_code,
        household=household,
        error=error,
    )


@router.get("/kiosk/family/{household_id}", include_in_schema=False)
def kiosk_pin(
    request: Request, household_id: RecordId, principal: Annotated[Principal, public()]
) -> Response:
    if not is_kiosk_screen(request):
        return _not_on_this_screen(request, principal)
    household = _household_or_404(_family(request), household_id)
    return _render_pin(request, principal, household)


@router.post("/kiosk/family/{household_id}/invite", include_in_schema=False)
async def kiosk_invite(
    request: Request, household_id: RecordId, principal: Annotated[Principal, public()]
) -> Response:
    """The household PIN; the answer shows the invite code once (never a redirect, so the code
    sits in no URL and no history entry)."""
    if not is_kiosk_screen(request):
        return _not_on_this_screen(request, principal)
    context = web_context(request)
    household = await run_in_threadpool(_household_or_404, context.family, household_id)
    form = await request.form()
    pin = _text(form, "pin", 32)
    t = translator(request)
    make = functools.partial(
        context.family.create_invite,
        household_id,
        pin,
        address=client_address(request),
        actor=principal.actor,
    )
    try:
        invite: Invite = await _gated(request, make)
    except GateBusyError:
        return _busy(request, principal, "family_kiosk_pin.html", household=household)
    except HouseholdNotFoundError as exc:
        raise NotFoundError("household") from exc
    except AttemptsPausedError as exc:
        response = _render_pin(
            request, principal, household, error=_error_text(t, exc), status_code=429
        )
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    except ValidationError as exc:
        return _render_pin(
            request, principal, household, error=_error_text(t, exc), status_code=422
        )
    link = join_link(context, request, invite.code)
    return render(
        request,
        "family_kiosk_invite.html",
        principal,
        invite=invite,
        link=link,
        qr=qr_svg(link, t("family.invite.qr_title")),
        minutes=max(1, round((invite.expires_at - time.time()) / 60)),
    )


# -- the phone: redeeming a code -----------------------------------------------------------------


def _render_join(
    request: Request,
    principal: Principal,
    *,
    code: str = "",
    username: str = "",
    error: str | None = None,
    error_field: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "family_join.html",
        principal,
        status_code=status_code,
        code=code,
        username=username,
        error=error,
        error_field=error_field,
        on_kiosk=is_kiosk_screen(request),
        login_link="/login?next=" + quote("/family/join?" + urlencode({"code": code}), safe=""),
    )


@router.get("/family/join", include_in_schema=False)
def join_page(
    request: Request, principal: Annotated[Principal, public()], code: str = ""
) -> Response:
    return _render_join(request, principal, code=code[:32])


@router.post("/family/join", include_in_schema=False)
async def join_submit(request: Request, principal: Annotated[Principal, public()]) -> Response:
    """Redeem a code: the signed-in family account, or a new family account made here."""
    context = web_context(request)
    form = await request.form()
    code = _text(form, "code", 32)
    username = _text(form, "username", 64).lower() if principal.role is None else ""
    t = translator(request)
    address = client_address(request)

    def refused(exc: ValidationError, status: int = 422) -> Response:
        response = _render_join(
            request,
            principal,
            code=code,
            username=username,
            error=_error_text(t, exc),
            error_field=exc.field,
            status_code=status,
        )
        if isinstance(exc, AttemptsPausedError):
            response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response

    if principal.role is not None:
        if principal.role is not Role.FAMILY:
            return refused(ValidationError("username", "link.wrong_role"))
        try:
            await run_in_threadpool(
                functools.partial(
                    context.family.redeem,
                    code,
                    str(principal.username),
                    address=address,
                    detail="signed-in account",
                )
            )
        except AttemptsPausedError as exc:
            return refused(exc, 429)
        except ValidationError as exc:
            return refused(exc)
        return RedirectResponse("/family?done=linked", status_code=303)

    # A new family account: checked, the code checked, the account made, then the link.
    password = str(form.get("password", ""))[:_MAX_FIELD]
    again = str(form.get("password_again", ""))[:_MAX_FIELD]
    try:
        check_username(username)
        check_password(password, username=username)
        if password != again:
            raise ValidationError("password_again", "family.password_mismatch")
        await run_in_threadpool(
            functools.partial(context.family.preview_invite, code, address=address)
        )
    except AttemptsPausedError as exc:
        return refused(exc, 429)
    except ValidationError as exc:
        return refused(exc)
    create = functools.partial(
        context.accounts.create_user, username, Role.FAMILY.value, password, actor=username
    )
    try:
        await _gated(request, create)
    except GateBusyError:
        return _busy(
            request,
            principal,
            "family_join.html",
            code=code,
            username=username,
            error_field=None,
            on_kiosk=is_kiosk_screen(request),
            login_link="/login",
        )
    except ValidationError as exc:
        return refused(exc)
    try:
        await run_in_threadpool(
            functools.partial(
                context.family.redeem, code, username, address=address, detail="new account"
            )
        )
    except ValidationError as exc:
        # Another phone used the code a moment earlier: the account made for it goes again,
        # so one code never leaves more than one account behind.
        await run_in_threadpool(
            functools.partial(context.accounts.delete_user, username, actor=username)
        )
        return refused(exc)
    account = context.accounts.get_user(username)
    if account is None:  # deleted by an admin within this moment
        return refused(ValidationError("code", "code.invalid"))
    grant = await run_in_threadpool(
        functools.partial(context.accounts.start_session, account, kiosk=is_kiosk_screen(request))
    )
    response = RedirectResponse("/family?done=linked", status_code=303)
    _set_session_cookie(request, response, grant.token)
    return response


# -- the family home -----------------------------------------------------------------------------


@router.get("/family", include_in_schema=False)
def family_home(
    request: Request, principal: Annotated[Principal, require_roles(Role.FAMILY)]
) -> Response:
    context = web_context(request)
    households = context.family.households_of(str(principal.username))
    allowed = context.family.cameras_for(str(principal.username))
    names = {camera.id: camera.name for camera in camera_summaries(context)}
    cameras = {
        household.id: [
            {"id": camera_id, "name": names.get(camera_id, camera_id)}
            for camera_id in household.camera_ids
            if camera_id in allowed
        ]
        for household in households
    }
    return render(
        request,
        "family_home.html",
        principal,
        households=households,
        cameras=cameras,
        notice=_notice(request),
    )


@router.post("/family/households/{household_id}/leave", include_in_schema=False)
def family_leave(
    request: Request,
    household_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.FAMILY)],
) -> Response:
    family = _family(request)
    household = _own_household(family, principal, household_id)
    family.leave(household.id, str(principal.username))
    return RedirectResponse("/family?done=left", status_code=303)


# -- admin ---------------------------------------------------------------------------------------


def _camera_choices(context: WebContext) -> list[dict[str, str]]:
    names = {camera.id: camera.name for camera in camera_summaries(context)}
    for camera in context.config.cameras:
        names.setdefault(camera.id, camera.name)
    return [
        {"id": camera_id, "name": names.get(camera_id, camera_id)}
        for camera_id in sorted(context.family.camera_ids)
    ]


def _render_admin_list(
    request: Request,
    principal: Principal,
    *,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    error_field: str | None = None,
    status_code: int = 200,
) -> Response:
    context = web_context(request)
    return render(
        request,
        "admin_households.html",
        principal,
        status_code=status_code,
        households=context.family.list_households(),
        camera_choices=_camera_choices(context),
        values=values or {"cameras": []},
        error=error,
        error_field=error_field,
        notice=_notice(request),
    )


@router.get("/admin/households", include_in_schema=False)
def admin_households(
    request: Request, principal: Annotated[Principal, require_roles(Role.ADMIN)]
) -> Response:
    return _render_admin_list(request, principal)


def _pin_pair(form: FormData) -> str:
    pin, again = _text(form, "pin", 32), _text(form, "pin_again", 32)
    if pin != again:
        raise ValidationError("pin_again", "family.pin_mismatch")
    return pin


@router.post("/admin/households", include_in_schema=False)
async def admin_create_household(
    request: Request, principal: Annotated[Principal, require_roles(Role.ADMIN)]
) -> Response:
    context = web_context(request)
    form = await request.form()
    cameras = [value for value in form.getlist("cameras") if isinstance(value, str)][:64]
    values: dict[str, Any] = {"name": _text(form, "name", 200), "cameras": cameras}
    t = translator(request)
    try:
        pin = _pin_pair(form)
        create = functools.partial(
            context.family.create_household,
            values["name"],
            pin,
            cameras,
            actor=principal.actor,
        )
        await _gated(request, create)
    except GateBusyError:
        return _busy(
            request,
            principal,
            "admin_households.html",
            households=context.family.list_households(),
            camera_choices=_camera_choices(context),
            values=values,
            error_field=None,
            notice=None,
        )
    except ValidationError as exc:
        return await run_in_threadpool(
            functools.partial(
                _render_admin_list,
                request,
                principal,
                values=values,
                error=t.field_error(exc.field, exc.message),
                error_field=exc.field,
                status_code=422,
            )
        )
    return RedirectResponse("/admin/households?done=created", status_code=303)


def _render_admin_household(
    request: Request,
    principal: Principal,
    household: Household,
    *,
    error: str | None = None,
    error_field: str | None = None,
    status_code: int = 200,
) -> Response:
    context = web_context(request)
    return render(
        request,
        "admin_household.html",
        principal,
        status_code=status_code,
        household=household,
        camera_choices=_camera_choices(context),
        error=error,
        error_field=error_field,
        notice=_notice(request),
    )


@router.get("/admin/households/{household_id}", include_in_schema=False)
def admin_household(
    request: Request,
    household_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> Response:
    household = _household_or_404(_family(request), household_id)
    return _render_admin_household(request, principal, household)


@router.post("/admin/households/{household_id}", include_in_schema=False)
async def admin_edit_household(
    request: Request,
    household_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> Response:
    context = web_context(request)
    household = await run_in_threadpool(_household_or_404, context.family, household_id)
    form = await request.form()
    cameras = [value for value in form.getlist("cameras") if isinstance(value, str)][:64]
    try:
        await run_in_threadpool(
            functools.partial(
                context.family.update_household,
                household_id,
                _text(form, "name", 200),
                cameras,
                actor=principal.actor,
            )
        )
    except HouseholdNotFoundError as exc:
        raise NotFoundError("household") from exc
    except ValidationError as exc:
        t = translator(request)
        return _render_admin_household(
            request,
            principal,
            household,
            error=t.field_error(exc.field, exc.message),
            error_field=exc.field,
            status_code=422,
        )
    return RedirectResponse(f"/admin/households/{household_id}?done=saved", status_code=303)


@router.post("/admin/households/{household_id}/pin", include_in_schema=False)
async def admin_set_pin(
    request: Request,
    household_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> Response:
    context = web_context(request)
    household = await run_in_threadpool(_household_or_404, context.family, household_id)
    form = await request.form()
    t = translator(request)
    try:
        pin = _pin_pair(form)
        await _gated(
            request,
            functools.partial(context.family.set_pin, household_id, pin, actor=principal.actor),
        )
    except GateBusyError:
        return _busy(
            request,
            principal,
            "admin_household.html",
            household=household,
            camera_choices=_camera_choices(context),
            error_field=None,
            notice=None,
        )
    except HouseholdNotFoundError as exc:
        raise NotFoundError("household") from exc
    except ValidationError as exc:
        return _render_admin_household(
            request,
            principal,
            household,
            error=t.field_error(exc.field, exc.message),
            error_field=exc.field,
            status_code=422,
        )
    return RedirectResponse(f"/admin/households/{household_id}?done=pin_set", status_code=303)


@router.post("/admin/households/{household_id}/members/{username}/remove", include_in_schema=False)
def admin_remove_member(
    request: Request,
    household_id: RecordId,
    username: str,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> Response:
    family = _family(request)
    household = _household_or_404(family, household_id)
    if username not in household.members:
        raise NotFoundError("member")
    family.unlink(household_id, username, actor=principal.actor)
    return RedirectResponse(f"/admin/households/{household_id}?done=removed", status_code=303)


@router.post("/admin/households/{household_id}/delete", include_in_schema=False)
def admin_delete_household(
    request: Request,
    household_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> Response:
    family = _family(request)
    _household_or_404(family, household_id)
    try:
        family.delete_household(household_id, actor=principal.actor)
    except HouseholdNotFoundError as exc:
        raise NotFoundError("household") from exc
    return RedirectResponse("/admin/households?done=deleted", status_code=303)


# -- JSON ----------------------------------------------------------------------------------------


class FamilyCamera(BaseModel):
    id: str
    name: str


class FamilyHousehold(BaseModel):
    id: int
    name: str
    cameras: list[FamilyCamera]


@router.get("/api/family/households", tags=["family"])
def api_family_households(
    request: Request, principal: Annotated[Principal, require_roles(Role.FAMILY)]
) -> list[FamilyHousehold]:
    """The signed-in family account's households and the cameras it may watch live."""
    context = web_context(request)
    username = str(principal.username)
    allowed = context.family.cameras_for(username)
    names = {camera.id: camera.name for camera in camera_summaries(context)}
    return [
        FamilyHousehold(
            id=household.id,
            name=household.name,
            cameras=[
                FamilyCamera(id=camera_id, name=names.get(camera_id, camera_id))
                for camera_id in household.camera_ids
                if camera_id in allowed
            ],
        )
        for household in context.family.households_of(username)
    ]
