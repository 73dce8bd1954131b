"""Police pages: guest registrations (masked lists, full detail audited), CSV export, audit log."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from agent.accounts import Role
from agent.errors import ValidationError
from agent.village.homestay import RecordNotFoundError
from web_ui.errors import NotFoundError, validation_text
from web_ui.params import RecordId
from web_ui.rendering import render, translator
from web_ui.security import Principal, require_roles, web_context

router = APIRouter(include_in_schema=False)

AUDIT_PAGE_SIZE = 50
_MAX_TEXT = 100


@dataclass(frozen=True)
class GuestFilters:
    """Search filters from a query string, as HomestayService.search keywords."""

    name: str | None = None
    id_number: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    homestay_id: int | None = None
    active_only: bool = False

    def keywords(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if value not in (None, False)}


def _date(field: str, text: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(field, "date.format") from exc


def parse_filters(params: Any) -> GuestFilters:
    """Raises ValidationError naming the bad filter (a date or the homestay number)."""

    def text(name: str) -> str:
        return str(params.get(name, "") or "").strip()[:_MAX_TEXT]

    homestay = text("homestay_id")
    if homestay and not (homestay.isdigit() and len(homestay) <= 15):
        raise ValidationError("homestay_id", "homestay_id.format")
    return GuestFilters(
        name=text("name") or None,
        id_number=text("id_number") or None,
        date_from=_date("date_from", text("date_from")),
        date_to=_date("date_to", text("date_to")),
        homestay_id=int(homestay) if homestay else None,
        active_only=text("active_only") in {"1", "true", "on"},
    )


@router.get("/police/registrations")
def registrations(
    request: Request, principal: Annotated[Principal, require_roles(Role.POLICE)]
) -> Response:
    context = web_context(request)
    params = request.query_params
    error_text = None
    try:
        filters = parse_filters(params)
        guests = context.homestays.search(**filters.keywords())
    except ValidationError as exc:
        error_text = validation_text(translator(request), exc)
        guests = []
    return render(
        request,
        "police_registrations.html",
        principal,
        guests=guests,
        homestays=context.homestays.list_homestays(),
        query={key: params.get(key, "")[:_MAX_TEXT] for key in params},
        export_query=str(request.url.query),
        error_text=error_text,
    )


@router.get("/police/registrations.csv")
def registrations_csv(
    request: Request, principal: Annotated[Principal, require_roles(Role.POLICE)]
) -> Response:
    filters = parse_filters(request.query_params)
    body = web_context(request).homestays.export_csv(actor=principal.actor, **filters.keywords())
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="registrations-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/police/registrations/{guest_id}")
def registration_detail(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.POLICE)],
) -> Response:
    try:
        guest = web_context(request).homestays.get_guest(
            guest_id, actor=principal.actor, unmasked=True
        )
    except RecordNotFoundError as exc:
        raise NotFoundError("guest") from exc
    return render(request, "police_registration.html", principal, guest=guest)


@router.get("/police/audit")
def audit_log(
    request: Request,
    principal: Annotated[Principal, require_roles(Role.POLICE, Role.ADMIN)],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    actor: str = "",
    action: str = "",
) -> Response:
    actor, action = actor.strip()[:_MAX_TEXT], action.strip()[:_MAX_TEXT]
    entries = web_context(request).audit.entries(
        limit=AUDIT_PAGE_SIZE + 1,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
        actor=actor or None,
        action=action or None,
    )
    return render(
        request,
        "police_audit.html",
        principal,
        entries=entries[:AUDIT_PAGE_SIZE],
        page=page,
        has_next=len(entries) > AUDIT_PAGE_SIZE,
        actor=actor,
        action=action,
    )
