"""Family calls through real aiortc peers on loopback: two in-process aiortc connections play the
kiosk's browser and the phone's. Media relayed both ways (each side gets the other's picture and
sound), every way a call ends, the records, the audit trail and the events."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from agent.accounts import AccountStore, Role
from agent.audit import AuditLog
from agent.config import RtcConfig
from agent.rtc.calls import (
    FAMILY,
    KIOSK,
    MAX_LONG_SIDE,
    MAX_SHORT_SIDE,
    QUEUE,
    STREAMS_PER_AUDIENCE,
    CallBusyError,
    CallEvent,
    CallNotFoundError,
    CallService,
    CallState,
    CallStateError,
    EndReason,
    NotYourCallError,
    audience_of,
    fit_video,
)
from agent.rtc.peers import Offer, OfferError, PeerSessions
from agent.store.database import Database
from tests.fixtures.browser import FAST_HASHER, PASSWORD
from tests.fixtures.loops import run_in_own_loop

FAMILY_USER = "chen.family"
PHONE = audience_of(FAMILY, FAMILY_USER)
# Each side paints its picture one colour, so a side can tell whose picture it receives.
KIOSK_GREY, PHONE_GREY = 60, 200


class _ColourTrack(MediaStreamTrack):
    """A camera: 320x240 frames of one grey level at 15 fps."""

    kind = "video"

    def __init__(self, level: int, size: tuple[int, int] = (320, 240)) -> None:
        super().__init__()
        self._image = np.full((size[1], size[0], 3), level, np.uint8)
        self._pts = 0

    async def recv(self) -> VideoFrame:
        await asyncio.sleep(1 / 15)
        frame = VideoFrame.from_ndarray(self._image, format="bgr24")
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 90000)
        self._pts += 6000
        return frame


class _ToneTrack(MediaStreamTrack):
    """A microphone: a 440 Hz tone in 20 ms frames."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0

    async def recv(self) -> AudioFrame:
        await asyncio.sleep(0.02)
        t = (np.arange(960) + self._samples) / 48000
        tone = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, 48000)
        self._samples += 960
        return frame


class _Browser:
    """One side's page: sends a picture and a tone, counts what it gets back."""

    def __init__(self, grey: int, size: tuple[int, int] = (320, 240)) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTrack(_ToneTrack())
        self.pc.addTrack(_ColourTrack(grey, size))
        self.video_frames = 0
        self.audio_frames = 0
        self.loudest = 0
        self.greys: list[float] = []
        self.sizes: set[tuple[int, int]] = set()
        self._pulls: list[asyncio.Future[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        async def pull() -> None:
            while True:
                try:
                    frame = await track.recv()
                except Exception:  # noqa: BLE001 - the track ended
                    return
                if isinstance(frame, VideoFrame):
                    self.video_frames += 1
                    self.sizes.add((frame.width, frame.height))
                    self.greys.append(float(frame.to_ndarray(format="gray").mean()))
                else:
                    self.audio_frames += 1
                    self.loudest = max(self.loudest, int(np.abs(frame.to_ndarray()).max()))

        self._pulls.append(asyncio.ensure_future(pull()))

    async def offer(self) -> Offer:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return Offer(sdp=self.pc.localDescription.sdp)

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        await self.pc.close()
        for pull in self._pulls:
            pull.cancel()


async def _until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class _Kiosk:
    def __init__(self, tmp_path: Path, **rtc: Any) -> None:
        self.config = RtcConfig(
            connect_timeout_seconds=3, silence_timeout_seconds=3, ring_seconds=5, **rtc
        )
        self.database = Database(tmp_path / "kiosk.sqlite3")
        self.audit = AuditLog(self.database)
        self.accounts = AccountStore(self.database, hasher=FAST_HASHER)
        for name in (FAMILY_USER, "lin.family"):
            self.accounts.create_user(name, Role.FAMILY.value, PASSWORD)
        self.peers = PeerSessions(self.config)
        self.calls = CallService(self.peers, self.database, self.audit, self.config)
        _OPEN_KIOSKS.append(self)

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (e.actor, e.action, e.subject, e.detail)
            for e in reversed(self.audit.entries(limit=100))
            if e.action.startswith("call.")
        ]


async def _collect(calls: CallService, audience: str, into: list[CallEvent]) -> None:
    async with calls.subscribe(audience) as subscription:
        while True:
            event = await subscription.next(1.0)
            if event is not None:
                into.append(event)
            elif subscription.closed:
                return


_OPEN_KIOSKS: list[_Kiosk] = []


def _run(factory: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        try:
            await factory()
        finally:
            # As the agent does at stop: nothing a test left open outlives its loop.
            while _OPEN_KIOSKS:
                kiosk = _OPEN_KIOSKS.pop()
                await kiosk.calls.close()
                await kiosk.peers.close_all()

    run_in_own_loop(main)


async def _connected_call(kiosk: _Kiosk, *, caller: str) -> tuple[str, _Browser, _Browser]:
    """A call placed by ``caller``, answered, both sides' media flowing."""
    call = await kiosk.calls.start(
        caller=caller, household_id=1, household_name="陈家", family_user=FAMILY_USER
    )
    kiosk_page, phone = _Browser(KIOSK_GREY), _Browser(PHONE_GREY)
    callee, caller_page = (phone, kiosk_page) if caller == KIOSK else (kiosk_page, phone)
    callee_side = FAMILY if caller == KIOSK else KIOSK
    answer = await kiosk.calls.answer(
        call.id,
        side=callee_side,
        username=FAMILY_USER if callee_side == FAMILY else None,
        offer=await callee.offer(),
    )
    await callee.accept(answer.sdp)
    joined = await kiosk.calls.join(
        call.id,
        side=caller,
        username=FAMILY_USER if caller == FAMILY else None,
        offer=await caller_page.offer(),
    )
    await caller_page.accept(joined.sdp)
    await _until(
        lambda: all(b.video_frames >= 10 and b.audio_frames >= 25 for b in (kiosk_page, phone)),
        "video and audio on both sides",
    )
    return call.id, kiosk_page, phone


@pytest.mark.parametrize("caller", [FAMILY, KIOSK])
def test_each_side_gets_the_others_picture_and_sound_until_one_hangs_up(
    tmp_path: Path, caller: str
) -> None:
    kiosk = _Kiosk(tmp_path)
    kiosk_events: list[CallEvent] = []
    phone_events: list[CallEvent] = []

    async def scenario() -> None:
        listeners = [
            asyncio.ensure_future(_collect(kiosk.calls, KIOSK, kiosk_events)),
            asyncio.ensure_future(_collect(kiosk.calls, PHONE, phone_events)),
        ]
        await asyncio.sleep(0.05)
        call_id, kiosk_page, phone = await _connected_call(kiosk, caller=caller)
        assert len(kiosk.peers.peers("call")) == 2
        # Each side sees the other's grey, never its own.
        assert abs(np.median(kiosk_page.greys[-5:]) - PHONE_GREY) < 20
        assert abs(np.median(phone.greys[-5:]) - KIOSK_GREY) < 20
        assert kiosk_page.loudest > 1000 and phone.loudest > 1000, "the tone came through"
        # The callee hangs up: the caller's connection is closed by the agent.
        hanging = FAMILY if caller == KIOSK else KIOSK
        await kiosk.calls.hangup(
            call_id, side=hanging, username=FAMILY_USER if hanging == FAMILY else None
        )
        assert kiosk.peers.peers() == []
        caller_pc = kiosk_page.pc if caller == KIOSK else phone.pc
        await _until(lambda: caller_pc.connectionState == "closed", "the caller's peer closed")
        assert kiosk.calls.live() == []
        await kiosk_page.close()
        await phone.close()
        await asyncio.sleep(0.1)
        await kiosk.calls.close()
        await asyncio.gather(*listeners)

    _run(scenario)
    for events in (kiosk_events, phone_events):
        assert [e.name for e in events] == ["ringing", "answered", "ended"]
        assert events[-1].call.reason is EndReason.HANGUP
    rows = kiosk.rows()
    assert [row[1] for row in rows] == ["call.start", "call.answer", "call.end"]
    caller_actor = KIOSK if caller == KIOSK else FAMILY_USER
    callee_actor = FAMILY_USER if caller == KIOSK else KIOSK
    assert rows[0][0] == caller_actor and rows[1][0] == callee_actor
    assert rows[2][0] == callee_actor and "reason=hangup" in rows[2][3]
    assert all(row[2] == rows[0][2] for row in rows), "one call, one subject"


async def _ended_record(kiosk: _Kiosk, call_id: str) -> Any:
    """The call's record once its end is written (a call reads as ended a moment before)."""
    for _ in range(100):
        record = await kiosk.calls.get(call_id)
        if record.state is CallState.ENDED:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"call {call_id} never recorded as ended")


def test_a_browser_that_goes_away_ends_the_call_for_both(tmp_path: Path) -> None:
    kiosk = _Kiosk(tmp_path)

    async def scenario() -> None:
        call_id, kiosk_page, phone = await _connected_call(kiosk, caller=FAMILY)
        await phone.close()  # the phone's page is closed without a hang-up
        await _until(lambda: kiosk.calls.live() == [], "the call to end")
        await _until(lambda: kiosk_page.pc.connectionState == "closed", "the kiosk's peer")
        assert kiosk.peers.peers() == []
        ended = await _ended_record(kiosk, call_id)
        assert ended.state is CallState.ENDED
        assert ended.reason in (EndReason.HANGUP, EndReason.FAILED)
        await kiosk_page.close()

    _run(scenario)


def test_frames_larger_than_the_cap_are_scaled_down_before_relaying(tmp_path: Path) -> None:
    kiosk = _Kiosk(tmp_path)

    async def scenario() -> None:
        call = await kiosk.calls.start(
            caller=FAMILY, household_id=1, household_name="陈家", family_user=FAMILY_USER
        )
        kiosk_page, phone = _Browser(KIOSK_GREY), _Browser(PHONE_GREY, size=(1280, 720))
        answer = await kiosk.calls.answer(
            call.id, side=KIOSK, username=None, offer=await kiosk_page.offer()
        )
        await kiosk_page.accept(answer.sdp)
        joined = await kiosk.calls.join(
            call.id, side=FAMILY, username=FAMILY_USER, offer=await phone.offer()
        )
        await phone.accept(joined.sdp)
        await _until(lambda: kiosk_page.video_frames >= 10, "the phone's picture at the kiosk")
        await kiosk.calls.close()
        await kiosk_page.close()
        await phone.close()
        assert kiosk_page.sizes and all(w <= MAX_LONG_SIDE for w, _ in kiosk_page.sizes)

    _run(scenario)


def test_fit_video_keeps_orientation_and_converts_to_yuv420p() -> None:
    portrait = VideoFrame.from_ndarray(np.zeros((1280, 720, 3), np.uint8), format="bgr24")
    portrait.pts = 42
    fitted = fit_video(portrait)
    assert fitted.height == MAX_LONG_SIDE and fitted.width <= MAX_SHORT_SIDE
    assert abs(fitted.width / fitted.height - 720 / 1280) < 0.02, "the shape is kept"
    assert fitted.format.name == "yuv420p" and fitted.pts == 42
    small = VideoFrame.from_ndarray(np.zeros((240, 320, 3), np.uint8), format="bgr24")
    assert fit_video(small).format.name == "yuv420p"
    ready = small.reformat(format="yuv420p")
    assert fit_video(ready) is ready, "a frame that fits is not converted again"


def test_an_unanswered_call_is_missed_and_listed_for_its_callee_until_seen(
    tmp_path: Path,
) -> None:
    kiosk = _Kiosk(tmp_path)
    phone_events: list[CallEvent] = []

    async def scenario() -> None:
        listener = asyncio.ensure_future(_collect(kiosk.calls, PHONE, phone_events))
        call = await kiosk.calls.start(
            caller=FAMILY, household_id=1, household_name="陈家", family_user=FAMILY_USER
        )
        await _until(lambda: kiosk.calls.live() == [], "the ring time to pass", timeout=15)
        # The call reads as ended at once; its record is written just after.
        missed = await kiosk.calls.missed(KIOSK)
        for _ in range(100):
            if missed:
                break
            await asyncio.sleep(0.05)
            missed = await kiosk.calls.missed(KIOSK)
        assert [c.id for c in missed] == [call.id]
        assert missed[0].reason is EndReason.MISSED and missed[0].household_name == "陈家"
        assert await kiosk.calls.missed(PHONE) == [], "the caller missed nothing"
        assert await kiosk.calls.mark_seen(KIOSK) == 1
        assert await kiosk.calls.missed(KIOSK) == []
        await kiosk.calls.close()
        await listener

    _run(scenario)
    assert [e.name for e in phone_events] == ["ringing", "ended"]
    assert phone_events[-1].call.reason is EndReason.MISSED
    assert kiosk.rows()[-1][:2] == ("system", "call.end")
    assert "reason=missed" in kiosk.rows()[-1][3]


def test_a_declined_call_ends_for_the_caller_and_is_not_missed(tmp_path: Path) -> None:
    kiosk = _Kiosk(tmp_path)
    kiosk_events: list[CallEvent] = []

    async def scenario() -> None:
        listener = asyncio.ensure_future(_collect(kiosk.calls, KIOSK, kiosk_events))
        await asyncio.sleep(0.05)
        call = await kiosk.calls.start(
            caller=KIOSK, household_id=1, household_name="陈家", family_user=FAMILY_USER
        )
        with pytest.raises(NotYourCallError):
            await kiosk.calls.decline(call.id, side=KIOSK, username=None)  # its own call
        with pytest.raises(NotYourCallError):
            await kiosk.calls.decline(call.id, side=FAMILY, username="lin.family")
        await kiosk.calls.decline(call.id, side=FAMILY, username=FAMILY_USER)
        assert await kiosk.calls.missed(PHONE) == []
        with pytest.raises(CallNotFoundError):
            await kiosk.calls.answer(
                call.id, side=FAMILY, username=FAMILY_USER, offer=Offer(sdp="v=0")
            )
        await kiosk.calls.close()
        await listener

    _run(scenario)
    assert [e.name for e in kiosk_events] == ["ringing", "ended"]
    assert kiosk_events[-1].call.reason is EndReason.DECLINED
    assert kiosk.rows()[-1][0] == FAMILY_USER


def test_a_caller_who_gives_up_leaves_a_missed_call(tmp_path: Path) -> None:
    kiosk = _Kiosk(tmp_path)

    async def scenario() -> None:
        call = await kiosk.calls.start(
            caller=KIOSK, household_id=1, household_name="陈家", family_user=FAMILY_USER
        )
        await kiosk.calls.hangup(call.id, side=KIOSK, username=None)
        assert [c.id for c in await kiosk.calls.missed(PHONE)] == [call.id]
        assert await kiosk.calls.missed(KIOSK) == []
        await kiosk.calls.close()

    _run(scenario)


def test_a_second_call_is_busy_and_only_the_callee_answers(tmp_path: Path) -> None:
    kiosk = _Kiosk(tmp_path, max_calls=2)

    async def scenario() -> None:
        call = await kiosk.calls.start(
            caller=FAMILY, household_id=1, household_name="陈家", family_user=FAMILY_USER
        )
        # The kiosk screen takes one call at a time, whatever max_calls says.
        with pytest.raises(CallBusyError):
            await kiosk.calls.start(
                caller=FAMILY, household_id=2, household_name="林家", family_user="lin.family"
            )
        with pytest.raises(CallBusyError):
            await kiosk.calls.start(
                caller=KIOSK, household_id=1, household_name="陈家", family_user=FAMILY_USER
            )
        page = _Browser(KIOSK_GREY)
        offer = await page.offer()
        with pytest.raises(NotYourCallError):  # the caller cannot answer its own call
            await kiosk.calls.answer(call.id, side=FAMILY, username=FAMILY_USER, offer=offer)
        with pytest.raises(CallStateError):  # nothing to join before an answer
            await kiosk.calls.join(call.id, side=FAMILY, username=FAMILY_USER, offer=offer)
        three_videos = offer.sdp + offer.sdp[offer.sdp.index("m=video") :] * 2
        with pytest.raises(OfferError):
            await kiosk.calls.answer(call.id, side=KIOSK, username=None, offer=Offer(three_videos))
        assert kiosk.peers.peers() == []
        await page.close()
        await kiosk.calls.close()

    _run(scenario)


def test_no_calls_when_max_calls_is_zero(tmp_path: Path) -> None:
    kiosk = _Kiosk(tmp_path, max_calls=0)

    async def scenario() -> None:
        with pytest.raises(CallBusyError):
            await kiosk.calls.start(
                caller=FAMILY, household_id=1, household_name="陈家", family_user=FAMILY_USER
            )

    _run(scenario)


def test_a_caller_that_never_brings_its_media_fails_the_call(tmp_path: Path) -> None:
    kiosk = _Kiosk(tmp_path)

    async def scenario() -> None:
        call = await kiosk.calls.start(
            caller=FAMILY, household_id=1, household_name="陈家", family_user=FAMILY_USER
        )
        page = _Browser(KIOSK_GREY)
        answer = await kiosk.calls.answer(
            call.id, side=KIOSK, username=None, offer=await page.offer()
        )
        await page.accept(answer.sdp)
        await _until(lambda: kiosk.calls.live() == [], "the call to fail", timeout=15)
        assert (await _ended_record(kiosk, call.id)).reason is EndReason.FAILED
        assert kiosk.peers.peers() == []
        await page.close()

    _run(scenario)


def test_event_streams_are_bounded(tmp_path: Path) -> None:
    kiosk = _Kiosk(tmp_path)

    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            streams = [
                await stack.enter_async_context(kiosk.calls.subscribe(KIOSK))
                for _ in range(STREAMS_PER_AUDIENCE + 1)
            ]
            assert streams[0].closed, "the oldest stream of an audience makes room"
            assert not any(s.closed for s in streams[1:])
            assert kiosk.calls.subscribers() == STREAMS_PER_AUDIENCE
            # A stream nobody reads is dropped once QUEUE events wait in it.
            for _ in range(QUEUE // 2 + 1):
                call = await kiosk.calls.start(
                    caller=FAMILY, household_id=1, household_name="陈家", family_user=FAMILY_USER
                )
                await kiosk.calls.hangup(call.id, side=FAMILY, username=FAMILY_USER)
            assert all(s.closed for s in streams[1:])
            assert kiosk.calls.subscribers() == 0
        await kiosk.calls.close()

    _run(scenario)


def test_calls_left_open_by_a_crash_are_marked_failed(tmp_path: Path) -> None:
    kiosk = _Kiosk(tmp_path)

    async def scenario() -> None:
        await kiosk.calls.start(
            caller=FAMILY, household_id=1, household_name="陈家", family_user=FAMILY_USER
        )

    _run(scenario)  # the loop ends with the call ringing: nothing recorded its end
    again = CallService(kiosk.peers, kiosk.database, kiosk.audit, kiosk.config)

    async def check() -> None:
        missed = await again.missed(KIOSK)
        assert len(missed) == 1 and missed[0].reason is EndReason.FAILED

    _run(check)


def test_closing_ends_calls_and_streams_after_telling_both_sides(tmp_path: Path) -> None:
    kiosk = _Kiosk(tmp_path)
    phone_events: list[CallEvent] = []

    async def scenario() -> None:
        listener = asyncio.ensure_future(_collect(kiosk.calls, PHONE, phone_events))
        await asyncio.sleep(0.05)
        await kiosk.calls.start(
            caller=KIOSK, household_id=1, household_name="陈家", family_user=FAMILY_USER
        )
        await kiosk.calls.close()  # the agent stops
        await asyncio.wait_for(listener, 5)
        assert kiosk.calls.subscribers() == 0
        with pytest.raises(CallBusyError):
            await kiosk.calls.start(
                caller=KIOSK, household_id=1, household_name="陈家", family_user=FAMILY_USER
            )

    _run(scenario)
    assert [e.name for e in phone_events] == ["ringing", "ended"]
    assert phone_events[-1].call.reason is EndReason.FAILED


class _Camera20(MediaStreamTrack):
    """A remote track that delivers ``count`` frames of a 20 fps camera, then ends."""

    kind = "video"

    def __init__(self, count: int) -> None:
        super().__init__()
        self._left = count
        self._pts = 0

    async def recv(self) -> VideoFrame:
        if self._left == 0:
            raise MediaStreamError
        self._left -= 1
        frame = VideoFrame.from_ndarray(np.zeros((240, 320, 3), np.uint8), format="bgr24")
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 90000)
        self._pts += 4500  # 50 ms
        return frame


def test_a_20_fps_picture_is_relayed_at_15_fps_not_10() -> None:
    from agent.rtc.calls import MAX_FPS, _Feed, _pump

    kept: list[VideoFrame] = []

    class _Counting(_Feed):
        def put(self, frame: Any) -> None:
            kept.append(frame)

    async def scenario() -> None:
        await _pump(_Camera20(200), _Counting(1))  # ten seconds of pictures

    _run(scenario)
    assert MAX_FPS * 10 - 3 <= len(kept) <= MAX_FPS * 10 + 1
    assert all(frame.format.name == "yuv420p" for frame in kept)


def test_the_answer_asks_for_sound_in_60_ms_packets() -> None:
    from agent.rtc.calls import with_audio_ptime

    sdp = "\r\n".join(
        ["v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 96", "a=rtpmap:96 opus/48000/2",
         "m=video 9 UDP/TLS/RTP/SAVPF 97", "a=rtpmap:97 VP8/90000", ""]
    )  # fmt: skip
    answered = with_audio_ptime(sdp, 60).split("\r\n")
    audio, video = (
        answered.index("m=audio 9 UDP/TLS/RTP/SAVPF 96"),
        answered.index("m=video 9 UDP/TLS/RTP/SAVPF 97"),
    )
    assert answered[audio:video].count("a=ptime:60") == 1
    assert "a=ptime:60" not in answered[video:]
    assert answered[-1] == "", "the description still ends with its line break"
    # Audio last, or a ptime already there: one line, no second.
    last = "\r\n".join(["v=0", "m=video 9 X 97", "m=audio 9 X 96", "a=rtpmap:96 opus/48000/2", ""])
    assert with_audio_ptime(last, 60).split("\r\n")[-2] == "a=ptime:60"
    once = with_audio_ptime(with_audio_ptime(sdp, 60), 60)
    assert once.count("a=ptime:") == 1
