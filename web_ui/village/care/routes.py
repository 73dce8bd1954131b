"""Care pages (留守人员关爱): the kiosk check-in, the carer's list, the guardian's phone pages.

- ``/kiosk/care``: the kiosk's own screen only (any other client gets 404, so a PIN can be
  tried only by someone standing at the kiosk): big name tiles, a PIN keypad, "我很好".
- ``/care``: staff and admin: today's state of everyone (checked in / due / missed), taking a
  person into care, a person's history, visit notes, a new PIN.
- ``/family/care``: a guardian's own people, today's state and the history (360 px phones).

Each page route and its JSON twin (``/api/...``) call the same service method. PIN hashing and
checks go through the app's password-check gate, which bounds argon2's memory.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.accounts import Role
from agent.errors import ValidationError
from agent.village.care import CareService, PersonInput
from agent.village.care.records import CheckIn, History, Person, Today
from agent.village.family import AttemptsPausedError
from web_ui.errors import api_error, validation_detail
from web_ui.kiosk import kiosk_screen_only
from web_ui.params import RecordId, form_text
from web_ui.rendering import done_notice, render, translator
from web_ui.routes.auth import password_gate
from web_ui.security import Principal, public, require_roles, web_context
from web_ui.throttle import GateBusyError

pages = APIRouter()
api = APIRouter(tags=["care"])

T = TypeVar("T")
_BUSY_RETRY_SECONDS = "1"
_NOTICES = frozenset({"registered", "visited", "pin_set", "removed"})
Staff = Annotated[Principal, require_roles(Role.STAFF, Role.ADMIN)]
Guardian = Annotated[Principal, require_roles(Role.FAMILY)]
Anyone = Annotated[Principal, public()]


def _care(request: Request) -> CareService:
    return web_context(request).service(CareService)


async def _gated(request: Request, function: Any, *args: Any) -> Any:
    return await password_gate(request).run(function, *args)


async def _api_gated(request: Request, function: Any) -> Any:
    """A gated call for the JSON API: a full gate, or a paused PIN, is 429 with Retry-After
    (the shared handler would make the pause a plain 422, which a client would retry)."""
    t = translator(request)
    try:
        return await _gated(request, function)
    except GateBusyError:
        headers = {"Retry-After": _BUSY_RETRY_SECONDS}
        return api_error(429, None, "auth.busy", t("error.auth.busy"), headers)
    except AttemptsPausedError as exc:
        headers = {"Retry-After": str(exc.retry_after_seconds)}
        return api_error(429, exc.field, exc.message, validation_detail(t, exc), headers)


# -- the kiosk's own screen ----------------------------------------------------------------------


@pages.get("/kiosk/care", include_in_schema=False)
def kiosk_people(request: Request, principal: Anyone) -> Response:
    kiosk_screen_only(request)
    return render(request, "care/kiosk.html", principal, people=_care(request).people())


def _render_pin(
    request: Request,
    principal: Principal,
    person: Person,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "care/kiosk_pin.html",
        principal,
        status_code=status_code,
        person=person,
        error=error,
    )


@pages.get("/kiosk/care/{person_id}", include_in_schema=False)
def kiosk_pin(request: Request, person_id: RecordId, principal: Anyone) -> Response:
    kiosk_screen_only(request)
    return _render_pin(request, principal, _care(request).person(person_id))


@pages.post("/kiosk/care/{person_id}/checkin", include_in_schema=False)
async def kiosk_check_in(request: Request, person_id: RecordId, principal: Anyone) -> Response:
    kiosk_screen_only(request)
    care = _care(request)
    person = await run_in_threadpool(care.person, person_id)
    form = await request.form()
    t = translator(request)
    try:
        done: CheckIn = await _gated(
            request, functools.partial(care.check_in, person_id, form_text(form, "pin", 16))
        )
    except GateBusyError:
        response = _render_pin(
            request, principal, person, error=t("error.auth.busy"), status_code=429
        )
        response.headers["Retry-After"] = _BUSY_RETRY_SECONDS
        return response
    except AttemptsPausedError as exc:
        response = _render_pin(
            request, principal, person, error=validation_detail(t, exc), status_code=429
        )
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    except ValidationError as exc:
        if exc.field != "pin":
            raise
        return _render_pin(
            request, principal, person, error=validation_detail(t, exc), status_code=422
        )
    return render(request, "care/kiosk_done.html", principal, person=person, check_in=done)


# -- staff ---------------------------------------------------------------------------------------


@pages.get("/care", include_in_schema=False)
def carer_list(request: Request, principal: Staff) -> Response:
    return render(
        request,
        "care/today.html",
        principal,
        lines=_care(request).today(),
        me=principal.username,
        notice=done_notice(request, "care", _NOTICES),
    )


def _render_register(
    request: Request,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    context = web_context(request)
    care = _care(request)
    t = translator(request)
    return render(
        request,
        "care/register.html",
        principal,
        status_code=status_code,
        values=values
        or {"kind": "elder", "deadline": care.default_deadline.strftime("%H:%M"), "carer": ""},
        guardians=[a.username for a in context.accounts.list_users(role=Role.FAMILY)],
        carers=[a.username for a in context.accounts.list_users(role=Role.STAFF)],
        error_input=error.field if error else None,
        error_text=validation_detail(t, error) if error else None,
    )


@pages.get("/care/people/new", include_in_schema=False)
def register_page(request: Request, principal: Staff) -> Response:
    return _render_register(request, principal)


@pages.post("/care/people", include_in_schema=False)
async def register_submit(request: Request, principal: Staff) -> Response:
    form = await request.form()
    values = {
        key: form_text(form, key, 200) for key in ("name", "kind", "guardian", "carer", "deadline")
    }
    pin, again = form_text(form, "pin", 16), form_text(form, "pin_again", 16)
    try:
        if pin != again:
            raise ValidationError("pin_again", "care.pin_mismatch")
        data = PersonInput(pin=pin, **values)
        person: Person = await _gated(
            request, functools.partial(_care(request).register, data, actor=principal.actor)
        )
    except GateBusyError:
        error = ValidationError("pin", "auth.busy")
        return _render_register(request, principal, values=values, error=error, status_code=429)
    except ValidationError as exc:
        return _render_register(request, principal, values=values, error=exc, status_code=422)
    return RedirectResponse(f"/care/people/{person.id}?done=registered", status_code=303)


def _render_person(
    request: Request,
    principal: Principal,
    history: History,
    *,
    note: str = "",
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    t = translator(request)
    return render(
        request,
        "care/person.html",
        principal,
        status_code=status_code,
        history=history,
        note=note,
        error_input=error.field if error else None,
        error_text=validation_detail(t, error) if error else None,
        notice=done_notice(request, "care", _NOTICES),
    )


@pages.get("/care/people/{person_id}", include_in_schema=False)
def person_page(request: Request, person_id: RecordId, principal: Staff) -> Response:
    return _render_person(request, principal, _care(request).history(person_id))


@pages.post("/care/people/{person_id}/visit", include_in_schema=False)
async def visit_submit(request: Request, person_id: RecordId, principal: Staff) -> Response:
    care = _care(request)
    form = await request.form()
    note = form_text(form, "note", 2000)
    try:
        await run_in_threadpool(
            functools.partial(care.record_visit, person_id, note, actor=principal.actor)
        )
    except ValidationError as exc:
        if exc.field != "note":
            raise
        history = await run_in_threadpool(care.history, person_id)
        return _render_person(request, principal, history, note=note, error=exc, status_code=422)
    return RedirectResponse(f"/care/people/{person_id}?done=visited", status_code=303)


@pages.post("/care/people/{person_id}/pin", include_in_schema=False)
async def pin_submit(request: Request, person_id: RecordId, principal: Staff) -> Response:
    care = _care(request)
    form = await request.form()
    pin, again = form_text(form, "pin", 16), form_text(form, "pin_again", 16)
    try:
        if pin != again:
            raise ValidationError("pin_again", "care.pin_mismatch")
        await _gated(
            request, functools.partial(care.set_pin, person_id, pin, actor=principal.actor)
        )
    except GateBusyError:
        history = await run_in_threadpool(care.history, person_id)
        error = ValidationError("pin", "auth.busy")
        return _render_person(request, principal, history, error=error, status_code=429)
    except ValidationError as exc:
        if exc.field not in {"pin", "pin_again"}:
            raise
        history = await run_in_threadpool(care.history, person_id)
        return _render_person(request, principal, history, error=exc, status_code=422)
    return RedirectResponse(f"/care/people/{person_id}?done=pin_set", status_code=303)


@pages.post("/care/people/{person_id}/remove", include_in_schema=False)
def remove_submit(request: Request, person_id: RecordId, principal: Staff) -> Response:
    _care(request).remove(person_id, actor=principal.actor)
    return RedirectResponse("/care?done=removed", status_code=303)


# -- guardians (phones) --------------------------------------------------------------------------


@pages.get("/family/care", include_in_schema=False)
def guardian_list(request: Request, principal: Guardian) -> Response:
    lines = _care(request).guarded_by(str(principal.username))
    return render(request, "care/family.html", principal, lines=lines)


@pages.get("/family/care/{person_id}", include_in_schema=False)
def guardian_person(request: Request, person_id: RecordId, principal: Guardian) -> Response:
    history = _care(request).guardian_history(str(principal.username), person_id)
    return render(request, "care/family_person.html", principal, history=history)


# -- JSON ----------------------------------------------------------------------------------------


class PersonOut(BaseModel):
    id: int
    name: str
    kind: str
    deadline: str
    guardian: str | None
    carer: str | None
    photo_url: str | None

    @classmethod
    def of(cls, person: Person) -> PersonOut:
        return cls(
            id=person.id,
            name=person.name,
            kind=person.kind.value,
            deadline=person.deadline.strftime("%H:%M"),
            guardian=person.guardian,
            carer=person.carer,
            photo_url=person.photo_url,
        )


class KioskPersonOut(BaseModel):
    """What the kiosk's tiles need, nothing more."""

    id: int
    name: str
    photo_url: str | None


class TodayOut(BaseModel):
    person: PersonOut
    day: date
    deadline_at: datetime
    state: str
    checked_in_at: datetime | None
    alerted: bool

    @classmethod
    def of(cls, line: Today) -> TodayOut:
        return cls(
            person=PersonOut.of(line.person),
            day=line.day,
            deadline_at=line.deadline_at,
            state=line.state.value,
            checked_in_at=line.checked_in_at,
            alerted=line.alerted,
        )


class CheckInOut(BaseModel):
    day: date
    at: datetime
    source: str
    actor: str
    note: str
    late: bool

    @classmethod
    def of(cls, check_in: CheckIn) -> CheckInOut:
        return cls(
            day=check_in.day,
            at=check_in.at,
            source=check_in.source.value,
            actor=check_in.actor,
            note=check_in.note,
            late=check_in.late,
        )


class AlertOut(BaseModel):
    day: date
    deadline_at: datetime
    raised_at: datetime


class HistoryOut(BaseModel):
    today: TodayOut
    check_ins: list[CheckInOut]
    alerts: list[AlertOut]

    @classmethod
    def of(cls, history: History) -> HistoryOut:
        return cls(
            today=TodayOut.of(history.today),
            check_ins=[CheckInOut.of(c) for c in history.check_ins],
            alerts=[
                AlertOut(day=a.day, deadline_at=a.deadline_at, raised_at=a.raised_at)
                for a in history.alerts
            ],
        )


class PersonIn(BaseModel):
    name: str
    kind: str
    guardian: str
    carer: str
    pin: str
    deadline: str = ""


class PinIn(BaseModel):
    pin: str


class VisitIn(BaseModel):
    note: str


@api.get("/kiosk/care")
def api_kiosk_people(request: Request, principal: Anyone) -> list[KioskPersonOut]:
    """The kiosk's tiles (its own screen only)."""
    kiosk_screen_only(request)
    return [
        KioskPersonOut(id=p.id, name=p.name, photo_url=p.photo_url) for p in _care(request).people()
    ]


@api.post("/kiosk/care/{person_id}/checkin", response_model=CheckInOut)
async def api_kiosk_check_in(
    request: Request, person_id: RecordId, body: PinIn, principal: Anyone
) -> Any:
    """ "I am fine" with the PIN (its own screen only); 429 while the PIN is paused."""
    kiosk_screen_only(request)
    done = await _api_gated(
        request, functools.partial(_care(request).check_in, person_id, body.pin[:16])
    )
    return done if isinstance(done, Response) else CheckInOut.of(done)


@api.get("/care/today")
def api_today(request: Request, principal: Staff) -> list[TodayOut]:
    return [TodayOut.of(line) for line in _care(request).today()]


@api.post("/care/people", status_code=201, response_model=PersonOut)
async def api_register(request: Request, body: PersonIn, principal: Staff) -> Any:
    data = PersonInput(**body.model_dump())
    person = await _api_gated(
        request, functools.partial(_care(request).register, data, actor=principal.actor)
    )
    return person if isinstance(person, Response) else PersonOut.of(person)


@api.get("/care/people/{person_id}")
def api_person(request: Request, person_id: RecordId, principal: Staff) -> HistoryOut:
    return HistoryOut.of(_care(request).history(person_id))


@api.post("/care/people/{person_id}/visits", status_code=201)
def api_visit(request: Request, person_id: RecordId, body: VisitIn, principal: Staff) -> CheckInOut:
    done = _care(request).record_visit(person_id, body.note, actor=principal.actor)
    return CheckInOut.of(done)


@api.get("/care/mine")
def api_guardian_list(request: Request, principal: Guardian) -> list[TodayOut]:
    return [TodayOut.of(line) for line in _care(request).guarded_by(str(principal.username))]


@api.get("/care/mine/{person_id}")
def api_guardian_person(request: Request, person_id: RecordId, principal: Guardian) -> HistoryOut:
    return HistoryOut.of(_care(request).guardian_history(str(principal.username), person_id))
