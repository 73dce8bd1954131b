"""A hub track through a real aiortc peer connection over loopback, the way the web layer sends
it (sendonly, H.264 only, keyframe requests bound): the viewer decodes pictures, a PLI makes
the shared encoder produce a keyframe, and closing the peer stops the encoder."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
)
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket

from agent.config import RtcConfig
from agent.rtc.fanout import PacketTrack
from agent.rtc.video import VideoHub
from tests.fixtures.loops import run_in_own_loop
from tests.unit.test_rtc_video import TIERS, FedCamera, _config


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


async def _until(condition: object, what: str) -> None:
    """Wait (bounded, never asserted on) until ``condition()`` holds."""
    assert callable(condition)
    for _ in range(600):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_a_viewer_peer_decodes_the_hub_track(camera: FedCamera) -> None:
    async def scenario() -> None:
        hub = VideoHub(
            RtcConfig(tiers=TIERS),
            [camera.live],
            linger_seconds=0.0,
            keyframe_seconds=60.0,
            min_forced_keyframe_seconds=0.0,
        )
        viewer = RTCPeerConnection()
        agent = RTCPeerConnection()
        decoded: list[tuple[int, int]] = []
        reader: asyncio.Task[None] | None = None
        try:
            viewer.addTransceiver("video", direction="recvonly")

            @viewer.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                async def read() -> None:
                    while True:
                        frame = await track.recv()
                        decoded.append((frame.width, frame.height))  # type: ignore[union-attr]

                nonlocal reader
                reader = asyncio.create_task(read())

            started = time.monotonic()
            await viewer.setLocalDescription(await viewer.createOffer())

            track = hub.track("yard", "half")
            assert isinstance(track, PacketTrack)
            transceiver = agent.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(
                [
                    codec
                    for codec in RTCRtpSender.getCapabilities("video").codecs
                    if codec.mimeType.lower() == "video/h264"
                ]
            )
            track.bind_sender(transceiver.sender)
            await agent.setRemoteDescription(viewer.localDescription)
            await agent.setLocalDescription(await agent.createAnswer())
            await viewer.setRemoteDescription(agent.localDescription)

            await _until(lambda: decoded, "the first decoded picture")
            print(f"offer to first decoded frame: {time.monotonic() - started:.3f} s")
            await _until(lambda: len(decoded) >= 10, "ten decoded pictures")
            assert set(decoded) == {(320, 240)}

            # The browser's Picture Loss Indication, through aiortc's own RTCP handling.
            forced = _encoder_stats(hub)["forced_keyframes"]
            assert isinstance(forced, int)
            sender = transceiver.sender
            await sender._handle_rtcp_packet(
                RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc)
            )
            await _until(
                lambda: _encoder_stats(hub)["forced_keyframes"] == forced + 1,  # type: ignore[operator]
                "the keyframe the PLI asked for",
            )
            seen = len(decoded)
            await _until(lambda: len(decoded) >= seen + 5, "pictures after the keyframe")
        finally:
            if reader is not None:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            await viewer.close()
            await agent.close()
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
