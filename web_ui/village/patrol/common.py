"""What the patrol pages and their JSON twins share: the service, the picture source and the
output shapes."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import Request
from pydantic import BaseModel

from agent.village.patrol import (
    PatrolService,
    ReportRow,
    Round,
    RoundPoint,
    Route,
    WeeklyReport,
)
from agent.village.patrol.service import PictureSource
from web_ui.context import WebContext
from web_ui.security import web_context


def patrol(request: Request) -> PatrolService:
    return web_context(request).service(PatrolService)


def picture_source(context: WebContext) -> PictureSource:
    """A camera's current masked still, from the same pictures the snapshot page serves."""

    def take(camera_id: str) -> bytes | None:
        pictures = context.pictures.get(camera_id)
        picture = pictures.latest() if pictures is not None else None
        return picture.jpeg if picture is not None else None

    return take


class RouteOut(BaseModel):
    id: int
    name: str
    cameras: list[str]
    min_look_seconds: int
    schedule: list[str]  # daily windows in the kiosk's local time, "22:00-23:00"
    active: bool
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, route: Route) -> RouteOut:
        return cls(
            id=route.id,
            name=route.name,
            cameras=list(route.cameras),
            min_look_seconds=route.min_look_seconds,
            schedule=[str(window) for window in route.schedule],
            active=route.active,
            created_by=route.created_by,
            created_at=route.created_at,
        )


class SnapshotOut(BaseModel):
    id: int
    taken_at: datetime
    url: str


class PointOut(BaseModel):
    position: int
    camera_id: str
    shown_at: datetime | None
    completed_at: datetime | None
    look_seconds: float | None
    note: str
    snapshots: list[SnapshotOut]

    @classmethod
    def of(cls, point: RoundPoint) -> PointOut:
        return cls(
            position=point.position,
            camera_id=point.camera_id,
            shown_at=point.shown_at,
            completed_at=point.completed_at,
            look_seconds=point.look_seconds,
            note=point.note,
            snapshots=[
                SnapshotOut(id=s.id, taken_at=s.taken_at, url=snapshot_url(s.id))
                for s in point.snapshots
            ],
        )


class RoundOut(BaseModel):
    id: int
    route_id: int
    route_name: str
    officer: str | None
    status: str
    scheduled: bool
    window_start: datetime | None
    window_end: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    min_look_seconds: int
    points_total: int
    points_done: int
    notes: int
    # Only in a single round's answer; lists leave them out.
    points: list[PointOut] | None = None
    current_position: int | None = None

    @classmethod
    def of(cls, walked: Round, *, with_points: bool = False) -> RoundOut:
        current = walked.current
        return cls(
            id=walked.id,
            route_id=walked.route_id,
            route_name=walked.route_name,
            officer=walked.officer,
            status=walked.status.value,
            scheduled=walked.scheduled,
            window_start=walked.window_start,
            window_end=walked.window_end,
            started_at=walked.started_at,
            finished_at=walked.finished_at,
            min_look_seconds=walked.min_look_seconds,
            points_total=walked.points_total,
            points_done=walked.points_done,
            notes=walked.notes,
            points=[PointOut.of(point) for point in walked.points] if with_points else None,
            current_position=current.position if current is not None else None,
        )


class ReportRowOut(BaseModel):
    route_id: int
    route_name: str
    officer: str | None  # None: the route's missed windows
    completed: int
    partial: int
    missed: int
    average_look_seconds: float | None

    @classmethod
    def of(cls, row: ReportRow) -> ReportRowOut:
        return cls(**vars(row))


class WeeklyReportOut(BaseModel):
    week: str
    start: date
    end: date
    rows: list[ReportRowOut]

    @classmethod
    def of(cls, report: WeeklyReport) -> WeeklyReportOut:
        return cls(
            week=report.week,
            start=report.start,
            end=report.end,
            rows=[ReportRowOut.of(row) for row in report.rows],
        )


def snapshot_url(snapshot_id: int) -> str:
    return f"/police/patrol/snapshots/{snapshot_id}.jpg"
