"""Patrol pages: an admin keeps the routes (必巡线); an officer walks rounds camera by camera;
police and admin read the records (巡逻记录) and the weekly report.

Each route parses the form, calls one PatrolService method and renders; the rules (whose
round, how long a point must be looked at) are the service's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from agent.accounts import Role
from agent.errors import RecordNotFoundError, ValidationError
from agent.village.patrol import Round, RoundFilter, RoundStatus, Route
from web_ui.errors import validation_detail
from web_ui.params import RecordId, form_text
from web_ui.rendering import done_notice, render, translator
from web_ui.security import Principal, require_roles, web_context
from web_ui.village.patrol.common import patrol, picture_source, snapshot_url

router = APIRouter(include_in_schema=False)

READERS = (Role.POLICE, Role.ADMIN)
_NOTICES = frozenset({"created", "saved", "retired", "snapshot", "completed", "ended"})
_FilterText = Annotated[str, Query(max_length=40)]


def round_filter(
    status: str = "", route_id: str = "", officer: str = "", date_from: str = "", date_to: str = ""
) -> RoundFilter:
    """The records' filters from query text (blank: no filter)."""
    try:
        chosen = RoundStatus(status) if status else None
    except ValueError as exc:
        raise ValidationError("status", "patrol.filter.invalid") from exc
    try:
        route = int(route_id) if route_id else None
        start = dt.date.fromisoformat(date_from) if date_from else None
        end = dt.date.fromisoformat(date_to) if date_to else None
    except ValueError as exc:
        raise ValidationError("filter", "patrol.filter.invalid") from exc
    return RoundFilter(chosen, route, officer.strip() or None, start, end)


# -- routes (admin) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteFields:
    """A route form as typed (kept for a re-rendered form)."""

    name: str = ""
    cameras: list[str] = field(default_factory=list)
    min_look_seconds: str = "15"
    schedule: str = ""

    @classmethod
    def of(cls, route: Route | None) -> RouteFields:
        if route is None:
            return cls()
        return cls(
            route.name, list(route.cameras), str(route.min_look_seconds), route.schedule_text
        )

    @classmethod
    def from_form(cls, form: FormData, slots: int) -> RouteFields:
        return cls(
            name=form_text(form, "name", 100),
            cameras=[form_text(form, f"point_{n}", 64) for n in range(1, slots + 1)],
            min_look_seconds=form_text(form, "min_look_seconds", 10),
            schedule=form_text(form, "schedule", 400),
        )


def _render_routes(
    request: Request,
    principal: Principal,
    *,
    editing: Route | None = None,
    values: RouteFields | None = None,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    service = patrol(request)
    return render(
        request,
        "patrol/routes.html",
        principal,
        status_code=status_code,
        routes=service.list_routes(),
        cameras=service.cameras(),
        editing=editing,
        values=values if values is not None else RouteFields.of(editing),
        error_input=error.field if error else None,
        error_detail=validation_detail(translator(request), error) if error else None,
        notice=done_notice(request, "patrol", _NOTICES),
    )


@router.get("/admin/patrol/routes")
def routes_page(
    request: Request, principal: Annotated[Principal, require_roles(Role.ADMIN)]
) -> Response:
    return _render_routes(request, principal)


@router.post("/admin/patrol/routes")
async def create_route(
    request: Request, principal: Annotated[Principal, require_roles(Role.ADMIN)]
) -> Response:
    service = patrol(request)
    values = RouteFields.from_form(await request.form(), len(service.cameras()))
    try:
        await run_in_threadpool(
            lambda: service.create_route(
                name=values.name,
                cameras=values.cameras,
                min_look_seconds=values.min_look_seconds,
                schedule=values.schedule,
                actor=principal.actor,
            )
        )
    except ValidationError as exc:
        return await run_in_threadpool(
            partial(_render_routes, request, principal, values=values, error=exc, status_code=422)
        )
    return RedirectResponse("/admin/patrol/routes?done=created", status_code=303)


@router.get("/admin/patrol/routes/{route_id}")
def edit_route_page(
    request: Request,
    route_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> Response:
    return _render_routes(request, principal, editing=patrol(request).get_route(route_id))


@router.post("/admin/patrol/routes/{route_id}")
async def update_route(
    request: Request,
    route_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> Response:
    service = patrol(request)
    values = RouteFields.from_form(await request.form(), len(service.cameras()))
    try:
        await run_in_threadpool(
            lambda: service.update_route(
                route_id,
                name=values.name,
                cameras=values.cameras,
                min_look_seconds=values.min_look_seconds,
                schedule=values.schedule,
                actor=principal.actor,
            )
        )
    except ValidationError as exc:
        editing = await run_in_threadpool(service.get_route, route_id)
        return await run_in_threadpool(
            partial(
                _render_routes,
                request,
                principal,
                editing=editing,
                values=values,
                error=exc,
                status_code=422,
            )
        )
    return RedirectResponse("/admin/patrol/routes?done=saved", status_code=303)


@router.post("/admin/patrol/routes/{route_id}/retire")
def retire_route(
    request: Request,
    route_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> Response:
    patrol(request).retire_route(route_id, actor=principal.actor)
    return RedirectResponse("/admin/patrol/routes?done=retired", status_code=303)


# -- rounds --------------------------------------------------------------------------------------


@router.get("/police/patrol/rounds")
def rounds_page(
    request: Request,
    principal: Annotated[Principal, require_roles(*READERS)],
    status: _FilterText = "",
    route_id: _FilterText = "",
    officer: Annotated[str, Query(max_length=100)] = "",
    date_from: _FilterText = "",
    date_to: _FilterText = "",
) -> Response:
    """Routes to walk (police), the officer's round in progress, and the records."""
    service = patrol(request)
    error: ValidationError | None = None
    try:
        filters = round_filter(status, route_id, officer, date_from, date_to)
    except ValidationError as exc:
        # A hand-edited address: the records unfiltered, and what was wrong with it.
        error, filters = exc, RoundFilter()
        status = route_id = officer = date_from = date_to = ""
    return render(
        request,
        "patrol/rounds.html",
        principal,
        status_code=422 if error else 200,
        error_detail=validation_detail(translator(request), error) if error else None,
        walker=principal.role is Role.POLICE,
        open_round=service.open_round(principal.actor) if principal.role is Role.POLICE else None,
        routes=service.list_routes(),
        rounds=service.list_rounds(filters),
        officers=service.officers(),
        statuses=[s.value for s in RoundStatus],
        filters={
            "status": status,
            "route_id": route_id,
            "officer": officer,
            "date_from": date_from,
            "date_to": date_to,
        },
        camera_name=service.camera_name,
        notice=done_notice(request, "patrol", _NOTICES),
    )


@router.post("/police/patrol/rounds")
async def start_round(
    request: Request, principal: Annotated[Principal, require_roles(Role.POLICE)]
) -> Response:
    form = await request.form()
    raw = form_text(form, "route_id", 20)
    if not raw.isdigit():
        raise RecordNotFoundError("route_id", "patrol.route.not_found")
    service = patrol(request)
    started = await run_in_threadpool(lambda: service.start_round(int(raw), actor=principal.actor))
    return RedirectResponse(f"/police/patrol/rounds/{started.id}", status_code=303)


def _render_round(
    request: Request,
    principal: Principal,
    walked: Round,
    *,
    note: str | None = None,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    """The walking view for the officer of a round in progress, the record for anyone else."""
    service = patrol(request)
    current = walked.current if walked.officer == principal.actor else None
    wait = service.look_remaining(walked) if current is not None else 0.0
    return render(
        request,
        "patrol/round.html",
        principal,
        status_code=status_code,
        round=walked,
        current=current,
        wait_seconds=round(wait, 1),
        note=note if note is not None else (current.note if current else ""),
        camera_name=service.camera_name,
        snapshot_url=snapshot_url,
        error_input=error.field if error else None,
        error_detail=validation_detail(translator(request), error) if error else None,
        notice=done_notice(request, "patrol", _NOTICES),
    )


@router.get("/police/patrol/rounds/{round_id}")
def round_page(
    request: Request,
    round_id: RecordId,
    principal: Annotated[Principal, require_roles(*READERS)],
) -> Response:
    return _render_round(request, principal, patrol(request).get_round(round_id))


@router.post("/police/patrol/rounds/{round_id}/points/{position}")
async def point_action(
    request: Request,
    round_id: RecordId,
    position: Annotated[int, Path(ge=0, le=64)],
    principal: Annotated[Principal, require_roles(Role.POLICE)],
) -> Response:
    """``action=next`` completes the point (with the note); ``action=snapshot`` keeps the
    camera's current masked still and the note, and stays on the point."""
    form = await request.form()
    note = form_text(form, "note", 2000)
    action = form_text(form, "action", 20)
    service = patrol(request)
    context = web_context(request)
    try:
        if action == "snapshot":
            await run_in_threadpool(
                lambda: service.save_snapshot(
                    round_id,
                    position,
                    actor=principal.actor,
                    picture=picture_source(context),
                    note=note,
                )
            )
            return RedirectResponse(
                f"/police/patrol/rounds/{round_id}?done=snapshot", status_code=303
            )
        walked = await run_in_threadpool(
            lambda: service.complete_point(round_id, position, actor=principal.actor, note=note)
        )
    except ValidationError as exc:
        current = await run_in_threadpool(service.get_round, round_id)
        return await run_in_threadpool(
            partial(
                _render_round, request, principal, current, note=note, error=exc, status_code=422
            )
        )
    done = "?done=completed" if walked.status is RoundStatus.COMPLETED else ""
    return RedirectResponse(f"/police/patrol/rounds/{round_id}{done}", status_code=303)


@router.post("/police/patrol/rounds/{round_id}/end")
def end_round(
    request: Request,
    round_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.POLICE)],
) -> Response:
    patrol(request).end_round(round_id, actor=principal.actor)
    return RedirectResponse(f"/police/patrol/rounds/{round_id}?done=ended", status_code=303)


@router.get("/police/patrol/snapshots/{snapshot_id}.jpg")
def snapshot_picture(
    request: Request,
    snapshot_id: RecordId,
    principal: Annotated[Principal, require_roles(*READERS, same_origin=True)],
) -> Response:
    """A snapshot kept during a round (masked when it was taken); every view is audited."""
    jpeg = patrol(request).snapshot_jpeg(snapshot_id, actor=principal.actor)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/police/patrol/report")
def report_page(
    request: Request,
    principal: Annotated[Principal, require_roles(*READERS)],
    week: _FilterText = "",
) -> Response:
    service = patrol(request)
    error: ValidationError | None = None
    try:
        report = service.weekly_report(week or None)
    except ValidationError as exc:
        error, report = exc, service.weekly_report(None)
    year, number = report.start.isocalendar()[:2]
    previous = (report.start - dt.timedelta(days=7)).isocalendar()
    following = (report.start + dt.timedelta(days=7)).isocalendar()
    return render(
        request,
        "patrol/report.html",
        principal,
        status_code=422 if error else 200,
        error_detail=validation_detail(translator(request), error) if error else None,
        report=report,
        previous_week=f"{previous[0]}-W{previous[1]:02d}",
        next_week=f"{following[0]}-W{following[1]:02d}",
        this_week=service.this_week(),
        week_label=f"{year}-W{number:02d}",
    )
