"""Media retention: drop events and their files by age, then by disk quota, oldest first.

Rows go first (one transaction), files after: a crash in between leaves unreferenced files,
which the next run sweeps, never rows that point at missing files. Stand-alone snapshots
(``media/snapshots``) follow the same age and quota rules.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.store.database import Database
from agent.store.events import EVENTS_DIR, SNAPSHOTS_DIR

log = logging.getLogger(__name__)

# A file younger than this may belong to an event whose row is being written right now.
_ORPHAN_GRACE_SECONDS = 3600.0


class RetentionSettings(Protocol):
    @property
    def retention_days(self) -> float: ...

    @property
    def disk_quota_mb(self) -> float: ...


@dataclass(frozen=True)
class RetentionReport:
    events_deleted: int
    files_deleted: int
    bytes_freed: int
    bytes_kept: int


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _remove(path: Path) -> int:
    size = _size(path)
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot delete %s: %s", path, exc)
        return 0
    return size


def _files(folder: Path) -> Iterable[Path]:
    if not folder.exists():
        return []
    return (path for path in folder.rglob("*") if path.is_file())


def _prune_empty_folders(root: Path) -> None:
    if not root.exists():
        return
    folders = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
    for folder in folders:
        try:
            folder.rmdir()  # only empty camera and day folders go
        except OSError:
            continue


def apply_retention(
    database: Database,
    media_dir: Path,
    settings: RetentionSettings,
    *,
    now: float | None = None,
) -> RetentionReport:
    """Delete events and media older than ``retention_days``, then the oldest until the media
    fit in ``disk_quota_mb``. ``now`` is for tests; it defaults to the wall clock."""
    now = time.time() if now is None else now
    cutoff = now - settings.retention_days * 86400
    quota = int(settings.disk_quota_mb * 1024 * 1024)

    with database.read() as db:
        rows = [
            (row["id"], row["started_at"], row["snapshot_path"], row["clip_path"])
            for row in db.query(
                "SELECT id, started_at, snapshot_path, clip_path FROM events"
                " ORDER BY started_at ASC"
            )
        ]
    referenced: set[Path] = set()
    # Each event's bytes: its own files. Stand-alone snapshots compete for the same quota.
    units: list[tuple[float, str | None, list[Path]]] = []
    for event_id, started_at, snapshot, clip in rows:
        paths = [media_dir / p for p in (snapshot, clip) if p]
        referenced.update(paths)
        units.append((started_at, event_id, paths))
    for path in _files(media_dir / SNAPSHOTS_DIR):
        if not path.name.startswith("."):
            units.append((path.stat().st_mtime, None, [path]))
    units.sort(key=lambda unit: unit[0])

    files_deleted = 0
    freed = 0
    orphans = [
        path
        for path in _files(media_dir / EVENTS_DIR)
        if path not in referenced and now - path.stat().st_mtime > _ORPHAN_GRACE_SECONDS
    ]
    for path in orphans:
        freed += _remove(path)
        files_deleted += 1

    total = sum(_size(path) for _, _, paths in units for path in paths)
    doomed: list[tuple[str | None, list[Path]]] = []
    for started_at, event_id, paths in units:
        over_quota = total > quota
        if started_at >= cutoff and not over_quota:
            break  # units are oldest first: everything after is newer and fits
        doomed.append((event_id, paths))
        total -= sum(_size(path) for path in paths)

    event_ids = [event_id for event_id, _ in doomed if event_id is not None]
    if event_ids:
        with database.write() as db:
            for start in range(0, len(event_ids), 500):
                chunk = event_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                db.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk)  # noqa: S608
    for _, paths in doomed:
        for path in paths:
            freed += _remove(path)
            files_deleted += 1
    _prune_empty_folders(media_dir / EVENTS_DIR)
    report = RetentionReport(len(event_ids), files_deleted, freed, max(0, total))
    if event_ids or files_deleted:
        log.info(
            "retention removed %d events and %d files (%d bytes); %d bytes kept",
            report.events_deleted,
            report.files_deleted,
            report.bytes_freed,
            report.bytes_kept,
        )
    return report
