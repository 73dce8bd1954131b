"""Live video relayed from the RTSP camera simulator without decoding or encoding it again: a
viewer starts on the encoder (a keyframe at once) and moves to the relay at the camera's next
keyframe; a tier smaller than the camera's picture stays encoded from the capture."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import av
import pytest

from agent.camera.capture import CameraWorker
from agent.camera.pictures import CameraPictures
from agent.camera.slot import FrameSlot
from agent.config import CameraConfig, RtcConfig, ViewerCaps
from agent.motion.regions import PrivacyMasker
from agent.rtc.fanout import PacketTrack
from agent.rtc.relay import nal_units
from agent.rtc.video import LiveCamera, VideoHub
from tests.fixtures.loops import run_in_own_loop
from tests.fixtures.rtsp import RtspCameraFactory
from tests.fixtures.servers import wait_until
from tests.unit.test_rtc_video_peer import LoopbackViewer, until

pytestmark = pytest.mark.integration

TIERS = {
    "full": ViewerCaps(width=640, height=480, fps=15, bitrate_kbps=1500),
    "half": ViewerCaps(width=320, height=240, fps=15, bitrate_kbps=600),
}


@pytest.fixture(autouse=True)
def _no_thread_left() -> Iterator[None]:
    yield
    assert not [t.name for t in threading.enumerate() if t.name.startswith("rtc-")]


def _threads(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def _camera_config(url: str, size: str) -> CameraConfig:
    return CameraConfig(
        id="gate",
        source=url,
        fps=15,
        resolution=size,
        open_timeout_seconds=5,
        stall_timeout_seconds=5,
    )


def _relay(hub: VideoHub) -> dict[str, Any]:
    stats = hub.stats()["gate"]
    assert isinstance(stats, dict)
    relay = stats["relay"]
    return relay if isinstance(relay, dict) else {}


def _encoders(hub: VideoHub) -> dict[str, Any]:
    stats = hub.stats()["gate"]
    assert isinstance(stats, dict)
    encoders = stats["encoders"]
    assert isinstance(encoders, dict)
    return encoders


async def _decode(
    track: PacketTrack, count: int, decoder: av.CodecContext | None = None
) -> tuple[list[av.Packet[Any]], list[Any]]:
    """Receive until ``count`` pictures decoded, with ``decoder`` if the viewer has one going."""
    decoder = decoder or av.CodecContext.create("h264", "r")
    packets: list[av.Packet[Any]] = []
    frames: list[Any] = []
    while len(frames) < count:
        packet = await asyncio.wait_for(track.recv(), 30)
        packets.append(packet)
        frames += decoder.decode(packet)  # type: ignore[attr-defined]
    return packets, frames


def test_an_unmasked_rtsp_camera_is_relayed_as_it_comes(
    rtsp_camera_factory: RtspCameraFactory,
) -> None:
    camera = rtsp_camera_factory(scene="walking_person", size=(320, 240), fps=15.0)
    config = _camera_config(camera.url, "320x240")
    slot = FrameSlot()  # no capture runs: nothing can be encoded, everything comes relayed
    live = LiveCamera(config, slot, CameraPictures(slot, PrivacyMasker([])))

    async def scenario() -> None:
        hub = VideoHub(RtcConfig(tiers=TIERS), [live], linger_seconds=0.0)
        try:
            viewers = [hub.track("gate", "full"), hub.track("gate", "half")]
            assert all(isinstance(v, PacketTrack) for v in viewers)
            for viewer in viewers:
                assert isinstance(viewer, PacketTrack)
                packets, frames = await _decode(viewer, 20)
                first = {kind for kind, _ in nal_units(bytes(packets[0]))}
                assert {7, 8, 5} <= first, "a viewer starts at an IDR with its SPS and PPS"
                assert {(f.width, f.height) for f in frames} == {(320, 240)}
            # One relay for both tiers (the camera's picture fits both); the encoders the
            # viewers started on (idle without a capture) have stopped.
            await hub.wait_idle()
            assert _threads("rtc-") == ["rtc-relay-gate"]
            stats = hub.stats()["gate"]
            assert isinstance(stats, dict)
            assert stats["passthrough"] is True
            assert stats["encoders"] == {}
            relay = stats["relay"]
            assert isinstance(relay, dict)
            assert relay["stream"] == "h264 320x240"
            assert relay["subscribers"] == 2
            for viewer in viewers:
                viewer.stop()
            await hub.wait_idle()
            assert not _threads("rtc-")
        finally:
            await hub.close()

    run_in_own_loop(scenario)


def test_a_tier_smaller_than_the_cameras_picture_is_encoded_from_the_capture(
    rtsp_camera_factory: RtspCameraFactory,
) -> None:
    camera = rtsp_camera_factory(scene="walking_person", size=(640, 480), fps=15.0)
    config = _camera_config(camera.url, "640x480")
    worker = CameraWorker(config)
    worker.start()
    try:
        wait_until(lambda: worker.status().frames >= 3, 30, "frames from the RTSP camera")
        live = LiveCamera(config, worker.slot, CameraPictures(worker.slot, PrivacyMasker([])))

        async def scenario() -> None:
            hub = VideoHub(RtcConfig(tiers=TIERS), [live], linger_seconds=0.0)
            try:
                full, half = hub.track("gate", "full"), hub.track("gate", "half")
                assert isinstance(full, PacketTrack) and isinstance(half, PacketTrack)
                _, half_frames = await _decode(half, 10)
                decoder = av.CodecContext.create("h264", "r")
                full_packets, full_frames = await _decode(full, 10, decoder)
                await until(lambda: _relay(hub).get("subscribers") == 1, "full on the relay")
                more_packets, more_frames = await _decode(full, 20, decoder)
                await hub.wait_idle()
                assert {(f.width, f.height) for f in half_frames} == {(320, 240)}
                assert {(f.width, f.height) for f in full_frames + more_frames} == {(640, 480)}
                # Across the move from encoder to relay the viewer's timeline runs on.
                stamps = [int(p.pts or 0) for p in full_packets + more_packets]
                assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
                assert list(_encoders(hub)) == ["half"]
                assert _relay(hub)["joining"] == 0
                # The camera's size is known now: a new viewer of the small tier does not
                # even wait for the relay.
                again = hub.track("gate", "half")
                assert _encoders(hub)["half"]["subscribers"] == 2
                assert _relay(hub)["joining"] == 0
                again.stop()
            finally:
                await hub.close()

        run_in_own_loop(scenario)
    finally:
        worker.stop(timeout=10)


def test_an_aiortc_viewer_keeps_decoding_across_the_move_to_the_relay(
    rtsp_camera_factory: RtspCameraFactory,
) -> None:
    camera = rtsp_camera_factory(scene="walking_person", size=(320, 240), fps=15.0)
    config = _camera_config(camera.url, "320x240")
    worker = CameraWorker(config)
    worker.start()
    try:
        wait_until(lambda: worker.status().frames >= 3, 30, "frames from the RTSP camera")
        live = LiveCamera(config, worker.slot, CameraPictures(worker.slot, PrivacyMasker([])))

        async def scenario() -> None:
            hub = VideoHub(RtcConfig(tiers=TIERS), [live], linger_seconds=0.0)
            try:
                async with LoopbackViewer(hub, "gate", "half") as peer:
                    await until(lambda: peer.decoded, "the first decoded picture")
                    await until(lambda: _relay(hub).get("subscribers") == 1, "the move")
                    moved_at = len(peer.decoded)
                    await until(lambda: len(peer.decoded) >= moved_at + 15, "relayed pictures")
                    assert set(peer.decoded) == {(320, 240)}
                    await hub.wait_idle()
                    assert _encoders(hub) == {}
            finally:
                await hub.close()

        run_in_own_loop(scenario)
    finally:
        worker.stop(timeout=10)
