"""Video patrol rounds (视频巡逻): routes of must-patrol cameras (必巡线) and the rounds walked.

Rules the service holds, whoever calls it:
- A route's cameras are the kiosk's configured cameras, each once, in walking order.
- A round is walked by the officer who started it, one point after the other; nobody else can
  write into it (NotAllowedError), and an officer walks one round at a time.
- A point is shown from the moment it becomes the current one (the round's start, or the
  previous point's completion); completing it earlier than the route's minimum look time is
  refused, whatever the browser's button said.
- A round with every point looked at is completed; one ended early (by the officer, or left
  untouched for ``abandon_after_minutes``) is partial. A round started inside one of the
  route's windows counts for that window; one started outside any is ad hoc.
- A window that ended without a completed round is recorded missed once, by ``tick``, and
  reported to the county in the same transaction (``patrol_missed``); a finished round is
  reported as ``patrol_round`` with counts only (notes may name people, so they stay here).
- A note is free text an officer types about what they saw, so it may name a villager or a
  number plate: it is sealed with the vault at rest and opened only to be shown.

Retention (``purge_expired``): snapshots are pictures of people on the square, kept like
motion-event media (``snapshot_retention_days``, 30 by default); the round records hold
who patrolled what and when plus short notes, the evidence for a year's supervision of the
patrol duty, and are deleted after ``round_retention_days`` (365 by default).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.audit import AuditLog
from agent.errors import NotAllowedError, RecordNotFoundError, ValidationError
from agent.privacy import Vault
from agent.store.database import Database
from agent.village.patrol.records import (
    MAX_SNAPSHOTS_PER_POINT,
    ReportRow,
    Round,
    RoundFilter,
    RoundPoint,
    RoundStatus,
    Route,
    RouteInput,
    Snapshot,
    WeeklyReport,
    clean_note,
)
from agent.village.patrol.schedule import Occurrence, occurrences, parse_schedule, window_at
from agent.village.patrol.schema import AREA, MIGRATIONS
from agent.village.service import ReportSink, ServiceParts, utc_now

log = logging.getLogger(__name__)

ROUND_REPORT = "patrol_round"
MISSED_REPORT = "patrol_missed"
SYSTEM_ACTOR = "system"
MAX_LIST = 500
# A JPEG bigger than this is not a camera still (a 1080p still is about 300 KB).
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024
_DAY = timedelta(days=1)

# Picture source for a snapshot: the camera's current masked still as JPEG, None without a frame.
PictureSource = Callable[[str], bytes | None]


class PatrolSettings(BaseModel):
    """``[services.patrol]`` in the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # IANA name of the zone the windows are in; blank: the kiosk's own local time, as its UTC
    # offset at start (name the zone where clocks change for summer time).
    timezone: str = ""
    round_retention_days: int = Field(default=365, ge=30, le=3650)
    snapshot_retention_days: int = Field(default=30, ge=1, le=365)
    abandon_after_minutes: int = Field(default=120, ge=10, le=1440)
    # How far back a restarted kiosk still records windows as missed.
    missed_lookback_days: int = Field(default=7, ge=1, le=31)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def zone(self) -> tzinfo:
        if self.timezone:
            return ZoneInfo(self.timezone)
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else UTC


ERROR_MESSAGES: dict[str, str] = {
    "patrol.name.required": "Enter the route's name.",
    "patrol.name.invalid": "The name is too long or contains characters that are not allowed.",
    "patrol.cameras.required": "Choose at least one camera.",
    "patrol.cameras.unknown": "A chosen camera is not one of this kiosk's cameras.",
    "patrol.cameras.duplicate": "A camera appears twice in the route.",
    "patrol.min_look_seconds.required": "Enter the minimum look time.",
    "patrol.min_look_seconds.invalid": "The minimum look time must be a whole number of seconds.",
    "patrol.min_look_seconds.range": "The minimum look time must be between 1 and 600 seconds.",
    "patrol.schedule.format": "Write each window as 22:00-23:00, separated by commas.",
    "patrol.schedule.empty_window": "A window must not start and end at the same time.",
    "patrol.schedule.too_long": "A window may be at most 12 hours long.",
    "patrol.schedule.too_many": "At most 12 windows a day.",
    "patrol.schedule.overlap": "The windows overlap.",
    "patrol.note.too_long": "The note is too long (at most 500 characters).",
    "patrol.note.invalid": "The note contains characters that are not allowed.",
    "patrol.route.not_found": "This patrol route does not exist.",
    "patrol.route.retired": "This route is no longer walked.",
    "patrol.round.not_found": "This patrol round does not exist (it may have been purged).",
    "patrol.round.not_yours": "This round is another officer's; only they can write into it.",
    "patrol.round.finished": "This round has ended.",
    "patrol.round.in_progress": "Finish or end your round in progress first.",
    "patrol.point.not_current": "This is not the point being looked at.",
    "patrol.point.too_soon": "Look at this camera for the minimum look time before going on.",
    "patrol.snapshot.no_frame": "The camera has no picture right now; try again.",
    "patrol.snapshot.too_many": "At most 5 snapshots per point.",
    "patrol.snapshot.not_found": "This snapshot does not exist (it may have been purged).",
    "patrol.week.invalid": "The week must look like 2026-W49.",
    "patrol.filter.invalid": "A filter value could not be read.",
}


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_ROUND_COLUMNS = (
    "r.id, r.route_id, p.name, r.officer, r.status, r.window_start, r.window_end,"
    " r.started_at, r.finished_at, r.min_look_seconds,"
    " (SELECT COUNT(*) FROM patrol_round_points t WHERE t.round_id = r.id),"
    " (SELECT COUNT(*) FROM patrol_round_points t WHERE t.round_id = r.id"
    "  AND t.completed_at IS NOT NULL),"
    " (SELECT COUNT(*) FROM patrol_round_points t WHERE t.round_id = r.id AND t.note != '')"
)
# The moment a round belongs to: its start, or for a missed one the window's.
_ROUND_TIME = "COALESCE(r.started_at, r.window_start)"


class PatrolService:
    def __init__(
        self,
        database: Database,
        audit: AuditLog,
        report: ReportSink,
        *,
        vault: Vault,
        cameras: Mapping[str, str],
        settings: PatrolSettings | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._database = database
        self._audit = audit
        self._report = report
        self._vault = vault
        self._cameras = dict(cameras)  # id -> name, in the config's order
        self._settings = settings or PatrolSettings()
        self._tz = self._settings.zone()
        self._clock = clock

    @property
    def timezone(self) -> tzinfo:
        return self._tz

    def cameras(self) -> Mapping[str, str]:
        """The cameras a route may name (id -> name)."""
        return dict(self._cameras)

    def camera_name(self, camera_id: str) -> str:
        return self._cameras.get(camera_id) or camera_id

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    # -- the VillageService protocol -----------------------------------------------------------

    def migrate(self) -> None:
        self._database.migrate(AREA, MIGRATIONS)

    def tick(self) -> None:
        """Close rounds left open too long (partial), then record each window that ended
        without a completed round as missed, once, with its report."""
        now = self._now()
        with self._database.write() as db:
            self._close_abandoned(db, now)
            missed = self._record_missed(db, now)
        if missed:
            log.info("recorded %d missed patrol windows", missed)

    def purge_expired(self) -> int:
        """Snapshots past ``snapshot_retention_days`` and rounds past ``round_retention_days``
        (with their points and snapshots); rounds in progress are never purged."""
        now = self._now()
        snapshot_cutoff = _ts(now - timedelta(days=self._settings.snapshot_retention_days))
        round_cutoff = _ts(now - timedelta(days=self._settings.round_retention_days))
        with self._database.write() as db:
            snapshots = db.execute(
                "DELETE FROM patrol_snapshots WHERE taken_at < ?", [snapshot_cutoff]
            ).rowcount
            rounds = db.execute(
                "DELETE FROM patrol_rounds WHERE status != ? AND recorded_at < ?"
                " AND COALESCE(finished_at, window_end, recorded_at) < ?",
                [RoundStatus.IN_PROGRESS.value, round_cutoff, round_cutoff],
            ).rowcount
            purged = max(0, snapshots) + max(0, rounds)
            if purged:
                detail = f"rounds={max(0, rounds)} snapshots={max(0, snapshots)}"
                self._audit.record(SYSTEM_ACTOR, "patrol.purge", "patrol", detail, db=db)
        if purged:
            log.info("purged %d patrol rounds and %d snapshots", rounds, snapshots)
        return purged

    # -- routes --------------------------------------------------------------------------------

    def parse_route(
        self,
        *,
        name: str,
        cameras: Sequence[str],
        min_look_seconds: int | str,
        schedule: str | Iterable[str],
    ) -> RouteInput:
        """A route as typed, checked against this kiosk's cameras."""
        return RouteInput.parse(
            name=name,
            cameras=cameras,
            min_look_seconds=min_look_seconds,
            schedule=schedule,
            known_cameras=self._cameras,
        )

    def create_route(
        self,
        *,
        name: str,
        cameras: Sequence[str],
        min_look_seconds: int | str,
        schedule: str | Iterable[str],
        actor: str,
    ) -> Route:
        """A new route from what an admin typed (ValidationError for the first bad field)."""
        route = self.parse_route(
            name=name, cameras=cameras, min_look_seconds=min_look_seconds, schedule=schedule
        )
        now = _ts(self._now())
        with self._database.write() as db:
            cursor = db.execute(
                "INSERT INTO patrol_routes (name, cameras, min_look_seconds, schedule, active,"
                " created_by, created_at, schedule_from) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                [route.name, json.dumps(list(route.cameras)), route.min_look_seconds,
                 route.schedule_text, actor, now, now],
            )  # fmt: skip
            route_id = int(cursor.lastrowid or 0)
            self._audit.record(actor, "patrol.route.create", f"patrol_route:{route_id}", db=db)
            created = self._route_in(db, route_id)
        log.info("patrol route %d created with %d points", route_id, len(route.cameras))
        return created

    def update_route(
        self,
        route_id: int,
        *,
        name: str,
        cameras: Sequence[str],
        min_look_seconds: int | str,
        schedule: str | Iterable[str],
        actor: str,
    ) -> Route:
        """Change a route; rounds already walked keep the points they were walked with. A
        changed schedule counts from now: windows before the change are not missed."""
        route = self.parse_route(
            name=name, cameras=cameras, min_look_seconds=min_look_seconds, schedule=schedule
        )
        now = _ts(self._now())
        with self._database.write() as db:
            old = self._route_in(db, route_id)
            schedule_from = now if old.schedule != route.schedule else _ts(old.schedule_from)
            db.execute(
                "UPDATE patrol_routes SET name = ?, cameras = ?, min_look_seconds = ?,"
                " schedule = ?, schedule_from = ? WHERE id = ?",
                [route.name, json.dumps(list(route.cameras)), route.min_look_seconds,
                 route.schedule_text, schedule_from, route_id],
            )  # fmt: skip
            self._audit.record(actor, "patrol.route.update", f"patrol_route:{route_id}", db=db)
            return self._route_in(db, route_id)

    def retire_route(self, route_id: int, *, actor: str) -> Route:
        """A retired route is no longer walked nor watched for missed windows; its records stay."""
        with self._database.write() as db:
            self._route_in(db, route_id)
            db.execute("UPDATE patrol_routes SET active = 0 WHERE id = ?", [route_id])
            self._audit.record(actor, "patrol.route.retire", f"patrol_route:{route_id}", db=db)
            return self._route_in(db, route_id)

    def list_routes(self, *, active_only: bool = False) -> list[Route]:
        sql = f"SELECT {_ROUTE_COLUMNS} FROM patrol_routes"  # noqa: S608
        if active_only:
            sql += " WHERE active = 1"
        with self._database.read() as db:
            rows = db.execute(sql + " ORDER BY active DESC, name, id").fetchall()
        return [_route(row) for row in rows]

    def get_route(self, route_id: int) -> Route:
        with self._database.read() as db:
            return self._route_in(db, route_id)

    # -- walking a round -----------------------------------------------------------------------

    def start_round(self, route_id: int, *, actor: str) -> Round:
        """Start walking ``route_id``: the first camera is shown from now."""
        now = self._now()
        with self._database.write() as db:
            route = self._route_in(db, route_id)
            if not route.active:
                raise NotAllowedError("patrol.route.retired")
            # A camera taken out of the config since: the route needs the admin first.
            if any(camera not in self._cameras for camera in route.cameras):
                raise ValidationError("route_id", "patrol.cameras.unknown")
            if self._open_round_id(db, actor) is not None:
                raise NotAllowedError("patrol.round.in_progress")
            window = window_at(route.schedule, now, self._tz)
            cursor = db.execute(
                "INSERT INTO patrol_rounds (route_id, officer, status, window_start, window_end,"
                " started_at, min_look_seconds, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [route.id, actor, RoundStatus.IN_PROGRESS.value,
                 _ts(window.start) if window else None, _ts(window.end) if window else None,
                 _ts(now), route.min_look_seconds, _ts(now)],
            )  # fmt: skip
            round_id = int(cursor.lastrowid or 0)
            for position, camera in enumerate(route.cameras):
                db.execute(
                    "INSERT INTO patrol_round_points (round_id, position, camera_id, shown_at)"
                    " VALUES (?, ?, ?, ?)",
                    [round_id, position, camera, _ts(now) if position == 0 else None],
                )
            self._audit.record(actor, "patrol.round.start", f"patrol_round:{round_id}", db=db)
            started = self._round_in(db, round_id)
        log.info("patrol round %d on route %d started (scheduled=%s)", round_id, route_id,
                 window is not None)  # fmt: skip
        return started

    def complete_point(
        self, round_id: int, position: int, *, actor: str, note: str | None = None
    ) -> Round:
        """The officer has looked at point ``position`` (with an optional note): the next
        camera is shown from now, or the round is completed after the last one."""
        now = self._now()
        with self._database.write() as db:
            walked = self._own_open_round(db, round_id, actor)
            point = self._current_point(walked, position)
            if note is not None:
                self._save_note(db, round_id, position, clean_note(note))
            shown = point.shown_at or now
            looked = (now - shown).total_seconds()
            if looked < walked.min_look_seconds:
                raise ValidationError("position", "patrol.point.too_soon")
            db.execute(
                "UPDATE patrol_round_points SET completed_at = ?, look_seconds = ?"
                " WHERE round_id = ? AND position = ?",
                [_ts(now), round(looked, 3), round_id, position],
            )
            if position + 1 < len(walked.points):
                db.execute(
                    "UPDATE patrol_round_points SET shown_at = ? WHERE round_id = ?"
                    " AND position = ?",
                    [_ts(now), round_id, position + 1],
                )
                return self._round_in(db, round_id)
            return self._finish(db, round_id, RoundStatus.COMPLETED, now, actor)

    def save_note(self, round_id: int, position: int, *, actor: str, note: str) -> Round:
        """Keep a note on the point being looked at, without going on."""
        with self._database.write() as db:
            walked = self._own_open_round(db, round_id, actor)
            self._current_point(walked, position)
            self._save_note(db, round_id, position, clean_note(note))
            return self._round_in(db, round_id)

    def save_snapshot(
        self,
        round_id: int,
        position: int,
        *,
        actor: str,
        picture: PictureSource,
        note: str | None = None,
    ) -> Round:
        """Store the current masked still of the point's camera (``picture`` gives it, the
        same source the snapshot page uses) and the note typed so far."""
        now = self._now()
        with self._database.write() as db:
            walked = self._own_open_round(db, round_id, actor)
            point = self._current_point(walked, position)
            if note is not None:
                self._save_note(db, round_id, position, clean_note(note))
            if len(point.snapshots) >= MAX_SNAPSHOTS_PER_POINT:
                raise ValidationError("snapshot", "patrol.snapshot.too_many")
            jpeg = picture(point.camera_id)
            if not jpeg or len(jpeg) > MAX_SNAPSHOT_BYTES:
                raise ValidationError("snapshot", "patrol.snapshot.no_frame")
            cursor = db.execute(
                "INSERT INTO patrol_snapshots (round_id, position, camera_id, taken_at, jpeg)"
                " VALUES (?, ?, ?, ?, ?)",
                [round_id, position, point.camera_id, _ts(now), jpeg],
            )
            subject = f"patrol_snapshot:{cursor.lastrowid}"
            detail = f"round={round_id} camera={point.camera_id}"
            self._audit.record(actor, "patrol.snapshot.save", subject, detail, db=db)
            return self._round_in(db, round_id)

    def end_round(self, round_id: int, *, actor: str) -> Round:
        """End a round before its last point: it is recorded partial."""
        now = self._now()
        with self._database.write() as db:
            self._own_open_round(db, round_id, actor)
            self._audit.record(actor, "patrol.round.end", f"patrol_round:{round_id}", db=db)
            return self._finish(db, round_id, RoundStatus.PARTIAL, now, actor)

    def open_round(self, officer: str) -> Round | None:
        """The officer's round in progress, if any."""
        with self._database.read() as db:
            round_id = self._open_round_id(db, officer)
            return None if round_id is None else self._round_in(db, round_id)

    def look_remaining(self, walked: Round) -> float:
        """Seconds the current point must still be looked at before it may be completed."""
        current = walked.current
        if current is None or current.shown_at is None:
            return 0.0
        looked = (self._now() - current.shown_at).total_seconds()
        return max(0.0, walked.min_look_seconds - looked)

    # -- records -------------------------------------------------------------------------------

    def get_round(self, round_id: int) -> Round:
        with self._database.read() as db:
            return self._round_in(db, round_id)

    def list_rounds(self, filters: RoundFilter | None = None, *, limit: int = 200) -> list[Round]:
        """Rounds newest first (points not loaded; their counts are)."""
        filters = filters or RoundFilter()
        clauses: list[str] = []
        params: list[Any] = []
        if filters.status is not None:
            clauses.append("r.status = ?")
            params.append(filters.status.value)
        if filters.route_id is not None:
            clauses.append("r.route_id = ?")
            params.append(filters.route_id)
        if filters.officer:
            clauses.append("r.officer = ?")
            params.append(filters.officer)
        if filters.date_from is not None:
            clauses.append(f"{_ROUND_TIME} >= ?")
            params.append(_ts(self._local_midnight(filters.date_from)))
        if filters.date_to is not None:
            clauses.append(f"{_ROUND_TIME} < ?")
            params.append(_ts(self._local_midnight(filters.date_to + _DAY)))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._database.read() as db:
            rows = db.execute(
                f"SELECT {_ROUND_COLUMNS} FROM patrol_rounds r"  # noqa: S608
                f" JOIN patrol_routes p ON p.id = r.route_id{where}"
                f" ORDER BY {_ROUND_TIME} DESC, r.id DESC LIMIT ?",
                [*params, max(1, min(limit, MAX_LIST))],
            ).fetchall()
        return [_round(row) for row in rows]

    def officers(self) -> list[str]:
        """Officers who have walked rounds (for the records' filter)."""
        with self._database.read() as db:
            rows = db.execute(
                "SELECT DISTINCT officer FROM patrol_rounds WHERE officer IS NOT NULL"
                " ORDER BY officer"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def snapshot_jpeg(self, snapshot_id: int, *, actor: str) -> bytes:
        """A stored snapshot; every view is audited (it is a picture of people)."""
        with self._database.write() as db:
            row = db.execute(
                "SELECT jpeg, round_id FROM patrol_snapshots WHERE id = ?", [snapshot_id]
            ).fetchone()
            if row is None:
                raise RecordNotFoundError("snapshot_id", "patrol.snapshot.not_found")
            subject = f"patrol_snapshot:{snapshot_id}"
            self._audit.record(actor, "patrol.snapshot.view", subject, f"round={row[1]}", db=db)
        return bytes(row[0])

    def weekly_report(self, week: str | None = None) -> WeeklyReport:
        """Per route and officer, one ISO week (local time, Monday to Sunday): rounds completed,
        partial and missed (missed rows have no officer), and the average look time per point
        of the rounds walked. ``week`` like ``2026-W49``; None: this week."""
        monday = self._week_start(week)
        start, end = self._local_midnight(monday), self._local_midnight(monday + 7 * _DAY)
        span = [_ts(start), _ts(end)]
        counts: dict[tuple[int, str | None], dict[str, int]] = {}
        names: dict[int, str] = {}
        with self._database.read() as db:
            for route_id, name, officer, status, count in db.execute(
                "SELECT r.route_id, p.name, r.officer, r.status, COUNT(*) FROM patrol_rounds r"  # noqa: S608
                f" JOIN patrol_routes p ON p.id = r.route_id WHERE r.status != ?"
                f" AND {_ROUND_TIME} >= ? AND {_ROUND_TIME} < ?"
                " GROUP BY r.route_id, r.officer, r.status",
                [RoundStatus.IN_PROGRESS.value, *span],
            ).fetchall():
                names[int(route_id)] = name
                counts.setdefault((int(route_id), officer), {})[status] = int(count)
            looks = {
                (int(route_id), officer): float(average)
                for route_id, officer, average in db.execute(
                    "SELECT r.route_id, r.officer, AVG(t.look_seconds) FROM patrol_round_points t"  # noqa: S608
                    " JOIN patrol_rounds r ON r.id = t.round_id WHERE t.look_seconds IS NOT NULL"
                    f" AND r.status IN (?, ?) AND {_ROUND_TIME} >= ? AND {_ROUND_TIME} < ?"
                    " GROUP BY r.route_id, r.officer",
                    [RoundStatus.COMPLETED.value, RoundStatus.PARTIAL.value, *span],
                ).fetchall()
            }
        rows = [
            ReportRow(
                route_id=route_id,
                route_name=names[route_id],
                officer=officer,
                completed=found.get(RoundStatus.COMPLETED.value, 0),
                partial=found.get(RoundStatus.PARTIAL.value, 0),
                missed=found.get(RoundStatus.MISSED.value, 0),
                average_look_seconds=(
                    round(looks[(route_id, officer)], 1) if (route_id, officer) in looks else None
                ),
            )
            for (route_id, officer), found in counts.items()
        ]
        rows.sort(key=lambda row: (row.route_name, row.route_id, row.officer is None,
                                   row.officer or ""))  # fmt: skip
        year, number, _ = monday.isocalendar()
        return WeeklyReport(f"{year}-W{number:02d}", monday, monday + 6 * _DAY, tuple(rows))

    def this_week(self) -> str:
        year, number, _ = self._now().astimezone(self._tz).date().isocalendar()
        return f"{year}-W{number:02d}"

    # -- internals -----------------------------------------------------------------------------

    def _local_midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0, 0), self._tz).astimezone(UTC)

    def _week_start(self, week: str | None) -> date:
        if not week:
            return self._now().astimezone(self._tz).date() - timedelta(
                days=self._now().astimezone(self._tz).weekday()
            )
        year, dash, number = week.strip().upper().partition("-W")
        try:
            if not dash:
                raise ValueError(week)
            return date.fromisocalendar(int(year), int(number), 1)
        except ValueError as exc:
            raise ValidationError("week", "patrol.week.invalid") from exc

    def _route_in(self, db: sqlite_utils.Database, route_id: int) -> Route:
        row = db.execute(
            f"SELECT {_ROUTE_COLUMNS} FROM patrol_routes WHERE id = ?",  # noqa: S608
            [route_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("route_id", "patrol.route.not_found")
        return _route(row)

    def _round_in(self, db: sqlite_utils.Database, round_id: int) -> Round:
        row = db.execute(
            f"SELECT {_ROUND_COLUMNS} FROM patrol_rounds r"  # noqa: S608
            " JOIN patrol_routes p ON p.id = r.route_id WHERE r.id = ?",
            [round_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("round_id", "patrol.round.not_found")
        snapshots: dict[int, list[Snapshot]] = {}
        for snapshot_id, position, camera, taken in db.execute(
            "SELECT id, position, camera_id, taken_at FROM patrol_snapshots WHERE round_id = ?"
            " ORDER BY id",
            [round_id],
        ).fetchall():
            snapshots.setdefault(int(position), []).append(
                Snapshot(int(snapshot_id), round_id, int(position), camera,
                         datetime.fromisoformat(taken))
            )  # fmt: skip
        points = tuple(
            RoundPoint(
                position=int(position),
                camera_id=camera,
                shown_at=_when(shown),
                completed_at=_when(completed),
                look_seconds=float(look) if look is not None else None,
                note=self._vault.decrypt(note) if note else "",
                snapshots=tuple(snapshots.get(int(position), ())),
            )
            for position, camera, shown, completed, look, note in db.execute(
                "SELECT position, camera_id, shown_at, completed_at, look_seconds, note"
                " FROM patrol_round_points WHERE round_id = ? ORDER BY position",
                [round_id],
            ).fetchall()
        )
        base = _round(row)
        return Round(**{**vars(base), "points": points})

    @staticmethod
    def _open_round_id(db: sqlite_utils.Database, officer: str) -> int | None:
        row = db.execute(
            "SELECT id FROM patrol_rounds WHERE officer = ? AND status = ? ORDER BY id LIMIT 1",
            [officer, RoundStatus.IN_PROGRESS.value],
        ).fetchone()
        return int(row[0]) if row else None

    def _own_open_round(self, db: sqlite_utils.Database, round_id: int, actor: str) -> Round:
        walked = self._round_in(db, round_id)
        if walked.officer != actor:
            raise NotAllowedError("patrol.round.not_yours")
        if walked.status is not RoundStatus.IN_PROGRESS:
            raise NotAllowedError("patrol.round.finished")
        return walked

    @staticmethod
    def _current_point(walked: Round, position: int) -> RoundPoint:
        current = walked.current
        if current is None or current.position != position:
            raise ValidationError("position", "patrol.point.not_current")
        return current

    def _save_note(
        self, db: sqlite_utils.Database, round_id: int, position: int, note: str
    ) -> None:
        # Blank stays blank (not a sealed empty text), so notes can be counted without opening.
        sealed = self._vault.encrypt(note) if note else ""
        db.execute(
            "UPDATE patrol_round_points SET note = ? WHERE round_id = ? AND position = ?",
            [sealed, round_id, position],
        )

    def _finish(
        self,
        db: sqlite_utils.Database,
        round_id: int,
        status: RoundStatus,
        now: datetime,
        actor: str,
    ) -> Round:
        db.execute(
            "UPDATE patrol_rounds SET status = ?, finished_at = ?, ended_by = ? WHERE id = ?",
            [status.value, _ts(now), actor, round_id],
        )
        finished = self._round_in(db, round_id)
        self._report(db, ROUND_REPORT, _round_payload(finished, now))
        log.info("patrol round %d %s (%d of %d points)", round_id, status.value,
                 finished.points_done, finished.points_total)  # fmt: skip
        return finished

    def _close_abandoned(self, db: sqlite_utils.Database, now: datetime) -> None:
        """A round nobody touched for ``abandon_after_minutes`` (a closed browser) is ended
        partial, so its window can be judged and the officer can start another."""
        idle = _ts(now - timedelta(minutes=self._settings.abandon_after_minutes))
        stale = db.execute(
            "SELECT r.id FROM patrol_rounds r WHERE r.status = ? AND COALESCE("
            " (SELECT MAX(COALESCE(t.completed_at, t.shown_at)) FROM patrol_round_points t"
            "  WHERE t.round_id = r.id), r.started_at) < ?",
            [RoundStatus.IN_PROGRESS.value, idle],
        ).fetchall()
        for (round_id,) in stale:
            self._finish(db, int(round_id), RoundStatus.PARTIAL, now, SYSTEM_ACTOR)

    def _record_missed(self, db: sqlite_utils.Database, now: datetime) -> int:
        lookback = now - timedelta(days=self._settings.missed_lookback_days)
        missed = 0
        for route in (_route(row) for row in db.execute(
            f"SELECT {_ROUTE_COLUMNS} FROM patrol_routes WHERE active = 1 AND schedule != ''"  # noqa: S608
        ).fetchall()):  # fmt: skip
            since = max(route.schedule_from, lookback)
            ended = [o for o in occurrences(route.schedule, since, now, self._tz) if o.end <= now]
            if not ended:
                continue
            marks = ",".join("?" * len(ended))
            judged = {
                start
                for (start,) in db.execute(
                    "SELECT DISTINCT window_start FROM patrol_rounds WHERE route_id = ?"  # noqa: S608
                    f" AND window_start IN ({marks}) AND status IN (?, ?, ?)",
                    [route.id, *(_ts(o.start) for o in ended),
                     RoundStatus.COMPLETED.value, RoundStatus.IN_PROGRESS.value,
                     RoundStatus.MISSED.value],
                ).fetchall()
            }  # fmt: skip
            for occurrence in ended:
                if _ts(occurrence.start) in judged:
                    continue
                self._insert_missed(db, route, occurrence, now)
                missed += 1
        return missed

    def _insert_missed(
        self, db: sqlite_utils.Database, route: Route, occurrence: Occurrence, now: datetime
    ) -> None:
        cursor = db.execute(
            "INSERT INTO patrol_rounds (route_id, officer, status, window_start, window_end,"
            " min_look_seconds, recorded_at) VALUES (?, NULL, ?, ?, ?, ?, ?)",
            [route.id, RoundStatus.MISSED.value, _ts(occurrence.start), _ts(occurrence.end),
             route.min_look_seconds, _ts(now)],
        )  # fmt: skip
        self._report(
            db,
            MISSED_REPORT,
            {
                "round_id": int(cursor.lastrowid or 0),
                "route_id": route.id,
                "route": route.name,
                "window": str(occurrence.window),
                "window_start": _ts(occurrence.start),
                "window_end": _ts(occurrence.end),
                "points": len(route.cameras),
                "reported_at": _ts(now),
            },
        )
        log.warning("patrol route %d: window %s on %s was missed", route.id,
                    occurrence.window, occurrence.start.astimezone(self._tz).date())  # fmt: skip


_ROUTE_COLUMNS = (
    "id, name, cameras, min_look_seconds, schedule, active, created_by, created_at, schedule_from"
)


def _route(row: Sequence[Any]) -> Route:
    route_id, name, cameras, look, schedule, active, by, created, schedule_from = row
    return Route(
        id=int(route_id),
        name=name,
        cameras=tuple(json.loads(cameras)),
        min_look_seconds=int(look),
        schedule=parse_schedule(schedule),
        active=bool(active),
        created_by=by,
        created_at=datetime.fromisoformat(created),
        schedule_from=datetime.fromisoformat(schedule_from),
    )


def _round(row: Sequence[Any]) -> Round:
    (round_id, route_id, route_name, officer, status, window_start, window_end, started,
     finished, look, total, done, notes) = row  # fmt: skip
    return Round(
        id=int(round_id),
        route_id=int(route_id),
        route_name=route_name,
        officer=officer,
        status=RoundStatus(status),
        window_start=_when(window_start),
        window_end=_when(window_end),
        started_at=_when(started),
        finished_at=_when(finished),
        min_look_seconds=int(look),
        points_total=int(total),
        points_done=int(done),
        notes=int(notes),
    )


def _round_payload(walked: Round, now: datetime) -> dict[str, Any]:
    """What the county hears of a round: counts and times, never the notes' text (a note may
    name a villager) nor pictures."""
    return {
        "round_id": walked.id,
        "route_id": walked.route_id,
        "route": walked.route_name,
        "status": walked.status.value,
        "officer": walked.officer,
        "scheduled": walked.scheduled,
        "window_start": _ts(walked.window_start) if walked.window_start else None,
        "window_end": _ts(walked.window_end) if walked.window_end else None,
        "started_at": _ts(walked.started_at) if walked.started_at else None,
        "finished_at": _ts(now),
        "points": walked.points_total,
        "points_looked": walked.points_done,
        "notes": walked.notes,
        "snapshots": sum(len(point.snapshots) for point in walked.points),
        "reported_at": _ts(now),
    }


def build(parts: ServiceParts) -> PatrolService:
    settings = parts.settings(AREA, PatrolSettings)
    return PatrolService(
        parts.database,
        parts.audit,
        parts.report,
        vault=parts.vault,
        cameras={camera.id: camera.name or camera.id for camera in parts.config.cameras},
        settings=settings,
        clock=parts.clock,
    )
