"""Event store and camera watch: rows, snapshots, clips, listeners in the same transaction,
privacy masks in every picture, and zones deciding what starts an event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlite_utils

from agent.camera.slot import Frame
from agent.config import CameraConfig
from agent.motion import EventConfig, MotionConfig
from agent.motion.tracker import EventTransition
from agent.store.database import Database
from agent.store.events import EventStore
from agent.watch import CameraWatch
from simulators.scenes import make_scene

W, H = 320, 240
T0 = 1_760_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore(Database(tmp_path / "kiosk.sqlite3"), tmp_path / "media")


def _transition(kind: str, event_id: str = "e1", ts: float = T0) -> EventTransition:
    return EventTransition(
        kind=kind,  # type: ignore[arg-type]
        event_id=event_id,
        camera_id="yard",
        ts=ts,
        started_at=T0,
        ended_at=ts if kind == "end" else None,
        score=0.05,
        boxes=((1, 2, 3, 4),),
        zones=("gate",),
    )


def test_transitions_are_recorded_with_snapshot(store: EventStore) -> None:
    image = np.full((H, W, 3), 120, np.uint8)
    started = store.record(_transition("start"), snapshot=image)
    assert started.snapshot_path is not None
    assert (store.media_dir / started.snapshot_path).is_file()
    store.record(_transition("update", ts=T0 + 2))
    store.record(_transition("end", ts=T0 + 5))
    record = store.get("e1")
    assert record is not None
    assert record.ended_at == T0 + 5 and record.end_reason is None
    assert record.boxes == [[1, 2, 3, 4]] and record.zones == ["gate"]
    assert record.snapshot_path == started.snapshot_path
    assert [r.id for r in store.recent("yard")] == ["e1"]


def test_listener_runs_inside_the_transaction(store: EventStore) -> None:
    seen: list[tuple[str, int]] = []

    def listener(db: sqlite_utils.Database, transition: EventTransition) -> None:
        count = db.execute("SELECT COUNT(*) FROM events WHERE id = ?", [transition.event_id])
        seen.append((transition.kind, count.fetchone()[0]))
        db.execute("CREATE TABLE IF NOT EXISTS outbox_probe (event TEXT)")
        db.execute("INSERT INTO outbox_probe VALUES (?)", [transition.event_id])

    store.add_listener(listener)
    store.record(_transition("start"))
    assert seen == [("start", 1)]  # the row is visible to the listener: same transaction


def test_failing_listener_rolls_the_transition_back(store: EventStore) -> None:
    def broken(db: sqlite_utils.Database, transition: EventTransition) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS outbox_probe (event TEXT)")
        db.execute("INSERT INTO outbox_probe VALUES (?)", [transition.event_id])
        raise RuntimeError("outbox full")

    store.add_listener(broken)
    with pytest.raises(RuntimeError):
        store.record(_transition("start"))
    assert store.get("e1") is None
    with store.database.read() as db:
        assert "outbox_probe" not in db.table_names()


def _camera(**extra: object) -> CameraConfig:
    return CameraConfig.model_validate(
        {"id": "yard", "source": "sim://walking_person", "fps": 15, **extra}
    )


def _play(watch: CameraWatch, scene_name: str, seconds: float, seed: int = 4) -> None:
    scene = make_scene(scene_name, W, H, seed=seed)
    for index in range(int(seconds * scene.fps)):
        image, _ = scene.render(index)
        image.flags.writeable = False
        watch.on_frame(Frame(image=image, seq=index + 1, ts=T0 + index / scene.fps, monotonic=0.0))


def _events(store: EventStore) -> list[str]:
    return [r.id for r in store.recent(limit=100)]


def test_walking_person_makes_an_event_with_snapshot_and_clip(store: EventStore) -> None:
    motion: list[tuple[str, bool]] = []
    watch = CameraWatch(
        _camera(),
        MotionConfig(),
        EventConfig(clip_seconds=2.0, pre_roll_seconds=1.0),
        store,
        on_motion=lambda camera, active: motion.append((camera, active)),
    )
    _play(watch, "walking_person", 14.0)
    watch.close(T0 + 14.0)
    (event_id,) = _events(store)
    record = store.get(event_id)
    assert record is not None and record.ended_at is not None
    assert record.snapshot_path and (store.media_dir / record.snapshot_path).is_file()
    assert motion == [("yard", True), ("yard", False)]
    record = store.get(event_id)
    assert record is not None and record.clip_path is not None
    capture = cv2.VideoCapture(str(store.media_dir / record.clip_path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames >= 8 + 15  # pre-roll plus the clip, at 8 frames per second


def test_privacy_masked_pixels_never_appear_in_snapshots_or_clips(store: EventStore) -> None:
    left = {"name": "neighbour", "points": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}
    watch = CameraWatch(
        _camera(privacy_masks=[left]),
        MotionConfig(),
        EventConfig(clip_seconds=2.0, pre_roll_seconds=1.0),
        store,
    )
    _play(watch, "walking_person", 14.0)
    watch.close(T0 + 14.0)
    snapshot_now = watch.snapshot_now()
    records = [store.get(i) for i in _events(store)]
    pictures = [cv2.imread(str(snapshot_now))]
    for record in records:
        assert record is not None and record.snapshot_path
        pictures.append(cv2.imread(str(store.media_dir / record.snapshot_path)))
        if record.clip_path:
            capture = cv2.VideoCapture(str(store.media_dir / record.clip_path))
            ok, frame = capture.read()
            while ok:
                pictures.append(frame)
                ok, frame = capture.read()
            capture.release()
    assert len(pictures) > 3
    for picture in pictures:
        assert picture is not None
        width = picture.shape[1]
        # JPEG blocks straddling the mask edge may ring a little; inside, pure black.
        assert int(picture[:, : width // 2 - 16].max()) <= 3


def test_motion_outside_the_zone_never_starts_an_event(store: EventStore) -> None:
    sky = {"name": "sky", "points": [[0, 0], [1, 0], [1, 0.3], [0, 0.3]]}
    watch = CameraWatch(_camera(zones=[sky]), MotionConfig(), EventConfig(), store)
    _play(watch, "walking_person", 14.0)
    assert _events(store) == []


def test_disarmed_camera_records_nothing(store: EventStore) -> None:
    watch = CameraWatch(_camera(armed=False), MotionConfig(), EventConfig(), store)
    _play(watch, "walking_person", 12.0)
    assert _events(store) == []
    assert not watch.armed
    watch.arm()
    assert watch.armed


def test_bad_frames_are_skipped_not_fatal(store: EventStore) -> None:
    watch = CameraWatch(_camera(), MotionConfig(), EventConfig(), store)
    good = np.full((H, W, 3), 100, np.uint8)
    watch.on_frame(Frame(image=good, seq=1, ts=T0, monotonic=0.0))
    watch.on_frame(Frame(image=np.zeros((H, W), np.float64), seq=2, ts=T0 + 0.1, monotonic=0.0))
    watch.on_frame(Frame(image=np.zeros((0, 0, 3), np.uint8), seq=3, ts=T0 + 0.2, monotonic=0.0))
    watch.on_frame(Frame(image=good, seq=4, ts=T0 + 0.3, monotonic=0.0))
    assert watch.last_result is not None


def test_sensitivity_out_of_range_is_rejected(store: EventStore) -> None:
    from agent.errors import ValidationError

    watch = CameraWatch(_camera(), MotionConfig(), EventConfig(), store)
    with pytest.raises(ValidationError):
        watch.set_sensitivity(2.0)
    watch.set_sensitivity(0.8)
    assert watch.sensitivity == 0.8


def _play_at(watch: CameraWatch, start: float, seconds: float) -> None:
    scene = make_scene("walking_person", W, H, seed=4)
    for index in range(int(seconds * scene.fps)):
        image, _ = scene.render(index)
        watch.on_frame(Frame(image=image, seq=index + 1, ts=start + index / scene.fps, monotonic=0))


def test_arm_schedule_gates_events_in_local_time(store: EventStore) -> None:
    camera = _camera(arm_schedule=["20:00-06:00"])
    noon = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    night = datetime(2026, 1, 1, 23, 0, tzinfo=UTC).timestamp()
    day_watch = CameraWatch(camera, MotionConfig(), EventConfig(), store, clock_tz=UTC)
    _play_at(day_watch, noon, 12.0)
    assert _events(store) == []
    night_watch = CameraWatch(camera, MotionConfig(), EventConfig(), store, clock_tz=UTC)
    _play_at(night_watch, night, 12.0)
    assert len(_events(store)) == 1
