"""Capture from the RTSP camera simulator through a dead camera and back."""

from __future__ import annotations

import threading

import pytest

from agent.camera.capture import CameraState, CameraWorker
from agent.camera.slot import Frame
from agent.config import CameraConfig
from simulators.rtsp_camera import RtspCamera
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration


def _capture_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "camera-gate"]


def test_rtsp_camera_survives_a_server_restart(rtsp_camera: RtspCamera) -> None:
    config = CameraConfig(
        id="gate",
        source=rtsp_camera.url,
        fps=15,
        resolution="160x120",
        open_timeout_seconds=3,
        stall_timeout_seconds=2,
        reconnect_min_seconds=0.1,
        reconnect_max_seconds=0.4,
    )
    states: list[CameraState] = []
    shapes: set[tuple[int, ...]] = set()

    def on_frame(frame: Frame) -> None:
        shapes.add(frame.image.shape)

    worker = CameraWorker(
        config, on_frame=on_frame, on_state=lambda _id, state: states.append(state)
    )
    worker.start()
    try:
        wait_until(lambda: worker.status().frames >= 10, 30, "frames from the RTSP camera")
        assert worker.status().state is CameraState.ONLINE
        assert shapes == {(120, 160, 3)}

        rtsp_camera.stop()
        wait_until(
            lambda: worker.status().state in (CameraState.RECONNECTING, CameraState.OFFLINE),
            30,
            "the camera to notice the dead server",
        )
        wait_until(lambda: worker.status().state is CameraState.OFFLINE, 30, "offline")
        frames_while_down = worker.status().frames
        assert _capture_threads()  # still retrying

        rtsp_camera.start()
        wait_until(
            lambda: worker.status().frames >= frames_while_down + 10,
            30,
            "frames after the server came back",
        )
        status = worker.status()
        assert status.state is CameraState.ONLINE
        assert status.reconnects >= 2
        assert status.source == rtsp_camera.url
    finally:
        worker.stop()

    assert not _capture_threads()
    assert states[:2] == [CameraState.STARTING, CameraState.ONLINE]
    went_offline = states.index(CameraState.OFFLINE)
    assert CameraState.ONLINE in states[went_offline:]
    assert states[-1] is CameraState.OFFLINE  # stopped


def test_a_frozen_rtsp_camera_is_detected_as_stalled_and_recovers(
    rtsp_camera: RtspCamera,
) -> None:
    config = CameraConfig(
        id="gate",
        source=rtsp_camera.url,
        fps=15,
        resolution="320x240",
        open_timeout_seconds=1,
        stall_timeout_seconds=1,
        reconnect_min_seconds=0.1,
        reconnect_max_seconds=0.4,
    )
    worker = CameraWorker(config)
    worker.start()
    try:
        wait_until(lambda: worker.status().frames >= 5, 30, "frames from the RTSP camera")
        # The TCP connection stays up but nothing arrives: only the read timeout and the
        # stall detection can notice, and the reopen must not hang on the silent server.
        rtsp_camera.freeze()
        wait_until(lambda: worker.status().state is CameraState.OFFLINE, 30, "offline")
        frames_while_frozen = worker.status().frames
        rtsp_camera.thaw()
        wait_until(
            lambda: worker.status().frames >= frames_while_frozen + 10, 30, "frames after thaw"
        )
        assert worker.status().state is CameraState.ONLINE
    finally:
        worker.stop()
    assert not _capture_threads()
