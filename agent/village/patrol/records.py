"""What a patrol route (必巡线) and a round (巡逻记录) are, and what an admin may type."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from agent.errors import ValidationError
from agent.village.patrol.schedule import Window, format_schedule, parse_schedule

MAX_ROUTE_NAME = 60
MAX_NOTE = 500
MIN_LOOK_SECONDS = 1
MAX_LOOK_SECONDS = 600
MAX_SNAPSHOTS_PER_POINT = 5


class RoundStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"  # every point looked at
    PARTIAL = "partial"  # ended before the last point
    MISSED = "missed"  # a scheduled window passed without a completed round


@dataclass(frozen=True)
class RouteInput:
    """A route as an admin typed it, checked: build it with :meth:`parse`."""

    name: str
    cameras: tuple[str, ...]
    min_look_seconds: int
    schedule: tuple[Window, ...]

    @classmethod
    def parse(
        cls,
        *,
        name: str,
        cameras: Sequence[str],
        min_look_seconds: int | str,
        schedule: str | Iterable[str],
        known_cameras: Iterable[str],
    ) -> RouteInput:
        """Raises ValidationError(field, code) for the first field that is wrong; a camera
        must be one of ``known_cameras`` (the kiosk's configured cameras)."""
        name = " ".join(name.split())
        if not name:
            raise ValidationError("name", "patrol.name.required")
        if len(name) > MAX_ROUTE_NAME or not name.isprintable():
            raise ValidationError("name", "patrol.name.invalid")
        points = tuple(camera.strip() for camera in cameras if camera.strip())
        if not points:
            raise ValidationError("cameras", "patrol.cameras.required")
        known = set(known_cameras)
        if any(camera not in known for camera in points):
            raise ValidationError("cameras", "patrol.cameras.unknown")
        if len(set(points)) != len(points):
            raise ValidationError("cameras", "patrol.cameras.duplicate")
        return cls(name, points, _look_seconds(min_look_seconds), parse_schedule(schedule))

    @property
    def schedule_text(self) -> str:
        return format_schedule(self.schedule)


def _look_seconds(value: int | str) -> int:
    if isinstance(value, str):
        if not value.strip():
            raise ValidationError("min_look_seconds", "patrol.min_look_seconds.required")
        try:
            value = int(value.strip())
        except ValueError as exc:
            raise ValidationError("min_look_seconds", "patrol.min_look_seconds.invalid") from exc
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("min_look_seconds", "patrol.min_look_seconds.invalid")
    if not MIN_LOOK_SECONDS <= value <= MAX_LOOK_SECONDS:
        raise ValidationError("min_look_seconds", "patrol.min_look_seconds.range")
    return value


def clean_note(note: str) -> str:
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ValidationError("note", "patrol.note.too_long")
    if any(not ch.isprintable() and ch not in "\n\r\t" for ch in note):
        raise ValidationError("note", "patrol.note.invalid")
    return note


@dataclass(frozen=True)
class Route:
    id: int
    name: str
    cameras: tuple[str, ...]
    min_look_seconds: int
    schedule: tuple[Window, ...]
    active: bool
    created_by: str
    created_at: datetime
    # Windows opening before this (the schedule's last change) are not held against anyone.
    schedule_from: datetime

    @property
    def schedule_text(self) -> str:
        return format_schedule(self.schedule)


@dataclass(frozen=True)
class Snapshot:
    id: int
    round_id: int
    position: int
    camera_id: str
    taken_at: datetime


@dataclass(frozen=True)
class RoundPoint:
    position: int
    camera_id: str
    shown_at: datetime | None
    completed_at: datetime | None
    look_seconds: float | None
    note: str
    snapshots: tuple[Snapshot, ...] = ()

    @property
    def done(self) -> bool:
        return self.completed_at is not None


@dataclass(frozen=True)
class Round:
    id: int
    route_id: int
    route_name: str
    officer: str | None  # None for a missed window nobody walked
    status: RoundStatus
    window_start: datetime | None  # None: walked ad hoc, outside the route's windows
    window_end: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    min_look_seconds: int
    points: tuple[RoundPoint, ...] = ()
    points_total: int = 0
    points_done: int = 0
    notes: int = 0

    @property
    def current(self) -> RoundPoint | None:
        """The point being looked at: the first not completed, while the round is walked."""
        if self.status is not RoundStatus.IN_PROGRESS:
            return None
        return next((point for point in self.points if not point.done), None)

    @property
    def scheduled(self) -> bool:
        return self.window_start is not None


@dataclass(frozen=True)
class RoundFilter:
    status: RoundStatus | None = None
    route_id: int | None = None
    officer: str | None = None
    date_from: date | None = None  # local days, inclusive
    date_to: date | None = None


@dataclass(frozen=True)
class ReportRow:
    """One line of the weekly report: an officer's rounds on one route (``officer`` None: the
    route's missed windows, which belong to nobody)."""

    route_id: int
    route_name: str
    officer: str | None
    completed: int
    partial: int
    missed: int
    average_look_seconds: float | None


@dataclass(frozen=True)
class WeeklyReport:
    week: str  # ISO week, 2026-W49
    start: date  # Monday, local
    end: date  # Sunday, local
    rows: tuple[ReportRow, ...]
