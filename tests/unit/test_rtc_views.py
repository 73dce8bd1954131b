"""Live views through real aiortc peers on loopback: an in-process aiortc connection plays the
browser. Limits, audit of start and end, and every way a peer ends (hang-up, never connecting,
going silent, time limit) are checked; the Chromium tests cover the browser itself."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import VideoFrame

from agent.audit import AuditLog
from agent.config import RtcConfig
from agent.rtc.peers import Offer, OfferError, PeerBusyError, PeerSessions, without_mdns_candidates
from agent.rtc.views import LiveViews, UnknownCameraError
from agent.store.database import Database
from tests.fixtures.loops import run_in_own_loop

CAMERAS = frozenset({"square", "road"})


class _GreyTrack(MediaStreamTrack):
    """A stand-in for the hub's tracks: grey 320x240 frames at 10 fps (aiortc encodes them)."""

    kind = "video"

    def __init__(self, stopped: list[str], camera_id: str) -> None:
        super().__init__()
        self._stopped = stopped
        self._camera = camera_id
        self._pts = 0

    async def recv(self) -> VideoFrame:
        await asyncio.sleep(0.1)
        frame = VideoFrame.from_ndarray(np.full((240, 320, 3), 128, np.uint8), format="bgr24")
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 90000)
        self._pts += 9000
        return frame

    def stop(self) -> None:
        if self.readyState != "ended":
            self._stopped.append(self._camera)
        super().stop()


class _Source:
    def __init__(self) -> None:
        self.stopped: list[str] = []
        self.made = 0

    def track(self, camera_id: str, tier: str) -> MediaStreamTrack:
        self.made += 1
        return _GreyTrack(self.stopped, camera_id)

    async def mjpeg(self, camera_id: str, fps: float) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(1 / fps)
            yield b"\xff\xd8 still \xff\xd9"


async def _until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class _Browser:
    """The viewer's side: a recvonly video offer, and the frames it receives."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("video", direction="recvonly")
        self.frames = 0
        self._pulls: list[asyncio.Future[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        async def pull() -> None:
            while True:
                try:
                    await track.recv()
                except Exception:  # noqa: BLE001 - the track ended
                    return
                self.frames += 1

        self._pulls.append(asyncio.ensure_future(pull()))

    async def offer(self) -> Offer:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return Offer(sdp=self.pc.localDescription.sdp)

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))


def _kiosk(tmp_path: Path, **rtc: Any) -> tuple[LiveViews, PeerSessions, _Source, AuditLog]:
    config = RtcConfig(**{"connect_timeout_seconds": 3, "silence_timeout_seconds": 3, **rtc})
    audit = AuditLog(Database(tmp_path / "kiosk.sqlite3"))
    peers = PeerSessions(config)
    source = _Source()
    views = LiveViews(peers, source, audit, config, cameras=lambda: CAMERAS)
    return views, peers, source, audit


def _run(factory: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await factory()

    run_in_own_loop(main)


def _live_rows(audit: AuditLog) -> list[tuple[str, str, str, str]]:
    return [
        (e.actor, e.action, e.subject, e.detail)
        for e in reversed(audit.entries(limit=100))
        if e.action.startswith("camera.live")
    ]


def _ended(audit: AuditLog) -> bool:
    """The view's end is written (after its peer has left the registry)."""
    return any(row[1] == "camera.live_end" for row in _live_rows(audit))


def test_a_viewer_gets_frames_and_the_view_is_audited_from_start_to_end(tmp_path: Path) -> None:
    views, _peers, source, audit = _kiosk(tmp_path)

    async def scenario() -> None:
        browser = _Browser()
        answer = await views.open(
            await browser.offer(), viewer="li.police", camera_id="square", tier="low"
        )
        await browser.accept(answer.sdp)
        await _until(lambda: browser.frames >= 5, "five decoded frames")
        assert "H264" in answer.sdp, "the agent sends H.264 only"
        assert await views.close("li.police", answer.peer.id)
        await browser.pc.close()
        await _until(lambda: _ended(audit), "the view to end")

    _run(scenario)
    assert source.stopped == ["square"], "the hub's track was stopped with the view"
    rows = _live_rows(audit)
    assert [row[:3] for row in rows] == [
        ("li.police", "camera.live", "camera:square"),
        ("li.police", "camera.live_end", "camera:square"),
    ]
    assert "reason=hangup" in rows[1][3]


def test_one_viewer_over_the_camera_limit_is_busy_while_the_others_play(tmp_path: Path) -> None:
    views, peers, source, _audit = _kiosk(tmp_path, max_viewers_per_camera=2, max_viewers=3)

    async def scenario() -> None:
        browsers = [_Browser() for _ in range(2)]
        for index, browser in enumerate(browsers):
            answer = await views.open(
                await browser.offer(), viewer=f"viewer{index}", camera_id="square", tier="low"
            )
            await browser.accept(answer.sdp)
        extra = _Browser()
        with pytest.raises(PeerBusyError) as busy:
            await views.open(await extra.offer(), viewer="late", camera_id="square", tier="low")
        assert busy.value.scope == "square"
        # Another camera still has room, up to the overall limit.
        other = _Browser()
        answer = await views.open(
            await other.offer(), viewer="viewer3", camera_id="road", tier="low"
        )
        await other.accept(answer.sdp)
        with pytest.raises(PeerBusyError) as full:
            await views.open(await _Browser().offer(), viewer="x", camera_id="road", tier="low")
        assert full.value.scope == "all"
        before = [b.frames for b in browsers]
        await _until(
            lambda: all(b.frames > n + 5 for b, n in zip(browsers, before, strict=True)),
            "the first two viewers to keep playing",
        )
        for browser in (*browsers, other, extra):
            await browser.pc.close()
        await peers.close_all()

    _run(scenario)
    assert source.made == 3, "a refused viewer costs no track"


def test_a_peer_that_never_connects_is_closed(tmp_path: Path) -> None:
    views, _peers, source, audit = _kiosk(tmp_path)

    async def scenario() -> None:
        browser = _Browser()
        await views.open(await browser.offer(), viewer="li.police", camera_id="road", tier="low")
        # The answer never reaches the browser.
        await _until(lambda: _ended(audit), "the unconnected peer to close")
        await browser.pc.close()

    _run(scenario)
    assert source.stopped == ["road"]
    assert "reason=no_connect" in _live_rows(audit)[-1][3]


def test_a_viewer_that_goes_silent_is_dropped(tmp_path: Path) -> None:
    views, _peers, _source, audit = _kiosk(tmp_path)

    async def scenario() -> None:
        browser = _Browser()
        answer = await views.open(
            await browser.offer(), viewer="chen.family", camera_id="square", tier="low"
        )
        await browser.accept(answer.sdp)
        await _until(lambda: browser.frames >= 3, "frames")
        # The phone loses its signal: its transport stops, without a goodbye.
        for transceiver in browser.pc.getTransceivers():
            await transceiver.receiver.transport.transport.stop()
        await _until(lambda: _ended(audit), "the silent viewer to be dropped")
        await browser.pc.close()

    _run(scenario)
    end = _live_rows(audit)[-1]
    assert end[1] == "camera.live_end"
    assert "reason=silent" in end[3] or "reason=failed" in end[3] or "reason=closed" in end[3]


def test_a_view_ends_at_its_time_limit(tmp_path: Path) -> None:
    # Silence is given long enough that only the time limit can end this view.
    views, peers, _source, audit = _kiosk(tmp_path, silence_timeout_seconds=60)
    views._config = views._config.model_copy(update={"max_view_minutes": 1.0})

    async def scenario() -> None:
        browser = _Browser()
        answer = await views.open(
            await browser.offer(), viewer="li.police", camera_id="square", tier="low"
        )
        await browser.accept(answer.sdp)
        await _until(lambda: browser.frames >= 2, "frames")
        # The limit is whole minutes in the config; two seconds keep this test short.
        peers._peers[answer.peer.id].max_seconds = 2.0
        await _until(lambda: _ended(audit), "the time limit")
        await browser.pc.close()

    _run(scenario)
    assert "reason=time_limit" in _live_rows(audit)[-1][3]


def test_bad_offers_unknown_cameras_and_tiers_are_clear_errors(tmp_path: Path) -> None:
    views, _peers, _source, audit = _kiosk(tmp_path)

    async def scenario() -> None:
        offer = await _Browser().offer()
        with pytest.raises(UnknownCameraError):
            await views.open(offer, viewer="p", camera_id="nowhere", tier="low")
        with pytest.raises(Exception) as tier:
            await views.open(offer, viewer="p", camera_id="square", tier="ultra")
        assert getattr(tier.value, "message", "") == "live.tier_unknown"
        for bad in ("", "hello", "v=0\r\nno media here", "v=0\r\nm=video 9 x\r\n" * 3):
            with pytest.raises(OfferError):
                await views.open(Offer(sdp=bad), viewer="p", camera_id="square", tier="low")
        with pytest.raises(OfferError):
            await views.open(
                Offer(sdp=offer.sdp, type="answer"), viewer="p", camera_id="square", tier="low"
            )
        assert views.viewers() == 0

    _run(scenario)
    assert _live_rows(audit) == [], "nothing started, nothing audited"


def test_mdns_candidates_are_dropped_from_offers() -> None:
    sdp = (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        "a=candidate:1 1 udp 2122260223 0b7c1a2e-1.local 54321 typ host generation 0\r\n"
        "a=candidate:2 1 udp 2122260223 192.0.2.4 54322 typ host generation 0\r\n"
        "a=end-of-candidates\r\n"
    )
    cleaned = without_mdns_candidates(sdp)
    assert ".local" not in cleaned
    assert "192.0.2.4 54322" in cleaned and "a=end-of-candidates" in cleaned


def test_an_mjpeg_view_counts_and_is_audited(tmp_path: Path) -> None:
    views, _peers, _source, audit = _kiosk(tmp_path, max_viewers_per_camera=1)

    async def scenario() -> None:
        async with views.stream(viewer="li.police", camera_id="square", tier="low") as stills:
            first = await stills.__anext__()
            assert first.startswith(b"\xff\xd8")
            with pytest.raises(PeerBusyError):
                await views.open(
                    await _Browser().offer(), viewer="x", camera_id="square", tier="low"
                )
        assert views.viewers() == 0

    _run(scenario)
    rows = _live_rows(audit)
    assert [row[1] for row in rows] == ["camera.live", "camera.live_end"]
    assert rows[0][3].endswith("mjpeg")
