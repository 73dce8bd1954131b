"""A hub track through a real aiortc peer connection over loopback, the way the web layer sends
it (sendonly, H.264 only, keyframe requests bound): the viewer decodes pictures, a PLI makes
the shared encoder produce a keyframe, and closing the peer stops the encoder."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType

import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket

from agent.config import RtcConfig
from agent.rtc.fanout import PacketTrack
from agent.rtc.video import VideoHub
from tests.fixtures.loops import run_in_own_loop
from tests.unit.test_rtc_video import TIERS, FedCamera, _config


async def until(condition: Callable[[], object], what: str) -> None:
    """Wait (bounded, never asserted on) until ``condition()`` holds."""
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


class LoopbackViewer:
    """A browser stand-in: an aiortc peer that offers to receive video, answered by another
    peer that sends ``hub.track(camera_id, tier)`` as the web layer does. ``decoded`` lists
    the size of every picture the viewer decoded."""

    def __init__(self, hub: VideoHub, camera_id: str, tier: str) -> None:
        self._hub = hub
        self._camera_id = camera_id
        self._tier = tier
        self.viewer = RTCPeerConnection()
        self.agent = RTCPeerConnection()
        self.decoded: list[tuple[int, int]] = []
        self.transceiver: RTCRtpTransceiver | None = None
        self.offered_at = 0.0
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopbackViewer:
        self.viewer.addTransceiver("video", direction="recvonly")

        @self.viewer.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            async def read() -> None:
                while True:
                    frame = await track.recv()
                    self.decoded.append((frame.width, frame.height))  # type: ignore[union-attr]

            self._reader = asyncio.create_task(read())

        self.offered_at = time.monotonic()
        await self.viewer.setLocalDescription(await self.viewer.createOffer())
        track = self._hub.track(self._camera_id, self._tier)
        assert isinstance(track, PacketTrack)
        self.transceiver = self.agent.addTransceiver(track, direction="sendonly")
        self.transceiver.setCodecPreferences(
            [
                codec
                for codec in RTCRtpSender.getCapabilities("video").codecs
                if codec.mimeType.lower() == "video/h264"
            ]
        )
        track.bind_sender(self.transceiver.sender)
        await self.agent.setRemoteDescription(self.viewer.localDescription)
        await self.agent.setLocalDescription(await self.agent.createAnswer())
        await self.viewer.setRemoteDescription(self.agent.localDescription)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.viewer.close()
        await self.agent.close()


@pytest.fixture
def camera() -> Iterator[FedCamera]:
    fed = FedCamera(_config(fps=15)).start()
    yield fed
    fed.stop()


def _encoder_stats(hub: VideoHub) -> dict[str, object]:
    stats = hub.stats()["yard"]
    assert isinstance(stats, dict)
    encoders = stats["encoders"]
    assert isinstance(encoders, dict)
    half = encoders["half"]
    assert isinstance(half, dict)
    return half


def test_a_viewer_peer_decodes_the_hub_track(camera: FedCamera) -> None:
    async def scenario() -> None:
        hub = VideoHub(
            RtcConfig(tiers=TIERS),
            [camera.live],
            linger_seconds=0.0,
            keyframe_seconds=60.0,
            min_forced_keyframe_seconds=0.0,
        )
        async with LoopbackViewer(hub, "yard", "half") as peer:
            await until(lambda: peer.decoded, "the first decoded picture")
            print(f"offer to first decoded frame: {time.monotonic() - peer.offered_at:.3f} s")
            await until(lambda: len(peer.decoded) >= 10, "ten decoded pictures")
            assert set(peer.decoded) == {(320, 240)}

            # The browser's Picture Loss Indication, through aiortc's own RTCP handling.
            forced = _encoder_stats(hub)["forced_keyframes"]
            assert isinstance(forced, int)
            assert peer.transceiver is not None
            sender = peer.transceiver.sender
            await sender._handle_rtcp_packet(
                RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc)
            )
            await until(
                lambda: _encoder_stats(hub)["forced_keyframes"] == forced + 1,
                "the keyframe the PLI asked for",
            )
            seen = len(peer.decoded)
            await until(lambda: len(peer.decoded) >= seen + 5, "pictures after the keyframe")
        # Closing the peer stops its sender, which stops the track: the encoder has no viewer.
        await hub.wait_idle()
        assert not [t for t in threading.enumerate() if t.name.startswith("rtc-")]
        assert hub.stats()["yard"] == {
            "passthrough": False,
            "relay": None,
            "encoders": {},
            "subscribers": 0,
        }
        await hub.close()

    run_in_own_loop(scenario)
