"""The patrol JSON API (under /api/patrol): the same service methods as the pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from agent.accounts import Role
from web_ui.params import RecordId
from web_ui.security import Principal, require_roles, web_context
from web_ui.village.patrol.common import (
    RoundOut,
    RouteOut,
    WeeklyReportOut,
    patrol,
    picture_source,
)
from web_ui.village.patrol.pages import READERS, round_filter

router = APIRouter(prefix="/patrol", tags=["patrol"])

_Filter = Annotated[str, Query(max_length=40)]
_Position = Annotated[int, Path(ge=0, le=64)]


class RouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=100)]
    cameras: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=16)]
    min_look_seconds: int
    # Daily windows in the kiosk's local time, "22:00-23:00"; empty: walked only ad hoc.
    schedule: Annotated[list[Annotated[str, Field(max_length=20)]], Field(max_length=12)] = []


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    route_id: Annotated[int, Field(ge=1, le=2**53)]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str | None, Field(max_length=2000)] = None


@router.get("/routes")
def list_routes(
    request: Request, principal: Annotated[Principal, require_roles(*READERS)]
) -> list[RouteOut]:
    return [RouteOut.of(route) for route in patrol(request).list_routes()]


@router.post("/routes", status_code=201)
def create_route(
    request: Request, body: RouteIn, principal: Annotated[Principal, require_roles(Role.ADMIN)]
) -> RouteOut:
    """A must-patrol route: cameras in walking order (ids of this kiosk's cameras)."""
    route = patrol(request).create_route(
        name=body.name,
        cameras=body.cameras,
        min_look_seconds=body.min_look_seconds,
        schedule=body.schedule,
        actor=principal.actor,
    )
    return RouteOut.of(route)


@router.post("/routes/{route_id}")
def update_route(
    request: Request,
    route_id: RecordId,
    body: RouteIn,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> RouteOut:
    route = patrol(request).update_route(
        route_id,
        name=body.name,
        cameras=body.cameras,
        min_look_seconds=body.min_look_seconds,
        schedule=body.schedule,
        actor=principal.actor,
    )
    return RouteOut.of(route)


@router.post("/routes/{route_id}/retire")
def retire_route(
    request: Request,
    route_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.ADMIN)],
) -> RouteOut:
    return RouteOut.of(patrol(request).retire_route(route_id, actor=principal.actor))


@router.get("/rounds")
def list_rounds(
    request: Request,
    principal: Annotated[Principal, require_roles(*READERS)],
    status: _Filter = "",
    route_id: _Filter = "",
    officer: Annotated[str, Query(max_length=100)] = "",
    date_from: _Filter = "",
    date_to: _Filter = "",
) -> list[RoundOut]:
    """Rounds newest first; ``status`` completed / partial / missed / in_progress, dates are
    local days (inclusive)."""
    filters = round_filter(status, route_id, officer, date_from, date_to)
    return [RoundOut.of(walked) for walked in patrol(request).list_rounds(filters)]


@router.post("/rounds", status_code=201)
def start_round(
    request: Request, body: StartIn, principal: Annotated[Principal, require_roles(Role.POLICE)]
) -> RoundOut:
    walked = patrol(request).start_round(body.route_id, actor=principal.actor)
    return RoundOut.of(walked, with_points=True)


@router.get("/rounds/{round_id}")
def get_round(
    request: Request,
    round_id: RecordId,
    principal: Annotated[Principal, require_roles(*READERS)],
) -> RoundOut:
    return RoundOut.of(patrol(request).get_round(round_id), with_points=True)


@router.post("/rounds/{round_id}/points/{position}/complete")
def complete_point(
    request: Request,
    round_id: RecordId,
    position: _Position,
    body: NoteIn,
    principal: Annotated[Principal, require_roles(Role.POLICE)],
) -> RoundOut:
    """Refused (422, ``patrol.point.too_soon``) before the route's minimum look time."""
    walked = patrol(request).complete_point(
        round_id, position, actor=principal.actor, note=body.note
    )
    return RoundOut.of(walked, with_points=True)


@router.post("/rounds/{round_id}/points/{position}/snapshot", status_code=201)
async def save_snapshot(
    request: Request,
    round_id: RecordId,
    position: _Position,
    body: NoteIn,
    principal: Annotated[Principal, require_roles(Role.POLICE)],
) -> RoundOut:
    """Keep the camera's current masked still with the point (and the note, if given)."""
    service, context = patrol(request), web_context(request)
    walked = await run_in_threadpool(
        lambda: service.save_snapshot(
            round_id,
            position,
            actor=principal.actor,
            picture=picture_source(context),
            note=body.note,
        )
    )
    return RoundOut.of(walked, with_points=True)


@router.post("/rounds/{round_id}/end")
def end_round(
    request: Request,
    round_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.POLICE)],
) -> RoundOut:
    """End before the last point: the round is recorded partial."""
    return RoundOut.of(patrol(request).end_round(round_id, actor=principal.actor), with_points=True)


@router.get("/report")
def weekly_report(
    request: Request,
    principal: Annotated[Principal, require_roles(*READERS)],
    week: _Filter = "",
) -> WeeklyReportOut:
    """Per route and officer for one ISO week (``2026-W49``; blank: this week)."""
    return WeeklyReportOut.of(patrol(request).weekly_report(week or None))
