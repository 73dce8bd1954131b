"""The video hub: one encoder per camera and tier, masked pictures, bounded viewers, clean stops.

Cameras here are latest-frame slots fed by a thread at a steady rate; what the tracks carry is
decoded with PyAV's H.264 decoder, as a browser would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import av
import cv2
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from agent.camera.pictures import CameraPictures
from agent.camera.slot import FrameSlot
from agent.config import CameraConfig, RtcConfig, ViewerCaps
from agent.errors import KioskError
from agent.motion.regions import PrivacyMasker
from agent.rtc.encoder import fit_size
from agent.rtc.fanout import PacketTrack
from agent.rtc.relay import nal_units
from agent.rtc.video import LiveCamera, VideoHub
from tests.fixtures.loops import run_in_own_loop
from tests.fixtures.servers import free_port

TIERS = {
    "full": ViewerCaps(width=640, height=480, fps=30, bitrate_kbps=1500),
    "half": ViewerCaps(width=320, height=240, fps=30, bitrate_kbps=600),
}
# The left third of the picture is private.
LEFT_THIRD = {"name": "neighbour", "points": [(0.0, 0.0), (1 / 3, 0.0), (1 / 3, 1.0), (0.0, 1.0)]}


def _picture(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    """A bright, textured picture: something for the encoder to spend bits on."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 60, (height // 8, width // 8, 3), dtype=np.uint8)
    texture = cv2.resize(noise, (width, height), interpolation=cv2.INTER_NEAREST)
    return (texture + 180).astype(np.uint8)


class FedCamera:
    """A camera's slot fed by a thread at ``fps`` with pictures that change a little each frame."""

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        self.slot = FrameSlot()
        self.pictures = CameraPictures(self.slot, PrivacyMasker(config.privacy_masks))
        size = (config.resolution.width, config.resolution.height)
        self._images = [_picture(*size, seed=seed) for seed in range(4)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, name="test-feed", daemon=True)

    @property
    def live(self) -> LiveCamera:
        return LiveCamera(self.config, self.slot, self.pictures)

    def _feed(self) -> None:
        index = 0
        while not self._stop.wait(1.0 / self.config.fps):
            self.slot.put(self._images[index % len(self._images)].copy(), time.time())
            index += 1

    def start(self) -> FedCamera:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _config(**overrides: Any) -> CameraConfig:
    values: dict[str, Any] = {
        "id": "yard",
        "source": "sim://empty",
        "fps": 30,
        "resolution": "640x480",
    }
    values.update(overrides)
    return CameraConfig(**values)


@pytest.fixture
def cameras() -> Iterator[Callable[..., FedCamera]]:
    made: list[FedCamera] = []

    def make(**overrides: Any) -> FedCamera:
        camera = FedCamera(_config(**overrides)).start()
        made.append(camera)
        return camera

    yield make
    for camera in made:
        camera.stop()


@pytest.fixture(autouse=True)
def _no_thread_left() -> Iterator[None]:
    yield
    assert not [t.name for t in threading.enumerate() if t.name.startswith("rtc-")]


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def _hub(*cameras: FedCamera, **options: Any) -> VideoHub:
    options.setdefault("linger_seconds", 0.0)
    return VideoHub(RtcConfig(tiers=TIERS), [camera.live for camera in cameras], **options)


def _run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        result = await scenario()
        leftover = asyncio.all_tasks() - {asyncio.current_task()}
        assert not leftover, f"tasks left running: {leftover}"
        return result

    return run_in_own_loop(main)


async def _decode(track: PacketTrack, frames: int) -> list[av.VideoFrame]:
    """Receive until ``frames`` pictures decoded; the first packet must start a picture."""
    decoder = av.CodecContext.create("h264", "r")
    decoded: list[av.VideoFrame] = []
    first = True
    while len(decoded) < frames:
        packet = await asyncio.wait_for(track.recv(), 30)
        if first:
            assert packet.is_keyframe, "a viewer must start at a keyframe"
            assert 5 in {kind for kind, _ in nal_units(bytes(packet))}  # an IDR picture
            first = False
        decoded += decoder.decode(packet)
    return decoded


# -- sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("camera", "caps", "expected"),
    [
        ((1280, 720), ViewerCaps(width=640, height=360, fps=10, bitrate_kbps=400), (640, 360)),
        ((640, 480), ViewerCaps(width=640, height=360, fps=10, bitrate_kbps=400), (480, 360)),
        ((640, 480), ViewerCaps(width=1280, height=720, fps=15, bitrate_kbps=1500), (640, 480)),
        ((642, 481), ViewerCaps(width=1280, height=720, fps=15, bitrate_kbps=1500), (642, 480)),
    ],
)
def test_a_tier_scales_the_picture_down_into_its_box_never_up(
    camera: tuple[int, int], caps: ViewerCaps, expected: tuple[int, int]
) -> None:
    assert fit_size(*camera, caps) == expected


def test_a_viewers_packets_decode_to_pictures_of_its_tier(
    cameras: Callable[..., FedCamera],
) -> None:
    camera = cameras()

    async def scenario() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        hub = _hub(camera)
        try:
            full, half = hub.track("yard", "full"), hub.track("yard", "half")
            assert isinstance(full, PacketTrack) and isinstance(half, PacketTrack)
            assert full.kind == "video"
            full_frames = await _decode(full, 5)
            half_frames = await _decode(half, 5)
            return (
                [(f.width, f.height) for f in full_frames],
                [(f.width, f.height) for f in half_frames],
            )
        finally:
            await hub.close()

    full_sizes, half_sizes = _run(scenario)
    assert set(full_sizes) == {(640, 480)}
    assert set(half_sizes) == {(320, 240)}


def test_unknown_camera_or_tier_is_a_key_error(cameras: Callable[..., FedCamera]) -> None:
    camera = cameras()

    async def scenario() -> None:
        hub = _hub(camera)
        try:
            with pytest.raises(KeyError):
                hub.track("barn", "full")
            with pytest.raises(KeyError):
                hub.track("yard", "4k")
            with pytest.raises(KeyError):
                hub.mjpeg("barn", 2.0)
            assert hub.stats()["yard"] == {
                "passthrough": False,
                "relay": None,
                "encoders": {},
                "subscribers": 0,
            }
        finally:
            await hub.close()

    _run(scenario)


# -- one encoder, many viewers --------------------------------------------------------------------


def test_viewers_of_one_camera_and_tier_share_one_encoder(
    cameras: Callable[..., FedCamera],
) -> None:
    camera = cameras()

    async def scenario() -> None:
        hub = _hub(camera)
        try:
            viewers = [hub.track("yard", "half") for _ in range(3)]
            assert [t.name for t in _threads("rtc-encode-")] == ["rtc-encode-yard-half"]
            firsts = [await asyncio.wait_for(v.recv(), 30) for v in viewers]
            # Later viewers may have started at a later keyframe; from one shared packet on,
            # all of them carry the very same packets (no copy, no second encoding).
            while len({p.pts for p in firsts}) > 1:
                newest = max(p.pts or 0 for p in firsts)
                firsts = [
                    p if p.pts == newest else await asyncio.wait_for(v.recv(), 30)
                    for p, v in zip(firsts, viewers, strict=True)
                ]
            assert all(p is firsts[0] for p in firsts)
            stats = hub.stats()["yard"]
            assert isinstance(stats, dict)
            assert list(stats["encoders"]) == ["half"]
            assert stats["encoders"]["half"]["subscribers"] == 3
            assert stats["subscribers"] == 3

            other = hub.track("yard", "full")  # another tier is another encoder
            assert sorted(t.name for t in _threads("rtc-encode-")) == [
                "rtc-encode-yard-full",
                "rtc-encode-yard-half",
            ]
            other.stop()
        finally:
            await hub.close()

    _run(scenario)


def test_the_encoder_stops_when_its_last_viewer_leaves(cameras: Callable[..., FedCamera]) -> None:
    camera = cameras()

    async def scenario() -> None:
        hub = _hub(camera)
        try:
            first, second = hub.track("yard", "half"), hub.track("yard", "half")
            await asyncio.wait_for(first.recv(), 30)
            first.stop()
            await hub.wait_idle()
            assert _threads("rtc-encode-yard-half"), "one viewer is still watching"
            await asyncio.wait_for(second.recv(), 30)

            second.stop()
            await hub.wait_idle()
            assert not _threads("rtc-encode-")
            assert hub.stats()["yard"] == {
                "passthrough": False,
                "relay": None,
                "encoders": {},
                "subscribers": 0,
            }
            assert camera.slot.waiting() == 0
        finally:
            await hub.close()

    _run(scenario)


def test_a_viewer_back_within_the_linger_keeps_the_running_encoder(
    cameras: Callable[..., FedCamera],
) -> None:
    camera = cameras()

    async def scenario() -> None:
        hub = _hub(camera, linger_seconds=30.0)
        try:
            leaving = hub.track("yard", "half")
            await asyncio.wait_for(leaving.recv(), 30)
            (encoder,) = _threads("rtc-encode-")
            leaving.stop()
            returning = hub.track("yard", "half")  # a page reload
            assert _threads("rtc-encode-") == [encoder]
            await _decode(returning, 2)
        finally:
            await hub.close()
        assert not encoder.is_alive()

    _run(scenario)


def test_a_stopped_track_ends_its_sender() -> None:
    async def scenario() -> None:
        track = PacketTrack("yard", "half", max_queue=4)
        waiting = asyncio.create_task(track.recv())
        await asyncio.sleep(0)
        track.stop()
        with pytest.raises(MediaStreamError):
            await waiting
        assert track.readyState == "ended"

    _run(scenario)


# -- privacy --------------------------------------------------------------------------------------


def test_a_masked_cameras_live_pictures_are_black_inside_the_mask(
    cameras: Callable[..., FedCamera],
) -> None:
    camera = cameras(privacy_masks=[LEFT_THIRD])

    async def scenario() -> list[np.ndarray]:
        hub = _hub(camera)
        try:
            track = hub.track("yard", "full")
            frames = await _decode(track, 5)
            return [frame.to_ndarray(format="gray") for frame in frames]
        finally:
            await hub.close()

    for gray in _run(scenario):
        assert gray.shape == (480, 640)
        inside = gray[8:-8, 8 : 640 // 3 - 8]  # a margin for the codec's blur at the edge
        outside = gray[8:-8, 640 // 3 + 8 : -8]
        assert inside.max() < 40, "privacy mask must be black in live video"
        assert outside.mean() > 150


def test_a_masked_rtsp_camera_is_encoded_never_relayed(
    cameras: Callable[..., FedCamera],
) -> None:
    # Nothing listens at this address: a relay would fail; the masked camera never tries one.
    camera = cameras(source=f"rtsp://127.0.0.1:{free_port()}/cam", privacy_masks=[LEFT_THIRD])

    async def scenario() -> None:
        hub = _hub(camera)
        try:
            track = hub.track("yard", "full")
            assert not _threads("rtc-relay-")
            stats = hub.stats()["yard"]
            assert isinstance(stats, dict)
            assert stats["passthrough"] is False
            assert list(stats["encoders"]) == ["full"]
            await _decode(track, 2)
        finally:
            await hub.close()

    _run(scenario)


def test_mjpeg_stills_are_masked_and_each_one_is_newer(cameras: Callable[..., FedCamera]) -> None:
    camera = cameras(privacy_masks=[LEFT_THIRD])

    async def scenario() -> list[bytes]:
        hub = _hub(camera)
        stills = hub.mjpeg("yard", 30.0)
        try:
            return [await asyncio.wait_for(anext(stills), 30) for _ in range(3)]
        finally:
            await stills.aclose()  # type: ignore[attr-defined]
            await hub.close()

    stills = _run(scenario)
    assert len(set(stills)) == 3
    for jpeg in stills:
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert image.shape == (480, 640)
        assert image[8:-8, 8 : 640 // 3 - 8].max() < 40
        assert image[8:-8, 640 // 3 + 8 : -8].mean() > 150
    assert camera.slot.waiting() == 0


# -- slow viewers and keyframes -------------------------------------------------------------------


def test_a_stalled_viewer_holds_a_bounded_queue_and_resumes_at_a_keyframe(
    cameras: Callable[..., FedCamera],
) -> None:
    camera = cameras()

    async def scenario() -> None:
        hub = _hub(camera)
        try:
            steady, stalled = hub.track("yard", "half"), hub.track("yard", "half")
            assert isinstance(stalled, PacketTrack)
            decoder = av.CodecContext.create("h264", "r")
            first = await asyncio.wait_for(stalled.recv(), 30)
            decoder.decode(first)
            bound = stalled.queued
            # The stalled viewer reads nothing while the steady one takes 4 s of video.
            for _ in range(120):
                await asyncio.wait_for(steady.recv(), 30)
                bound = max(bound, stalled.queued)
            assert bound <= 30  # one second at the tier's 30 fps, never more
            assert stalled.resyncs >= 1 and stalled.dropped > 0
            resumed = await asyncio.wait_for(stalled.recv(), 30)
            assert resumed.is_keyframe, "a viewer that fell behind resumes at a keyframe"
            pictures = decoder.decode(resumed)
            for _ in range(3):
                pictures += decoder.decode(await asyncio.wait_for(stalled.recv(), 30))
            assert pictures and all(p.width == 320 for p in pictures)
        finally:
            await hub.close()

    _run(scenario)


def test_a_viewer_that_never_starts_costs_no_keyframes(cameras: Callable[..., FedCamera]) -> None:
    camera = cameras()

    async def scenario() -> None:
        hub = _hub(camera, keyframe_seconds=60.0, min_forced_keyframe_seconds=0.0)
        try:
            steady = hub.track("yard", "half")
            idle = hub.track("yard", "half")  # a peer that never connects: recv is never called
            assert isinstance(idle, PacketTrack)
            for _ in range(120):
                await asyncio.wait_for(steady.recv(), 30)
            assert idle.queued <= 30
            stats = hub.stats()["yard"]
            assert isinstance(stats, dict)
            # The first picture is a keyframe; the joins asked for at most one more.
            assert stats["encoders"]["half"]["keyframes"] <= 2
        finally:
            await hub.close()

    _run(scenario)


def test_a_keyframe_asked_for_comes_at_once_rather_than_at_the_interval(
    cameras: Callable[..., FedCamera],
) -> None:
    camera = cameras()

    async def scenario() -> None:
        hub = _hub(camera, keyframe_seconds=60.0, min_forced_keyframe_seconds=0.0)
        try:
            track = hub.track("yard", "half")
            assert isinstance(track, PacketTrack)
            assert (await asyncio.wait_for(track.recv(), 30)).is_keyframe
            for _ in range(3):
                assert not (await asyncio.wait_for(track.recv(), 30)).is_keyframe
            track._fanout.request_keyframe()  # what a PLI from the browser does
            packets = [await asyncio.wait_for(track.recv(), 30) for _ in range(3)]
            assert any(p.is_keyframe for p in packets)
        finally:
            await hub.close()

    _run(scenario)


# -- relay fallback -------------------------------------------------------------------------------


def test_an_unreachable_relay_moves_its_viewers_to_the_encoder(
    cameras: Callable[..., FedCamera],
) -> None:
    # An RTSP camera with no masks is relayed; this one's stream cannot be opened (a camera
    # that allows one RTSP session), so its viewers get the encoded capture instead.
    camera = cameras(source=f"rtsp://127.0.0.1:{free_port()}/cam")

    async def scenario() -> None:
        hub = _hub(camera)
        try:
            track = hub.track("yard", "half")
            assert _threads("rtc-relay-yard")
            frames = await _decode(track, 3)
            assert {(f.width, f.height) for f in frames} == {(320, 240)}
            await hub.wait_idle()
            stats = hub.stats()["yard"]
            assert isinstance(stats, dict)
            assert stats["passthrough"] is True
            assert stats["relay"] is None
            assert list(stats["encoders"]) == ["half"]
            # While the relay is barred, new viewers go straight to the encoder.
            hub.track("yard", "half").stop()
            assert not _threads("rtc-relay-")
        finally:
            await hub.close()

    _run(scenario)


# -- stopping with the agent ----------------------------------------------------------------------


def test_the_runtime_stops_the_hub_from_its_worker_thread(
    cameras: Callable[..., FedCamera],
) -> None:
    camera = cameras()

    async def scenario() -> None:
        hub = _hub(camera, linger_seconds=30.0)
        track = hub.track("yard", "half")
        await asyncio.wait_for(track.recv(), 30)
        await asyncio.to_thread(hub.stop)  # as Runtime.stop runs, beside the running loop
        assert track.readyState == "ended"
        assert not _threads("rtc-")
        with pytest.raises(KioskError):
            hub.track("yard", "half")

    _run(scenario)


def test_a_hub_whose_loop_has_ended_still_stops_its_threads(
    cameras: Callable[..., FedCamera],
) -> None:
    camera = cameras()
    hub = _hub(camera)

    async def abandon() -> None:
        track = hub.track("yard", "half")
        await asyncio.wait_for(track.recv(), 30)

    run_in_own_loop(abandon)
    assert _threads("rtc-encode-")
    hub.stop()
    assert not _threads("rtc-")
