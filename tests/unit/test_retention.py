"""Retention: events and media go by age, then oldest first until the quota holds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from agent.camera.pictures import encode_jpeg
from agent.motion.tracker import EventTransition
from agent.store.database import Database
from agent.store.events import EventStore
from agent.store.retention import apply_retention

DAY = 86400.0
NOW = 1_760_000_000.0


@dataclass(frozen=True)
class Settings:
    retention_days: float
    disk_quota_mb: float


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore(Database(tmp_path / "kiosk.sqlite3"), tmp_path / "media")


def _event(store: EventStore, event_id: str, started_at: float, seed: int) -> Path:
    # Noise compresses badly, so every snapshot weighs about the same (~100 kB).
    image = np.random.default_rng(seed).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    transition = EventTransition(
        kind="start",
        event_id=event_id,
        camera_id="yard",
        ts=started_at,
        started_at=started_at,
        ended_at=None,
        score=0.1,
        boxes=(),
        zones=(),
    )
    recorded = store.record(transition, snapshot=image)
    assert recorded.snapshot_path is not None
    return store.media_dir / recorded.snapshot_path


def test_old_events_go_with_their_media(store: EventStore) -> None:
    old = _event(store, "old", NOW - 40 * DAY, 1)
    recent = _event(store, "recent", NOW - 1 * DAY, 2)
    report = apply_retention(store.database, store.media_dir, Settings(30, 10_000), now=NOW)
    assert report.events_deleted == 1
    assert store.get("old") is None and not old.exists()
    assert store.get("recent") is not None and recent.exists()


def test_quota_deletes_oldest_first_until_it_fits(store: EventStore) -> None:
    paths = {f"e{i}": _event(store, f"e{i}", NOW - (10 - i) * 3600, i) for i in range(10)}
    size = sum(path.stat().st_size for path in paths.values())
    each = size / len(paths)
    quota_mb = (each * 4.5) / (1024 * 1024)  # room for four of the ten
    apply_retention(store.database, store.media_dir, Settings(30, quota_mb), now=NOW)
    kept = sorted(r.id for r in store.recent(limit=100))
    assert kept == ["e6", "e7", "e8", "e9"]  # the newest survive
    assert all(paths[k].exists() for k in kept)
    assert not any(paths[f"e{i}"].exists() for i in range(6))
    remaining = sum(p.stat().st_size for p in store.media_dir.rglob("*") if p.is_file())
    assert remaining <= quota_mb * 1024 * 1024


def test_stand_alone_snapshots_and_orphans_are_cleaned(store: EventStore) -> None:
    image = np.zeros((48, 64, 3), np.uint8)
    old_snapshot = store.write_snapshot_jpeg("yard", encode_jpeg(image), NOW - 60 * DAY)

    os.utime(old_snapshot, (NOW - 60 * DAY, NOW - 60 * DAY))
    orphan = store.media_dir / "events" / "yard" / "20200101" / "ghost.jpg"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    os.utime(orphan, (NOW - 2 * DAY, NOW - 2 * DAY))
    apply_retention(store.database, store.media_dir, Settings(30, 10_000), now=NOW)
    assert not old_snapshot.exists()
    assert not orphan.exists()
    assert not orphan.parent.exists()  # empty day folders are pruned


def test_nothing_to_do_is_fine(store: EventStore) -> None:
    report = apply_retention(store.database, store.media_dir, Settings(30, 1), now=NOW)
    assert report.events_deleted == 0 and report.files_deleted == 0
