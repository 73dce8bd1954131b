"""Dispute pages and their JSON twins.

- ``/kiosk/disputes``: the kiosk's own screen files a dispute and shows its reference; any
  other client gets 404 (filing is anonymous, so it happens where the village can see it).
- ``/disputes``: the list, one dispute with its history, the state changes (staff, admins;
  police read only) and ``/disputes/stats`` with the resolution rate of a period.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.accounts import Role
from agent.errors import RecordNotFoundError, ValidationError
from agent.village.disputes import (
    Actor,
    Category,
    Dispute,
    DisputeInput,
    DisputeService,
    PartyInput,
    State,
    Statistics,
)
from agent.village.disputes.records import (
    MAX_DEPARTMENT,
    MAX_DESCRIPTION,
    MAX_NOTE,
    OUTCOMES,
    parse_state,
)
from web_ui.errors import NotFoundError, validation_detail
from web_ui.params import RecordId, form_text
from web_ui.rendering import is_kiosk_screen, render, translator
from web_ui.security import Principal, public, require_roles, web_context

pages = APIRouter(include_in_schema=False)
api = APIRouter()

FORM_PARTIES = 3
# Form values are cut here, well above every limit, so an over-long value still reaches the
# service and gets its own message rather than being shortened silently.
_MAX_FORM_VALUE = 20_000
_STAFF = (Role.STAFF, Role.ADMIN)
_READERS = (Role.STAFF, Role.ADMIN, Role.POLICE)
_DEFAULT_DAYS = 30


def _service(request: Request) -> DisputeService:
    return web_context(request).service(DisputeService)


def _actor(principal: Principal) -> Actor:
    return Actor(principal.actor, principal.role)


def party_input(index: int, field: str) -> str:
    return f"party-{index}-{field}"


def _input_name(field: str) -> str:
    """``parties[1].phone`` (a ValidationError field) -> ``party-1-phone``."""
    if field.startswith("parties[") and "]." in field:
        index, _, name = field.removeprefix("parties[").partition("].")
        return party_input(int(index), name) if index.isdigit() else field
    return field


def _parse_day(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(field, "disputes.date_invalid") from None


def _period(date_from: str, date_to: str) -> tuple[dt.date, dt.date]:
    today = dt.date.today()
    start = _parse_day(date_from, "date_from") if date_from else today - dt.timedelta(days=30)
    end = _parse_day(date_to, "date_to") if date_to else today
    return start, end


def _optional_state(value: str) -> State | None:
    return parse_state(value) if value else None


def _optional_category(value: str) -> Category | None:
    if not value:
        return None
    try:
        return Category(value)
    except ValueError:
        raise ValidationError("category", "disputes.category_invalid") from None


def _not_on_this_screen(request: Request, principal: Principal) -> Response:
    message = translator(request)("disputes.kiosk_only")
    return render(request, "error.html", principal, status_code=404, status=404, message=message)


# -- the kiosk screen ----------------------------------------------------------------------------


def _render_file(
    request: Request,
    principal: Principal,
    values: dict[str, str],
    *,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    t = translator(request)
    return render(
        request,
        "disputes/kiosk_file.html",
        principal,
        status_code=status_code,
        values=values,
        categories=tuple(Category),
        party_count=FORM_PARTIES,
        party_input=party_input,
        max_description=MAX_DESCRIPTION,
        error_text=validation_detail(t, error) if error else None,
        error_input=_input_name(error.field) if error else None,
    )


@pages.get("/kiosk/disputes")
def kiosk_form(request: Request, principal: Annotated[Principal, public()]) -> Response:
    if not is_kiosk_screen(request):
        return _not_on_this_screen(request, principal)
    return _render_file(request, principal, {})


@pages.post("/kiosk/disputes")
async def kiosk_file(request: Request, principal: Annotated[Principal, public()]) -> Response:
    """The answer shows the reference (no redirect: nothing to bookmark or go back to)."""
    if not is_kiosk_screen(request):
        return _not_on_this_screen(request, principal)
    form = await request.form()
    names = ["category", "description"] + [
        party_input(i, f) for i in range(FORM_PARTIES) for f in ("name", "phone")
    ]
    values = {name: form_text(form, name, _MAX_FORM_VALUE, strip=False) for name in names}
    dispute = DisputeInput(
        values["category"],
        values["description"],
        [
            PartyInput(values[party_input(i, "name")], values[party_input(i, "phone")])
            for i in range(FORM_PARTIES)
        ],
    )
    try:
        filed = await run_in_threadpool(_service(request).file, dispute)
    except ValidationError as exc:
        return _render_file(request, principal, values, error=exc, status_code=422)
    return render(request, "disputes/kiosk_filed.html", principal, dispute=filed)


# -- staff, admins and police ------------------------------------------------------------------


@pages.get("/disputes")
def list_page(
    request: Request,
    principal: Annotated[Principal, require_roles(*_READERS)],
    state: str = "",
    category: str = "",
) -> Response:
    disputes = _service(request).list(
        actor=_actor(principal),
        state=_optional_state(state[:40]),
        category=_optional_category(category[:40]),
    )
    return render(
        request,
        "disputes/list.html",
        principal,
        disputes=disputes,
        states=tuple(State),
        categories=tuple(Category),
        state=state,
        category=category,
    )


def _render_stats(
    request: Request,
    principal: Principal,
    date_from: str,
    date_to: str,
    statistics: Statistics | None,
    *,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    t = translator(request)
    return render(
        request,
        "disputes/stats.html",
        principal,
        status_code=status_code,
        date_from=date_from,
        date_to=date_to,
        statistics=statistics,
        outcomes=OUTCOMES,
        error_text=validation_detail(t, error) if error else None,
        error_input=error.field if error else None,
    )


@pages.get("/disputes/stats")
def stats_page(
    request: Request,
    principal: Annotated[Principal, require_roles(*_READERS)],
    date_from: str = "",
    date_to: str = "",
) -> Response:
    date_from, date_to = date_from[:40], date_to[:40]
    try:
        start, end = _period(date_from, date_to)
        statistics = _service(request).statistics(start, end, actor=_actor(principal))
    except ValidationError as exc:
        return _render_stats(
            request, principal, date_from, date_to, None, error=exc, status_code=422
        )
    return _render_stats(request, principal, start.isoformat(), end.isoformat(), statistics)


def _render_detail(
    request: Request,
    principal: Principal,
    dispute: Dispute,
    *,
    values: dict[str, str] | None = None,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    t = translator(request)
    return render(
        request,
        "disputes/detail.html",
        principal,
        status_code=status_code,
        dispute=dispute,
        may_change=principal.role in _STAFF
        and not dispute.closed
        and (
            dispute.state is State.RECORDED
            or principal.role is Role.ADMIN
            or dispute.mediator == principal.username
        ),
        values=values or {},
        max_department=MAX_DEPARTMENT,
        max_note=MAX_NOTE,
        error_text=validation_detail(t, error) if error else None,
        error_input=error.field if error else None,
        notice=t("disputes.notice.changed") if request.query_params.get("done") else None,
    )


@pages.get("/disputes/{dispute_id}")
def detail_page(
    request: Request,
    dispute_id: RecordId,
    principal: Annotated[Principal, require_roles(*_READERS)],
) -> Response:
    dispute = _service(request).get(dispute_id, actor=_actor(principal))
    return _render_detail(request, principal, dispute)


@pages.post("/disputes/{dispute_id}/state")
async def change_state(
    request: Request,
    dispute_id: RecordId,
    principal: Annotated[Principal, require_roles(*_STAFF)],
) -> Response:
    form = await request.form()
    values = {
        name: form_text(form, name, _MAX_FORM_VALUE, strip=False)
        for name in ("state", "department", "note")
    }
    service = _service(request)
    try:
        wanted = parse_state(values["state"])
        await run_in_threadpool(
            partial(
                service.change_state,
                dispute_id,
                wanted,
                actor=_actor(principal),
                department=values["department"],
                note=values["note"],
            )
        )
    except RecordNotFoundError:
        raise
    except ValidationError as exc:
        dispute = await run_in_threadpool(partial(service.get, dispute_id, actor=_actor(principal)))
        return _render_detail(
            request, principal, dispute, values=values, error=exc, status_code=422
        )
    return RedirectResponse(f"/disputes/{dispute_id}?done=changed", status_code=303)


# -- JSON ----------------------------------------------------------------------------------------


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=_MAX_FORM_VALUE)] = ""
    phone: Annotated[str, Field(max_length=100)] = ""


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Annotated[str, Field(max_length=40)]
    description: Annotated[str, Field(max_length=_MAX_FORM_VALUE)]
    parties: Annotated[list[PartyIn], Field(max_length=50)]


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Annotated[str, Field(max_length=40)]
    department: Annotated[str, Field(max_length=_MAX_FORM_VALUE)] = ""
    note: Annotated[str, Field(max_length=_MAX_FORM_VALUE)] = ""


class PartyOut(BaseModel):
    name: str = Field(description="masked unless the reader mediates (staff, admin)")
    phone: str = Field(description="always masked; empty when none was given")


class ChangeOut(BaseModel):
    from_state: str | None
    to_state: str
    actor: str
    at: dt.datetime
    department: str
    note: str


class DisputeOut(BaseModel):
    id: int
    reference: str
    category: str
    description: str
    state: str
    mediator: str
    department: str
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None
    parties: list[PartyOut]
    history: list[ChangeOut]
    next_states: list[str]

    @classmethod
    def of(cls, record: Dispute) -> DisputeOut:
        return cls(
            id=record.id,
            reference=record.reference,
            category=record.category.value,
            description=record.description,
            state=record.state.value,
            mediator=record.mediator,
            department=record.department,
            created_at=record.created_at,
            updated_at=record.updated_at,
            closed_at=record.closed_at,
            parties=[PartyOut(name=p.name, phone=p.phone) for p in record.parties],
            history=[
                ChangeOut(
                    from_state=c.from_state.value if c.from_state else None,
                    to_state=c.to_state.value,
                    actor=c.actor,
                    at=c.at,
                    department=c.department,
                    note=c.note,
                )
                for c in record.history
            ],
            next_states=[s.value for s in record.next_states],
        )


class FiledOut(BaseModel):
    reference: str
    state: str


class StatisticsOut(BaseModel):
    date_from: dt.date
    date_to: dt.date
    filed: int = Field(description="disputes recorded in the period")
    outcomes: dict[str, int] = Field(
        description="disputes by the last outcome they had in the period (each counted once)"
    )
    with_outcome: int
    resolution_rate: float | None = Field(
        description="resolved / with_outcome; null when no dispute had an outcome"
    )
    definition: str


@api.post("/kiosk/disputes", status_code=201, response_model=FiledOut)
def api_file(request: Request, body: DisputeIn, principal: Annotated[Principal, public()]) -> Any:
    """File a dispute from the kiosk's own screen (404 from anywhere else)."""
    if not is_kiosk_screen(request):
        raise NotFoundError("dispute")
    filed = _service(request).file(
        DisputeInput(
            body.category,
            body.description,
            [PartyInput(p.name, p.phone) for p in body.parties],
        )
    )
    return FiledOut(reference=filed.reference, state=filed.state.value)


@api.get("/disputes", response_model=list[DisputeOut])
def api_list(
    request: Request,
    principal: Annotated[Principal, require_roles(*_READERS)],
    state: str = "",
    category: str = "",
) -> Any:
    disputes = _service(request).list(
        actor=_actor(principal),
        state=_optional_state(state[:40]),
        category=_optional_category(category[:40]),
    )
    return [DisputeOut.of(d) for d in disputes]


@api.get("/disputes/stats", response_model=StatisticsOut)
def api_stats(
    request: Request,
    principal: Annotated[Principal, require_roles(*_READERS)],
    date_from: str = "",
    date_to: str = "",
) -> Any:
    start, end = _period(date_from[:40], date_to[:40])
    statistics = _service(request).statistics(start, end, actor=_actor(principal))
    return StatisticsOut(
        date_from=start,
        date_to=end,
        filed=statistics.filed,
        outcomes={s.value: n for s, n in statistics.outcomes.items()},
        with_outcome=statistics.with_outcome,
        resolution_rate=statistics.resolution_rate,
        definition=translator(request)("disputes.stats.definition"),
    )


@api.get("/disputes/{dispute_id}", response_model=DisputeOut)
def api_get(
    request: Request,
    dispute_id: RecordId,
    principal: Annotated[Principal, require_roles(*_READERS)],
) -> Any:
    return DisputeOut.of(_service(request).get(dispute_id, actor=_actor(principal)))


@api.post("/disputes/{dispute_id}/state", response_model=DisputeOut)
def api_change_state(
    request: Request,
    dispute_id: RecordId,
    body: StateIn,
    principal: Annotated[Principal, require_roles(*_STAFF)],
) -> Any:
    changed = _service(request).change_state(
        dispute_id,
        parse_state(body.state),
        actor=_actor(principal),
        department=body.department,
        note=body.note,
    )
    return DisputeOut.of(changed)
