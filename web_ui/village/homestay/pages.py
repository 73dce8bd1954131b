"""Homestay pages: a host registers and checks out guests; an admin creates homestays.

A host sees only the homestays assigned to their account; another host's homestay or guest
answers 404 (the service's rule), so ids of other homestays are not confirmed to exist.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.accounts import Role
from agent.errors import RecordNotFoundError, ValidationError
from agent.village.homestay import Homestay, HomestayService
from web_ui.errors import validation_detail, validation_text
from web_ui.params import RecordId
from web_ui.rendering import render, translator
from web_ui.security import Principal, require_roles, web_context
from web_ui.village.homestay.forms import (
    COMPANION_FIELDS,
    ID_TYPES,
    SEXES,
    GuestForm,
    companion_input_name,
    input_name_for,
)

router = APIRouter(include_in_schema=False)

_NOTICES = frozenset({"registered", "checked_out", "created"})


def homestays(request: Request) -> HomestayService:
    return web_context(request).service(HomestayService)


def _notice(request: Request) -> str | None:
    done = request.query_params.get("done", "")
    return translator(request)(f"homestay.notice.{done}") if done in _NOTICES else None


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
        notice=_notice(request),
    )


def _render_register(
    request: Request,
    principal: Principal,
    homestay: Homestay,
    form: GuestForm,
    *,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "homestay/register_guest.html",
        principal,
        status_code=status_code,
        homestay=homestay,
        form=form,
        id_types=ID_TYPES,
        sexes=SEXES,
        companion_fields=COMPANION_FIELDS,
        companion_input_name=companion_input_name,
        error_text=validation_text(translator(request), error) if error else None,
        error_detail=validation_detail(translator(request), error) if error else None,
        error_input=input_name_for(error.field) if error else None,
    )


@router.get("/host/homestays/{homestay_id}/register")
def register_form(
    request: Request,
    homestay_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    homestay = homestays(request).host_homestay(homestay_id, host_username=principal.actor)
    now = dt.datetime.now().replace(second=0, microsecond=0)
    form = GuestForm.blank(
        {
            "check_in": now.isoformat(timespec="minutes"),
            "expected_check_out": (now.date() + dt.timedelta(days=1)).isoformat(),
            "nationality": "CHN",
            "id_type": "resident_id",
        }
    )
    return _render_register(request, principal, homestay, form)


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
    action = raw.get("action")
    if action == "add_companion":
        form.add_companion()
        return _render_register(request, principal, homestay, form)
    if action == "remove_companion":
        form.remove_companion()
        return _render_register(request, principal, homestay, form)
    try:
        guest = form.to_input()
        await run_in_threadpool(
            partial(
                service.check_in,
                homestay.id,
                guest,
                actor=principal.actor,
                host_username=principal.actor,
            )
        )
    except RecordNotFoundError:
        raise
    except ValidationError as exc:
        return _render_register(request, principal, homestay, form, error=exc, status_code=422)
    return RedirectResponse("/host/homestays?done=registered", status_code=303)


@router.post("/host/guests/{guest_id}/checkout")
def checkout_submit(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    homestays(request).check_out(guest_id, actor=principal.actor, host_username=principal.actor)
    return RedirectResponse("/host/homestays?done=checked_out", status_code=303)


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
        notice=_notice(request),
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
