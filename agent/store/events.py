"""Motion events on disk: the ``events`` table, JPEG snapshots and short clips.

Every transition (start, update, end) is written in one transaction together with whatever the
listeners write (the MQTT outbox hooks in here), so an alert exists exactly when its event does.
Media files are written before that transaction, atomically (temporary file, then rename), so a
row never points at half a file. Paths in rows are relative to the media directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import sqlite_utils

from agent.camera.pictures import encode_jpeg
from agent.errors import CameraError, StoreError
from agent.motion.tracker import EventTransition
from agent.store.database import Database, Migration

log = logging.getLogger(__name__)

EventListener = Callable[[sqlite_utils.Database, EventTransition], None]
Image = npt.NDArray[Any]

EVENTS_DIR = "events"
SNAPSHOTS_DIR = "snapshots"


def _create_events(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE events ("
        " id TEXT PRIMARY KEY,"
        " camera_id TEXT NOT NULL,"
        " started_at REAL NOT NULL,"
        " ended_at REAL,"
        " updated_at REAL NOT NULL,"
        " peak_score REAL NOT NULL DEFAULT 0,"
        " boxes TEXT NOT NULL DEFAULT '[]',"
        " zones TEXT NOT NULL DEFAULT '[]',"
        " snapshot_path TEXT,"
        " clip_path TEXT,"
        " end_reason TEXT)"
    )
    db.execute("CREATE INDEX events_started ON events (started_at)")
    db.execute("CREATE INDEX events_camera_started ON events (camera_id, started_at)")


MIGRATIONS = [Migration(1, "events table", _create_events)]


@dataclasses.dataclass(frozen=True)
class EventRecord:
    id: str
    camera_id: str
    started_at: float
    ended_at: float | None
    peak_score: float
    boxes: list[list[int]]
    zones: list[str]
    snapshot_path: str | None
    clip_path: str | None
    end_reason: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EventRecord:
        return cls(
            id=row["id"],
            camera_id=row["camera_id"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            peak_score=row["peak_score"],
            boxes=json.loads(row["boxes"]),
            zones=json.loads(row["zones"]),
            snapshot_path=row["snapshot_path"],
            clip_path=row["clip_path"],
            end_reason=row["end_reason"],
        )


def write_jpeg(path: Path, image: Image) -> None:
    """Encode (the one still encoder) and write atomically; raises StoreError."""
    try:
        data = encode_jpeg(image)
    except CameraError as exc:
        raise StoreError(f"cannot encode a JPEG for {path.name}: {exc}") from exc
    _write_atomically(path, data)


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc}") from exc


def _day_folder(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d")


class EventStore:
    """Records event transitions and their media; thread-safe (writes go through Database)."""

    def __init__(self, database: Database, media_dir: Path) -> None:
        self.database = database
        self.media_dir = media_dir
        database.migrate("events", MIGRATIONS)
        self._listeners: list[EventListener] = []
        self._listeners_lock = threading.Lock()

    def add_listener(self, listener: EventListener) -> None:
        """``listener(db, transition)`` runs inside the transaction that records a transition;
        if it raises, the transition is not recorded either."""
        with self._listeners_lock:
            self._listeners.append(listener)

    # -- media ----------------------------------------------------------------------------------

    def snapshot_relpath(self, transition: EventTransition) -> str:
        day = _day_folder(transition.started_at)
        return f"{EVENTS_DIR}/{transition.camera_id}/{day}/{transition.event_id}.jpg"

    def clip_relpath(self, camera_id: str, event_id: str, started_at: float) -> str:
        return f"{EVENTS_DIR}/{camera_id}/{_day_folder(started_at)}/{event_id}.avi"

    def write_snapshot_jpeg(self, camera_id: str, jpeg: bytes, ts: float) -> Path:
        """A stand-alone snapshot (not part of an event), e.g. on a remote command."""
        stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.media_dir / SNAPSHOTS_DIR / camera_id / f"{stamp}.jpg"
        _write_atomically(path, jpeg)
        return path

    def write_clip(
        self, camera_id: str, event_id: str, started_at: float, frames: Sequence[Image], fps: float
    ) -> str | None:
        """Write ``frames`` (privacy masks already applied) as an MJPEG AVI and link it to the
        event; returns the relative path, or None when there was nothing to write."""
        if not frames:
            return None
        relative = self.clip_relpath(camera_id, event_id, started_at)
        path = self.media_dir / relative
        temporary = path.with_name(f".{path.name}.tmp.avi")
        height, width = frames[0].shape[:2]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(
                str(temporary), cv2.VideoWriter.fourcc(*"MJPG"), max(1.0, fps), (width, height)
            )
            if not writer.isOpened():
                raise StoreError(f"cannot open a clip writer for {relative}")
            try:
                for frame in frames:
                    if frame.shape[:2] == (height, width):
                        writer.write(np.ascontiguousarray(frame))
            finally:
                writer.release()
            temporary.replace(path)
        except (OSError, cv2.error) as exc:
            raise StoreError(f"cannot write clip {relative}: {exc}") from exc
        with self.database.write() as db:
            db.execute("UPDATE events SET clip_path = ? WHERE id = ?", [relative, event_id])
        return relative

    # -- transitions ----------------------------------------------------------------------------

    def record(
        self, transition: EventTransition, *, snapshot: Image | None = None
    ) -> EventTransition:
        """Record ``transition``; ``snapshot`` (privacy masks already applied) is the peak frame
        and replaces the event's snapshot. Returns the transition with its media paths."""
        snapshot_path: str | None = None
        if snapshot is not None:
            snapshot_path = self.snapshot_relpath(transition)
            write_jpeg(self.media_dir / snapshot_path, snapshot)
        boxes = json.dumps([list(box) for box in transition.boxes])
        zones = json.dumps(list(transition.zones), ensure_ascii=False)
        with self._listeners_lock:
            listeners = list(self._listeners)
        with self.database.write() as db:
            if transition.kind == "start":
                db.execute(
                    "INSERT INTO events (id, camera_id, started_at, updated_at, peak_score,"
                    " boxes, zones, snapshot_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        transition.event_id,
                        transition.camera_id,
                        transition.started_at,
                        transition.ts,
                        transition.score,
                        boxes,
                        zones,
                        snapshot_path,
                    ],
                )
            else:
                db.execute(
                    "UPDATE events SET updated_at = ?, peak_score = ?, boxes = ?, zones = ?,"
                    " snapshot_path = COALESCE(?, snapshot_path), ended_at = ?, end_reason = ?"
                    " WHERE id = ?",
                    [
                        transition.ts,
                        transition.score,
                        boxes,
                        zones,
                        snapshot_path,
                        transition.ended_at,
                        transition.end_reason,
                        transition.event_id,
                    ],
                )
            row = db.execute(
                "SELECT snapshot_path, clip_path FROM events WHERE id = ?", [transition.event_id]
            ).fetchone()
            if row is None:
                raise StoreError(f"event {transition.event_id} is not recorded")
            recorded = dataclasses.replace(transition, snapshot_path=row[0], clip_path=row[1])
            for listener in listeners:
                listener(db, recorded)
        return recorded

    # -- queries --------------------------------------------------------------------------------

    def get(self, event_id: str) -> EventRecord | None:
        with self.database.read() as db:
            rows = list(db.query("SELECT * FROM events WHERE id = ?", [event_id]))
        return EventRecord.from_row(rows[0]) if rows else None

    def recent(self, camera_id: str | None = None, limit: int = 50) -> list[EventRecord]:
        """Newest first."""
        sql = "SELECT * FROM events"
        params: list[Any] = []
        if camera_id is not None:
            sql += " WHERE camera_id = ?"
            params.append(camera_id)
        sql += " ORDER BY started_at DESC LIMIT ?"
        params.append(max(1, min(limit, 1000)))
        with self.database.read() as db:
            return [EventRecord.from_row(row) for row in db.query(sql, params)]
