"""Homestay pages: a host registers and checks out guests; an admin creates homestays.

A host sees only the homestays assigned to their account; another host's homestay or guest
answers 404 (the service's rule), so ids of other homestays are not confirmed to exist.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.accounts import Role
from agent.errors import RecordNotFoundError, ValidationError
from agent.village.homestay import Homestay, HomestayService, countries
from agent.village.homestay.inputs import GuestFormError
from agent.village.service import CheckInPrefill
from agent.village.services import Services
from web_ui.errors import NotFoundError, validation_detail, validation_text
from web_ui.i18n import LANGUAGE_COOKIE, LANGUAGES
from web_ui.params import MAX_RECORD_ID, RecordId
from web_ui.rendering import done_notice, render, translator
from web_ui.security import Principal, require_roles, web_context
from web_ui.village.homestay.drafts import draft_store
from web_ui.village.homestay.forms import (
    GUEST_FIELDS,
    ID_TYPES,
    SEXES,
    GuestForm,
    companion_input_name,
    input_name_for,
)

router = APIRouter(include_in_schema=False)

_NOTICES = frozenset({"registered", "checked_out", "created", "deleted"})


def homestays(request: Request) -> HomestayService:
    return web_context(request).service(HomestayService)


@router.get("/host/homestays")
def host_homestays(
    request: Request, principal: Annotated[Principal, require_roles(Role.HOST)]
) -> Response:
    service = homestays(request)
    own = service.list_homestays(host_username=principal.actor)
    guests = {
        homestay.id: service.search(homestay_id=homestay.id, active_only=True) for homestay in own
    }
    return render(
        request,
        "homestay/host_homestays.html",
        principal,
        homestays=own,
        guests=guests,
        notice=done_notice(request, "homestay", _NOTICES),
        highlight=_highlight(request),
    )


def _highlight(request: Request) -> int | None:
    """The registration just made (shown marked in the list, with its report state)."""
    text = request.query_params.get("guest", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else None


def _render_register(
    request: Request,
    principal: Principal,
    homestay: Homestay,
    form: GuestForm,
    *,
    error: ValidationError | None = None,
    status_code: int = 200,
    restored: bool = False,
) -> Response:
    t = translator(request)
    problems = error_list(error)
    return render(
        request,
        "homestay/register_guest.html",
        principal,
        status_code=status_code,
        homestay=homestay,
        form=form,
        id_types=ID_TYPES,
        sexes=SEXES,
        countries=countries.countries(),
        companion_input_name=companion_input_name,
        # Every refusal, in the order of the page: a summary at the top, each beside its field.
        error_list=[(input_name_for(p.field), validation_text(t, p)) for p in problems],
        errors={input_name_for(p.field): validation_detail(t, p) for p in reversed(problems)},
        restored=restored,
    )


def error_list(error: ValidationError | None) -> list[ValidationError]:
    if error is None:
        return []
    return list(error.errors) if isinstance(error, GuestFormError) else [error]


def _blank_form() -> GuestForm:
    now = dt.datetime.now().replace(second=0, microsecond=0)
    return GuestForm.blank(
        {
            "check_in": now.isoformat(timespec="minutes"),
            "expected_check_out": (now.date() + dt.timedelta(days=1)).isoformat(),
            "nationality": "CHN",
            "id_type": "resident_id",
        }
    )


def prefill(services: Services, booking_id: int, *, host_username: str) -> dict[str, str] | None:
    """A booking's values for the form, from whichever service provides CheckInPrefill (None
    when none does); the provider raises RecordNotFoundError for another host's booking."""
    # mypy refuses a protocol where providing() expects type[T] (type-abstract); the
    # runtime check is what providing() is for.
    provider = services.providing(CheckInPrefill)  # type: ignore[type-abstract]
    if provider is None:
        return None
    values = provider.check_in_prefill(booking_id, host_username=host_username)
    return {
        name: str(value)[:500]
        for name, value in values.items()
        if name in GUEST_FIELDS and isinstance(value, str | int)
    }


@router.get("/host/homestays/{homestay_id}/register")
def register_form(
    request: Request,
    homestay_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
    booking: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
) -> Response:
    context = web_context(request)
    homestay = homestays(request).host_homestay(homestay_id, host_username=principal.actor)
    form = _blank_form()
    restored = False
    if booking is not None:
        values = prefill(context.services, booking, host_username=principal.actor)
        if values is None:
            raise NotFoundError("booking")
        form.values.update(values)
    else:
        draft = draft_store(request).get(principal.actor, homestay.id)
        if draft:
            form = GuestForm.from_form(draft)
            restored = True
    return _render_register(request, principal, homestay, form, restored=restored)


@router.post("/host/homestays/{homestay_id}/register")
async def register_submit(
    request: Request,
    homestay_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    service = homestays(request)
    homestay = await run_in_threadpool(
        partial(service.host_homestay, homestay_id, host_username=principal.actor)
    )
    raw = await request.form()
    form = GuestForm.from_form(raw)
    drafts = draft_store(request)
    action = raw.get("action")
    if action == "add_companion":
        form.add_companion()
        return _render_register(request, principal, homestay, form)
    if action == "remove_companion":
        form.remove_companion()
        return _render_register(request, principal, homestay, form)
    if action == "discard":
        drafts.discard(principal.actor, homestay.id)
        return RedirectResponse(f"/host/homestays/{homestay.id}/register", status_code=303)
    if action == "language":
        # The header's language switch, sent through this form by homestay.js: the page comes
        # back in the other language with what was typed (never kept in the browser).
        language = str(raw.get("switch_language", ""))
        if language in LANGUAGES:
            request.state.language = language
        response = _render_register(request, principal, homestay, form)
        if language in LANGUAGES:
            response.set_cookie(
                LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax", path="/"
            )
        return response
    try:
        guest = form.to_input()
        record = await run_in_threadpool(
            partial(
                service.check_in,
                homestay.id,
                guest,
                actor=principal.actor,
                host_username=principal.actor,
                form_token=form.token,
            )
        )
    except RecordNotFoundError:
        raise
    except ValidationError as exc:
        return _render_register(request, principal, homestay, form, error=exc, status_code=422)
    drafts.discard(principal.actor, homestay.id)
    return RedirectResponse(f"/host/homestays?done=registered&guest={record.id}", status_code=303)


def _render_confirm(request: Request, principal: Principal, guest_id: int, action: str) -> Response:
    guest = homestays(request).host_guest(guest_id, host_username=principal.actor)
    return render(request, "homestay/confirm_guest.html", principal, guest=guest, action=action)


@router.get("/host/guests/{guest_id}/checkout")
def checkout_confirm(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    """Check-out asks first: one stray tap must not end a stay."""
    return _render_confirm(request, principal, guest_id, "checkout")


@router.post("/host/guests/{guest_id}/checkout")
def checkout_submit(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    homestays(request).check_out(guest_id, actor=principal.actor, host_username=principal.actor)
    return RedirectResponse("/host/homestays?done=checked_out", status_code=303)


@router.get("/host/guests/{guest_id}/delete")
def delete_confirm(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    return _render_confirm(request, principal, guest_id, "delete")


@router.post("/host/guests/{guest_id}/delete")
def delete_submit(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    homestays(request).delete_registration(guest_id, host_username=principal.actor)
    return RedirectResponse("/host/homestays?done=deleted", status_code=303)


def _render_admin(
    request: Request,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    context = web_context(request)
    return render(
        request,
        "homestay/admin_homestays.html",
        principal,
        status_code=status_code,
        homestays=homestays(request).list_homestays(),
        hosts=context.accounts.list_users(role=Role.HOST),
        values=values or {},
        error_text=validation_text(translator(request), error) if error else None,
        error_detail=validation_detail(translator(request), error) if error else None,
        error_input=error.field if error else None,
        notice=done_notice(request, "homestay", _NOTICES),
    )


@router.get("/admin/homestays")
def admin_homestays(
    request: Request, principal: Annotated[Principal, require_roles(Role.ADMIN)]
) -> Response:
    return _render_admin(request, principal)


@router.post("/admin/homestays")
async def admin_create_homestay(
    request: Request, principal: Annotated[Principal, require_roles(Role.ADMIN)]
) -> Response:
    form = await request.form()
    values = {
        key: str(form.get(key, "")).strip()[:500]
        for key in ("name", "address", "rooms", "host_username")
    }
    try:
        await run_in_threadpool(
            partial(
                homestays(request).add_homestay,
                values["name"],
                values["address"],
                values["rooms"],
                values["host_username"],
                actor=principal.actor,
            )
        )
    except ValidationError as exc:
        return await run_in_threadpool(
            partial(_render_admin, request, principal, values=values, error=exc, status_code=422)
        )
    return RedirectResponse("/admin/homestays?done=created", status_code=303)
