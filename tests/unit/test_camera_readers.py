"""Readers on real inputs: small video files made here, and synthetic scenes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from agent.camera.capture import CameraState, CameraWorker
from agent.camera.readers import (
    FileReader,
    SimReader,
    SourceEndedError,
    SourceUnusableError,
    make_reader,
)
from agent.camera.source import FileSource, SimSource
from agent.config import CameraConfig
from agent.errors import CameraError
from tests.fixtures.servers import wait_until

FILE_FRAMES = 10


def _write_clip(path: Path, fps: float, frames: int = FILE_FRAMES) -> Path:
    """A 64x48 MJPEG clip whose frame i is uniformly grey at level 20·i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for index in range(frames):
        writer.write(np.full((48, 64, 3), 20 * index, np.uint8))
    writer.release()
    return path


def _level(image: np.ndarray | None) -> int:
    assert image is not None
    return round(float(image.mean()) / 20)


def _config(source: str, **overrides: Any) -> CameraConfig:
    values: dict[str, Any] = {
        "id": "clip",
        "source": source,
        "fps": 30,
        "resolution": "64x48",
        "stall_timeout_seconds": 1.0,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.1,
    }
    values.update(overrides)
    return CameraConfig(**values)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return _write_clip(tmp_path / "clip.avi", fps=30)


@pytest.fixture
def workers() -> Iterator[list[CameraWorker]]:
    made: list[CameraWorker] = []
    yield made
    for worker in made:
        worker.stop()


# -- file reader ------------------------------------------------------------------------------


def test_file_reader_plays_a_faster_file_in_real_time(tmp_path: Path) -> None:
    path = _write_clip(tmp_path / "fast.avi", fps=30)
    reader = FileReader(FileSource(path), _config(f"file:{path}", fps=15, loop=False))
    reader.open()
    try:
        levels = []
        for _ in range(5):
            assert reader.grab()
            levels.append(_level(reader.retrieve()))
    finally:
        reader.close()
    # 30 fps file at 15 fps: every other frame, starting with the first.
    assert levels == [0, 2, 4, 6, 8]


def test_file_reader_loops_back_to_the_first_frame(clip: Path) -> None:
    reader = FileReader(FileSource(clip), _config(f"file:{clip}", loop=True))
    reader.open()
    try:
        levels = []
        for _ in range(FILE_FRAMES + 3):
            assert reader.grab()
            levels.append(_level(reader.retrieve()))
    finally:
        reader.close()
    assert levels == [*range(FILE_FRAMES), 0, 1, 2]


def test_file_reader_ends_without_loop(clip: Path) -> None:
    reader = FileReader(FileSource(clip), _config(f"file:{clip}", loop=False))
    reader.open()
    try:
        for _ in range(FILE_FRAMES):
            assert reader.grab()
        with pytest.raises(SourceEndedError, match="end of file"):
            reader.grab()
    finally:
        reader.close()


def test_missing_and_corrupt_files_are_camera_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    with pytest.raises(CameraError, match="no such file"):
        FileReader(FileSource(missing), _config(f"file:{missing}")).open()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(3).bytes(20_000))
    reader = FileReader(FileSource(garbage), _config(f"file:{garbage}"))
    with pytest.raises(CameraError):
        reader.open()
        reader.grab()
    reader.close()


def test_file_camera_with_loop_keeps_capturing_past_the_end(
    clip: Path, workers: list[CameraWorker]
) -> None:
    worker = CameraWorker(_config(f"file:{clip}", loop=True))
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().frames >= 2 * FILE_FRAMES + 5, 20, "frames past the end")
    status = worker.status()
    assert status.state is CameraState.ONLINE
    assert status.dropped == 0


def test_file_camera_without_loop_goes_offline_at_the_end(
    clip: Path, workers: list[CameraWorker]
) -> None:
    states: list[CameraState] = []
    worker = CameraWorker(
        _config(f"file:{clip}", loop=False), on_state=lambda _id, state: states.append(state)
    )
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().state is CameraState.OFFLINE, 20, "offline at the end")
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name == "camera-clip"],
        10,
        "the capture thread to end",
    )
    status = worker.status()
    assert status.frames == FILE_FRAMES
    assert status.last_error is not None and "end of file" in status.last_error
    assert states == [CameraState.STARTING, CameraState.ONLINE, CameraState.OFFLINE]


def test_file_frames_are_resized_to_the_configured_resolution(
    clip: Path, workers: list[CameraWorker]
) -> None:
    worker = CameraWorker(_config(f"file:{clip}", resolution="32x24"))
    workers.append(worker)
    worker.start()
    frame = worker.slot.wait_newer(0, timeout=20)
    assert frame is not None
    assert frame.image.shape == (24, 32, 3)


def test_a_corrupt_file_leaves_the_camera_retrying(
    tmp_path: Path, workers: list[CameraWorker]
) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(5).bytes(20_000))
    worker = CameraWorker(_config(f"file:{garbage}"))
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().state is CameraState.OFFLINE, 20, "offline")
    status = worker.status()
    assert status.frames == 0 and status.reconnects >= 2
    assert [t for t in threading.enumerate() if t.name == "camera-clip"]


# -- sim reader -------------------------------------------------------------------------------


def test_sim_reader_renders_at_the_configured_size() -> None:
    config = _config("sim://walking_person?seed=2", resolution="80x60")
    reader = make_reader(config)
    assert isinstance(reader, SimReader) and not reader.live
    reader.open()
    try:
        assert reader.grab()
        image = reader.retrieve()
    finally:
        reader.close()
    assert image is not None and image.shape == (60, 80, 3) and image.dtype == np.uint8


def test_unknown_scene_is_a_clear_error_and_the_camera_goes_offline(
    workers: list[CameraWorker],
) -> None:
    with pytest.raises(SourceUnusableError, match="unknown sim scene 'no_such_scene'"):
        SimReader(SimSource("no_such_scene"), _config("sim://no_such_scene")).open()
    worker = CameraWorker(_config("sim://no_such_scene"))
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().state is CameraState.OFFLINE, 10, "offline")
    assert "walking_person" in (worker.status().last_error or "")


def test_unknown_sim_option_is_rejected() -> None:
    with pytest.raises(SourceUnusableError, match="unknown option"):
        make_reader(_config("sim://empty?speed=3")).open()


def test_sim_camera_delivers_frames(workers: list[CameraWorker]) -> None:
    worker = CameraWorker(_config("sim://empty?seed=1", resolution="80x60"))
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().frames >= 3, 20, "sim frames")
    latest = worker.slot.latest()
    assert latest is not None and latest.image.shape == (60, 80, 3)


# -- live readers that cannot connect -------------------------------------------------------


def test_a_missing_usb_camera_keeps_retrying_without_crashing(
    workers: list[CameraWorker],
) -> None:
    worker = CameraWorker(_config("/dev/video63"))
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().state is CameraState.OFFLINE, 20, "offline")
    status = worker.status()
    assert status.last_error == "cannot open usb:/dev/video63"
    assert status.frames == 0


def test_rtsp_open_gives_up_on_a_silent_server(workers: list[CameraWorker]) -> None:
    # A camera whose TCP stack accepts connections while its RTSP service hangs.
    accepted: list[socket.socket] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        worker = CameraWorker(_config(f"rtsp://127.0.0.1:{port}/stream", open_timeout_seconds=0.5))
        workers.append(worker)
        worker.start()
        wait_until(lambda: worker.status().reconnects >= 2, 30, "open attempts to time out")
        assert accepted
        assert worker.status().last_error == f"cannot open rtsp://127.0.0.1:{port}/stream"
        worker.stop()
        assert not [t for t in threading.enumerate() if t.name == "camera-clip"]
    finally:
        listener.close()
        for connection in accepted:
            connection.close()
