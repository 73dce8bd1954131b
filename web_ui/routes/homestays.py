"""Homestay pages: a host registers and checks out guests; an admin creates homestays.

A host sees only the homestays assigned to their account; another host's homestay or guest
answers 404, so ids of other homestays are not confirmed to exist.
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
from agent.village.homestay import Homestay
from web_ui.context import WebContext
from web_ui.errors import NotFoundError, validation_detail, validation_text
from web_ui.forms import (
    COMPANION_FIELDS,
    ID_TYPES,
    SEXES,
    GuestForm,
    companion_input_name,
    input_name_for,
)
from web_ui.params import RecordId
from web_ui.rendering import render, translator
from web_ui.security import Principal, require_roles, web_context

router = APIRouter(include_in_schema=False)

_NOTICES = frozenset({"registered", "checked_out", "created"})


def own_homestay(context: WebContext, principal: Principal, homestay_id: int) -> Homestay:
    try:
        homestay = context.homestays.get_homestay(homestay_id)
    except RecordNotFoundError as exc:
        raise NotFoundError("homestay") from exc
    if homestay.host_username != principal.username:
        raise NotFoundError("homestay")
    return homestay


def _notice(request: Request) -> str | None:
    done = request.query_params.get("done", "")
    return translator(request)(f"notice.{done}") if done in _NOTICES else None


@router.get("/host/homestays")
def host_homestays(
    request: Request, principal: Annotated[Principal, require_roles(Role.HOST)]
) -> Response:
    context = web_context(request)
    homestays = context.homestays.list_homestays(host_username=principal.username)
    guests = {
        homestay.id: context.homestays.search(homestay_id=homestay.id, active_only=True)
        for homestay in homestays
    }
    return render(
        request,
        "host_homestays.html",
        principal,
        homestays=homestays,
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
        "register_guest.html",
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
    homestay = own_homestay(web_context(request), principal, homestay_id)
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
    context = web_context(request)
    homestay = await run_in_threadpool(own_homestay, context, principal, homestay_id)
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
            context.homestays.check_in, homestay.id, guest, actor=principal.actor
        )
    except RecordNotFoundError as exc:
        raise NotFoundError("homestay") from exc
    except ValidationError as exc:
        return _render_register(request, principal, homestay, form, error=exc, status_code=422)
    return RedirectResponse("/host/homestays?done=registered", status_code=303)


@router.post("/host/guests/{guest_id}/checkout")
def checkout_submit(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    context = web_context(request)
    try:
        guest = context.homestays.get_guest(guest_id, actor=principal.actor)
    except RecordNotFoundError as exc:
        raise NotFoundError("guest") from exc
    own_homestay(context, principal, guest.homestay_id)
    context.homestays.check_out(guest_id, actor=principal.actor)
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
        "admin_homestays.html",
        principal,
        status_code=status_code,
        homestays=context.homestays.list_homestays(),
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


def create_homestay_checked(
    context: WebContext, name: str, address: str, rooms: object, host_username: str
) -> Homestay:
    """Create a homestay for an existing host account; raises ValidationError otherwise."""
    host = context.accounts.get_user(host_username) if host_username else None
    if host_username and (host is None or host.role is not Role.HOST):
        raise ValidationError("host_username", "host_username.unknown")
    if isinstance(rooms, str):
        if not rooms.strip():
            raise ValidationError("rooms", "rooms.required")
        try:
            rooms = int(rooms)
        except ValueError as exc:
            raise ValidationError("rooms", "rooms.invalid") from exc
    if not isinstance(rooms, int):
        raise ValidationError("rooms", "rooms.invalid")
    return context.homestays.create_homestay(name, address, rooms, host_username)


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
            create_homestay_checked,
            web_context(request),
            values["name"],
            values["address"],
            values["rooms"],
            values["host_username"],
        )
    except ValidationError as exc:
        return await run_in_threadpool(
            partial(_render_admin, request, principal, values=values, error=exc, status_code=422)
        )
    return RedirectResponse("/admin/homestays?done=created", status_code=303)
