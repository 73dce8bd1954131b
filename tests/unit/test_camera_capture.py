"""The capture worker against scripted readers: frame hygiene, stalls, reconnects, callbacks."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from agent.camera.capture import (
    CameraState,
    CameraWorker,
    attempts_before_offline,
    backoff_delay,
)
from agent.camera.readers import FrameReader
from agent.camera.slot import Frame
from agent.config import CameraConfig
from agent.errors import CameraError
from tests.fixtures.servers import wait_until

GOOD = np.full((48, 64, 3), 100, np.uint8)


def _config(**overrides: Any) -> CameraConfig:
    values: dict[str, Any] = {
        "id": "yard",
        "source": "sim://empty",
        "fps": 30,
        "resolution": "64x48",
        "stall_timeout_seconds": 0.5,
        "open_timeout_seconds": 0.5,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.1,
    }
    values.update(overrides)
    return CameraConfig(**values)


class ScriptedReader:
    """Gives the scripted images in order (None = undecodable), then ``GOOD`` forever
    (or nothing usable forever when ``then_good`` is false)."""

    def __init__(
        self,
        script: list[object],
        *,
        live: bool = False,
        then_good: bool = True,
        good: np.ndarray = GOOD,
    ) -> None:
        self.live = live
        self._good = good
        self._script = list(script)
        self._then_good = then_good
        self._next: object = None
        self.opened = threading.Event()
        self.closed = threading.Event()

    def open(self) -> None:
        self.opened.set()

    def grab(self) -> bool:
        if self._script:
            self._next = self._script.pop(0)
        else:
            self._next = self._good.copy() if self._then_good else None
        return True

    def retrieve(self) -> np.ndarray | None:
        return self._next if isinstance(self._next, np.ndarray) else None

    def position(self) -> float | None:
        return None

    def close(self) -> None:
        self.closed.set()


class Factory:
    """A reader factory that records how often the worker asked for a reader."""

    def __init__(self, make: Callable[[], FrameReader]) -> None:
        self._make = make
        self.calls = 0

    def __call__(self, _config: CameraConfig) -> FrameReader:
        self.calls += 1
        return self._make()


@pytest.fixture
def workers() -> Iterator[list[CameraWorker]]:
    made: list[CameraWorker] = []
    yield made
    for worker in made:
        worker.stop()


def _capture_threads(camera_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"camera-{camera_id}"]


# -- backoff ---------------------------------------------------------------------------------


def test_backoff_doubles_from_the_minimum_and_is_capped() -> None:
    rng = random.Random(7)
    for attempt, base in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (60, 30.0)]:
        for _ in range(50):
            delay = backoff_delay(attempt, 0.5, 30.0, rng)
            assert base / 2 <= delay <= base
    assert backoff_delay(10_000, 0.5, 30.0, rng) <= 30.0


def test_backoff_has_jitter() -> None:
    rng = random.Random(1)
    delays = {backoff_delay(8, 0.5, 30.0, rng) for _ in range(20)}
    assert len(delays) == 20


def test_offline_comes_when_the_backoff_reaches_its_cap_and_never_before_three_attempts() -> None:
    assert attempts_before_offline(0.5, 30.0) == 6  # 0.5·2⁶ = 32 ≥ 30
    assert attempts_before_offline(1.0, 1.0) == 3
    assert attempts_before_offline(0.05, 0.1) == 3


# -- frame hygiene ---------------------------------------------------------------------------


def test_bad_frames_are_dropped_and_counted_and_good_ones_resized(
    workers: list[CameraWorker],
) -> None:
    stream_frame = np.full((96, 128, 3), 50, np.uint8)
    script: list[object] = [
        stream_frame,  # fixes the stream size at 128x96
        np.zeros((40, 40, 3), np.uint8),  # wrong size for this stream
        np.zeros((96, 128, 3), np.float32),  # wrong type
        np.zeros((0, 0, 3), np.uint8),  # empty
        None,  # undecodable
        np.zeros((96, 128, 2), np.uint8),  # not a colour image
        np.full((96, 128), 200, np.uint8),  # grey: converted, kept
    ]
    seen: list[tuple[int, ...]] = []
    worker = CameraWorker(
        _config(),
        reader_factory=Factory(lambda: ScriptedReader(script, good=stream_frame)),
        on_frame=lambda frame: seen.append(frame.image.shape),
    )
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().frames >= 5, 10, "five frames")
    status = worker.status()
    assert status.dropped == 5
    assert status.state is CameraState.ONLINE
    assert set(seen) == {(48, 64, 3)}
    latest = worker.slot.latest()
    assert latest is not None and latest.image.dtype == np.uint8


def test_a_stalled_source_is_reopened(workers: list[CameraWorker]) -> None:
    readers: list[ScriptedReader] = []

    def make() -> ScriptedReader:
        # Two good frames, then only undecodable ones: the stream has stalled.
        reader = ScriptedReader([GOOD.copy(), GOOD.copy()], then_good=False)
        readers.append(reader)
        return reader

    factory = Factory(make)
    worker = CameraWorker(_config(), reader_factory=factory)
    workers.append(worker)
    worker.start()
    wait_until(lambda: factory.calls >= 2, 10, "a reopen after the stall")
    assert readers[0].closed.is_set()
    status = worker.status()
    assert status.reconnects >= 1
    assert status.last_error is not None and "no usable frame" in status.last_error


def test_failed_live_reads_reopen_the_source(workers: list[CameraWorker]) -> None:
    class DroppingReader(ScriptedReader):
        def grab(self) -> bool:
            return False

    factory = Factory(lambda: DroppingReader([], live=True))
    worker = CameraWorker(_config(), reader_factory=factory)
    workers.append(worker)
    worker.start()
    wait_until(lambda: factory.calls >= 2, 10, "a reopen after failed reads")
    assert worker.status().dropped >= 3
    assert "stopped sending frames" in (worker.status().last_error or "")


def test_a_faster_live_source_is_decimated_to_the_configured_rate(
    workers: list[CameraWorker],
) -> None:
    class FastLiveReader(ScriptedReader):
        """A camera sending 60 fps."""

        def __init__(self) -> None:
            super().__init__([], live=True)
            self.grabs = 0
            self._tick = threading.Event()

        def grab(self) -> bool:
            self._tick.wait(1 / 60)
            self.grabs += 1
            return super().grab()

    reader = FastLiveReader()
    worker = CameraWorker(_config(fps=10), reader_factory=Factory(lambda: reader))
    workers.append(worker)
    worker.start()
    wait_until(lambda: reader.grabs >= 120, 20, "two seconds of source frames")
    kept = worker.status().frames
    # 60 fps in, 10 fps out: roughly one frame in six is kept, never all of them.
    assert 0 < kept < reader.grabs / 3


def test_a_slow_frame_callback_skips_to_the_live_edge(workers: list[CameraWorker]) -> None:
    class StreamingReader(ScriptedReader):
        """A 30 fps network camera: frames that are due wait in a buffer, later ones block."""

        def __init__(self) -> None:
            super().__init__([], live=True)
            self._start = time.monotonic()
            self._index = -1

        def grab(self) -> bool:
            self._index += 1
            due = self._start + self._index / 30
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            return True

        def retrieve(self) -> np.ndarray | None:
            image = GOOD.copy()
            image[0, 0, :2] = (self._index % 256, self._index // 256)
            return image

        def position(self) -> float | None:
            return 1000.0 + self._index / 30

    published: list[int] = []

    def slow_detector(frame: Frame) -> None:
        published.append(int(frame.image[0, 0, 0]) + 256 * int(frame.image[0, 0, 1]))
        time.sleep(0.15)  # five frame intervals

    worker = CameraWorker(
        _config(stall_timeout_seconds=5),
        reader_factory=Factory(StreamingReader),
        on_frame=slow_detector,
    )
    workers.append(worker)
    worker.start()
    wait_until(lambda: len(published) >= 12, 20, "a dozen slow callbacks")
    gaps = [later - earlier for earlier, later in itertools.pairwise(published)]
    # Without skipping, every buffered frame would be handed over in turn (gaps of 1) and the
    # delay would grow by 4 intervals per frame; skipping keeps the gaps near the callback time.
    assert max(gaps[3:]) >= 4
    assert worker.status().dropped == 0


# -- reconnect states -----------------------------------------------------------------------


def test_unreachable_camera_goes_reconnecting_then_offline_then_online(
    workers: list[CameraWorker],
) -> None:
    reachable = threading.Event()

    class FlakyReader(ScriptedReader):
        def open(self) -> None:
            if not reachable.is_set():
                raise CameraError("cannot open rtsp://192.0.2.1/stream")

    states: list[CameraState] = []
    factory = Factory(lambda: FlakyReader([]))
    worker = CameraWorker(
        _config(), reader_factory=factory, on_state=lambda _id, state: states.append(state)
    )
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().state is CameraState.OFFLINE, 10, "offline")
    assert worker.status().last_error == "cannot open rtsp://192.0.2.1/stream"
    reachable.set()
    wait_until(lambda: worker.status().state is CameraState.ONLINE, 10, "online again")
    assert states[:3] == [CameraState.STARTING, CameraState.RECONNECTING, CameraState.OFFLINE]
    assert states[-1] is CameraState.ONLINE
    assert worker.status().reconnects >= 3


def test_a_reader_defect_does_not_kill_the_thread(workers: list[CameraWorker]) -> None:
    class BuggyReader(ScriptedReader):
        def retrieve(self) -> np.ndarray | None:
            raise ZeroDivisionError("defect")

    factory = Factory(lambda: BuggyReader([]))
    worker = CameraWorker(_config(), reader_factory=factory)
    workers.append(worker)
    worker.start()
    wait_until(lambda: factory.calls >= 3, 10, "retries after the defect")
    assert _capture_threads("yard")
    assert "ZeroDivisionError" in (worker.status().last_error or "")


# -- callbacks ------------------------------------------------------------------------------


def test_a_failing_frame_callback_is_counted_and_capture_goes_on(
    workers: list[CameraWorker],
) -> None:
    def explode(_frame: object) -> None:
        raise RuntimeError("detector bug")

    worker = CameraWorker(
        _config(), reader_factory=Factory(lambda: ScriptedReader([])), on_frame=explode
    )
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().frames >= 10, 10, "ten frames")
    status = worker.status()
    assert status.callback_errors >= 9
    assert status.state is CameraState.ONLINE


def test_a_failing_state_callback_does_not_stop_capture(workers: list[CameraWorker]) -> None:
    def explode(_camera_id: str, _state: CameraState) -> None:
        raise RuntimeError("broker down")

    worker = CameraWorker(
        _config(), reader_factory=Factory(lambda: ScriptedReader([])), on_state=explode
    )
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().frames >= 3, 10, "frames")


# -- lifecycle ------------------------------------------------------------------------------


def test_a_disabled_camera_never_opens() -> None:
    factory = Factory(lambda: ScriptedReader([]))
    states: list[CameraState] = []
    worker = CameraWorker(
        _config(enabled=False),
        reader_factory=factory,
        on_state=lambda _id, state: states.append(state),
    )
    worker.start()
    assert worker.status().state is CameraState.DISABLED
    assert states == [CameraState.DISABLED]
    assert not _capture_threads("yard")
    worker.stop()
    assert factory.calls == 0
    assert worker.status().state is CameraState.DISABLED


def test_stop_joins_the_thread_and_closes_the_reader() -> None:
    reader = ScriptedReader([], live=True)
    worker = CameraWorker(_config(), reader_factory=Factory(lambda: reader))
    worker.start()
    wait_until(lambda: worker.status().frames >= 2, 10, "frames")
    worker.stop()
    assert not _capture_threads("yard")
    assert reader.closed.is_set()
    assert worker.status().state is CameraState.OFFLINE


def test_stop_during_backoff_returns_promptly_and_leaves_no_thread() -> None:
    class DeadReader(ScriptedReader):
        def open(self) -> None:
            raise CameraError("unreachable")

    worker = CameraWorker(
        _config(reconnect_min_seconds=30, reconnect_max_seconds=60),
        reader_factory=Factory(lambda: DeadReader([])),
    )
    worker.start()
    wait_until(lambda: worker.status().state is CameraState.RECONNECTING, 10, "reconnecting")
    worker.stop(timeout=10)
    assert not _capture_threads("yard")


def test_a_worker_can_be_started_again_after_stop() -> None:
    worker = CameraWorker(_config(), reader_factory=Factory(lambda: ScriptedReader([])))
    worker.start()
    wait_until(lambda: worker.status().frames >= 1, 10, "frames")
    worker.stop()
    before = worker.status().frames
    worker.start()
    try:
        wait_until(lambda: worker.status().frames > before, 10, "frames after restart")
        assert worker.status().state is CameraState.ONLINE
    finally:
        worker.stop()
    assert not _capture_threads("yard")


def test_status_never_shows_credentials() -> None:
    worker = CameraWorker(_config(source="rtsp://admin:secret@192.0.2.7:554/h264", enabled=False))
    status = worker.status()
    assert status.source == "rtsp://192.0.2.7:554/h264"
    assert "secret" not in repr(status)
