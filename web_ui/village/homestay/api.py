"""The homestay service's JSON API (mounted under /api), beside its pages.

Errors are ``{"error": {"field", "code", "message"}}`` with a 4xx status. A session-cookie
client sends the CSRF token from ``POST /api/session`` as ``X-CSRF-Token`` on every POST.

A search by name or ID number is a POST (``/api/guests/search``, ``/api/guests.csv``) with the
filters in the body, never in a URL; it is audited and limited per account and hour (429).
Masked records carry an age band instead of the birth date.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from agent.accounts import Role
from agent.errors import ValidationError
from agent.village.homestay import (
    CompanionRecord,
    GuestInput,
    GuestQuery,
    GuestRecord,
    Homestay,
    HomestayService,
    SearchLimitError,
)
from web_ui.context import WebContext
from web_ui.errors import api_error
from web_ui.params import MAX_RECORD_ID, RecordId
from web_ui.rendering import translator
from web_ui.security import Principal, require_roles, web_context
from web_ui.village.homestay.drafts import draft_store
from web_ui.village.homestay.police import IDENTIFYING

_ERROR = {"content": {"application/json": {"example": {"error": {
    "field": "id_number", "code": "id_number.check_digit", "message": "…"}}}}}  # fmt: skip
router = APIRouter(
    responses={
        401: {"description": "not signed in", **_ERROR},
        403: {"description": "wrong role or missing CSRF token", **_ERROR},
        422: {"description": "invalid input; field and code name the problem", **_ERROR},
    }
)
_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "too many searches by name or ID number this hour", **_ERROR}
}


class HomestayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=200)]
    address: Annotated[str, Field(max_length=400)]
    rooms: Annotated[int, Field(ge=-(2**31), le=2**31)]
    host_username: Annotated[str, Field(max_length=64)]


class HomestayOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    address: str
    rooms: int
    host_username: str
    created_at: dt.datetime


class CompanionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    id_type: str
    id_number: str
    birth_date: dt.date | None = Field(description="null when masked")
    age_band: str = Field(description="age at check-in, e.g. 30-39 or 70+")
    nationality: str
    foreign: bool


class GuestOut(BaseModel):
    """A registration; ``masked`` tells whether name, number, phone, address and birth date
    are masked (a masked record has no birth date, only the age band)."""

    id: int
    homestay_id: int
    homestay_name: str
    name: str
    sex: str
    ethnicity: str
    birth_date: dt.date | None = Field(description="null when masked")
    age_band: str = Field(description="age at check-in, e.g. 30-39 or 70+")
    id_type: str
    id_number: str
    phone: str
    address: str
    room: str
    check_in: dt.datetime
    expected_check_out: dt.date
    checked_out_at: dt.datetime | None
    nationality: str
    foreign: bool
    companions: list[CompanionOut]
    masked: bool
    report_state: str = Field(
        default="", description="queued, delivered, not_sent, or empty when not tracked"
    )

    @classmethod
    def of(cls, record: GuestRecord) -> GuestOut:
        fields: dict[str, Any] = {name: getattr(record, name) for name in cls.model_fields}
        fields["companions"] = [_companion(c) for c in record.companions]
        return cls.model_validate(fields)


def _companion(record: CompanionRecord) -> CompanionOut:
    return CompanionOut.model_validate(record, from_attributes=True)


class GuestSearchIn(BaseModel):
    """Filters of a search; ``name`` (exact, whole name) and ``id_number`` look for a person."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str | None, Field(max_length=100)] = None
    id_number: Annotated[str | None, Field(max_length=100)] = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    homestay_id: Annotated[int | None, Field(ge=1, le=MAX_RECORD_ID)] = None
    active_only: bool = False
    limit: Annotated[int, Field(ge=1, le=1000)] = 200

    def query(self, context: WebContext, principal: Principal) -> GuestQuery:
        """A host only ever searches their own homestays."""
        return context.service(HomestayService).query(
            name=self.name,
            id_number=self.id_number,
            date_from=self.date_from,
            date_to=self.date_to,
            homestay_id=self.homestay_id,
            host_username=principal.actor if principal.role is Role.HOST else None,
            active_only=self.active_only,
        )


def _refuse_identifying_url(request: Request) -> None:
    for name in IDENTIFYING:
        if name in request.query_params:
            raise ValidationError(name, "search.in_url")


def _limited(request: Request, exc: SearchLimitError) -> JSONResponse:
    return api_error(
        429,
        None,
        "search.limit",
        translator(request)("error.search.limit", limit=exc.limit),
        headers={"Retry-After": str(exc.retry_after_seconds)},
    )


def _csv(body: str) -> Response:
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="registrations.csv"',
            "Cache-Control": "no-store",
        },
    )


def _homestay_out(homestay: Homestay) -> HomestayOut:
    return HomestayOut.model_validate(homestay, from_attributes=True)


@router.get("/homestays", tags=["homestays"])
def list_homestays(
    request: Request,
    principal: Annotated[Principal, require_roles(Role.HOST, Role.ADMIN, Role.POLICE)],
) -> list[HomestayOut]:
    """A host sees their own homestays; admin and police see all."""
    only = principal.username if principal.role is Role.HOST else None
    homestays = web_context(request).service(HomestayService).list_homestays(host_username=only)
    return [_homestay_out(h) for h in homestays]


@router.post("/homestays", tags=["homestays"], status_code=201)
def create_homestay(
    request: Request,
    body: HomestayIn,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> HomestayOut:
    homestay = (
        web_context(request)
        .service(HomestayService)
        .add_homestay(
            body.name, body.address, body.rooms, body.host_username, actor=principal.actor
        )
    )
    return _homestay_out(homestay)


@router.post(
    "/homestays/{homestay_id}/guests",
    tags=["guests"],
    status_code=201,
    responses={404: {"description": "no such homestay of this host", **_ERROR}},
)
def check_in(
    request: Request,
    homestay_id: RecordId,
    guest: GuestInput,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> GuestOut:
    """Register a guest (and companions) at one of the host's homestays; returns it masked."""
    record = (
        web_context(request)
        .service(HomestayService)
        .check_in(homestay_id, guest, actor=principal.actor, host_username=principal.actor)
    )
    return GuestOut.of(record)


@router.post(
    "/guests/{guest_id}/checkout",
    tags=["guests"],
    responses={404: {"description": "no such guest at this host's homestays", **_ERROR}},
)
def check_out(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> GuestOut:
    record = (
        web_context(request)
        .service(HomestayService)
        .check_out(guest_id, actor=principal.actor, host_username=principal.actor)
    )
    return GuestOut.of(record)


@router.get("/guests", tags=["guests"])
def list_guests(
    request: Request,
    principal: Annotated[Principal, require_roles(Role.POLICE, Role.HOST)],
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    homestay_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
    active_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[GuestOut]:
    """Masked registrations, newest first; a host sees only their own homestays. A search by
    name or ID number is ``POST /api/guests/search`` (a ``name`` or ``id_number`` parameter
    here is refused with ``search.in_url``)."""
    _refuse_identifying_url(request)
    context = web_context(request)
    query = GuestSearchIn(
        date_from=date_from, date_to=date_to, homestay_id=homestay_id, active_only=active_only
    ).query(context, principal)
    return [GuestOut.of(r) for r in context.service(HomestayService).find(query, limit=limit)]


@router.post("/guests/search", tags=["guests"], responses=_LIMITED, response_model=list[GuestOut])
async def search_guests(
    request: Request,
    body: GuestSearchIn,
    principal: Annotated[Principal, require_roles(Role.POLICE, Role.HOST)],
) -> Any:
    """Masked registrations matching the filters, newest first. A search by ``name`` or
    ``id_number`` (a guest or any companion, exact) is audited as ``guest.search`` and counts
    towards ``web.searches_per_hour`` of the account."""
    context = web_context(request)
    query = body.query(context, principal)
    try:
        records = await run_in_threadpool(
            context.service(HomestayService).search_audited,
            query,
            actor=principal.actor,
            per_hour=context.config.web.searches_per_hour,
            limit=body.limit,
        )
    except SearchLimitError as exc:
        return _limited(request, exc)
    return [GuestOut.of(r) for r in records]


@router.get(
    "/guests.csv",
    tags=["guests"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_guests(
    request: Request,
    principal: Annotated[Principal, require_roles(Role.POLICE, same_origin=True)],
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    homestay_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
    active_only: bool = False,
) -> Response:
    """Unmasked CSV export (audited ``guest.export`` with the record ids); refused when
    another website asks. By name or ID number: ``POST /api/guests.csv``."""
    _refuse_identifying_url(request)
    context = web_context(request)
    query = context.service(HomestayService).query(
        date_from=date_from, date_to=date_to, homestay_id=homestay_id, active_only=active_only
    )
    return _csv(context.service(HomestayService).export_csv(actor=principal.actor, query=query))


@router.post(
    "/guests.csv",
    tags=["guests"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **_LIMITED},
)
async def export_guests_search(
    request: Request,
    body: GuestSearchIn,
    principal: Annotated[Principal, require_roles(Role.POLICE, same_origin=True)],
) -> Response:
    """Unmasked CSV of a search (audited ``guest.export``); by name or ID number it also
    counts, and is audited, as a search."""
    context = web_context(request)
    try:
        text = await run_in_threadpool(
            context.service(HomestayService).export_csv,
            actor=principal.actor,
            query=body.query(context, principal),
            searches_per_hour=context.config.web.searches_per_hour,
            limit=body.limit,
        )
    except SearchLimitError as exc:
        return _limited(request, exc)
    return _csv(text)


@router.get(
    "/guests/{guest_id}",
    tags=["guests"],
    responses={404: {"description": "no such guest", **_ERROR}},
)
def get_guest(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.POLICE, same_origin=True)],
) -> GuestOut:
    """One registration in full (audited as guest.view_unmasked); refused when another website
    asks."""
    record = (
        web_context(request)
        .service(HomestayService)
        .get_guest(guest_id, actor=principal.actor, unmasked=True)
    )
    return GuestOut.of(record)


@router.post(
    "/guests/{guest_id}/delete",
    tags=["guests"],
    responses={404: {"description": "no such guest at this host's homestays", **_ERROR}},
)
def delete_guest(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> GuestOut:
    """Remove a wrong registration of one of the host's homestays (audited; the police get a
    ``delete`` report with the removed record). Returns it masked."""
    record = (
        web_context(request)
        .service(HomestayService)
        .delete_registration(guest_id, host_username=principal.actor)
    )
    return GuestOut.of(record)


@router.post("/homestays/{homestay_id}/draft", tags=["guests"], status_code=204)
def save_draft(
    request: Request,
    homestay_id: RecordId,
    body: Annotated[dict[str, Annotated[str, Field(max_length=500)]], Body(max_length=200)],
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    """Keep the half-filled registration form on the kiosk (in memory, for this host and
    homestay), so it comes back after the session ends; the browser keeps nothing."""
    web_context(request).service(HomestayService).host_homestay(
        homestay_id, host_username=principal.actor
    )
    draft_store(request).put(principal.actor, homestay_id, body)
    return Response(status_code=204)
