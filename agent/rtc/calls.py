"""Family video calls (亲情通 视频通话) between the kiosk's screen and a family member's phone.

Either side may call: the kiosk calls a member of a household, or a member calls the kiosk for
one of their households. A call rings (``ringing``) until the other side answers (``active``),
declines, the caller gives up, or ``rtc.ring_seconds`` pass (``missed``); then it ends
(``ended``) with one reason: ``hangup``, ``declined``, ``missed``, ``failed`` or
``time_limit``.

The agent is the hub of the media: each browser has one peer connection, to the agent only
(agent.rtc.peers, kind ``call``), sending and receiving audio and video. What the agent receives
from one side it sends to the other: a *pump* takes the decoded frames of each remote track into
a bounded feed (the latest video frame, the last few audio frames), and the other side's peer
sends from that feed through its own encoder. So a call costs two video decodes, two video
encodes (VP8, at most 480x360 and 15 fps, whatever a browser sends) and the same for Opus
(the agent's own Opus encoder, at 32 kbit/s, in 60 ms packets both ways).
The callee's peer is made when they answer; the caller's only once the callee's exists (the
caller's page learns of the answer and then sends its offer), so no media flows while ringing.

Pages learn of calls through subscriptions (server-sent events in the web UI): each audience —
the kiosk screen, or one family account — gets ``ringing``, ``answered`` and ``ended`` for the
calls it is part of. Queues are bounded; a subscriber that falls behind is dropped (its page
reconnects and reads the state afresh).

One record per call is kept in SQLite (no media, no content); calls nobody answered are listed
for their callee until seen. Start, answer and end are audited with who, the household and the
length.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from typing import Any

import av
import sqlite_utils
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from agent.audit import AuditLog
from agent.config import RtcConfig
from agent.errors import KioskError, ValidationError
from agent.rtc.peers import Answer, Offer, OfferError, PeerInfo, PeerSessions
from agent.store.database import Database, Migration

log = logging.getLogger(__name__)

AREA = "calls"
KIND = "call"
KIOSK = "kiosk"  # the kiosk screen's side, and its name in audit entries
FAMILY = "family"
SIDES = (KIOSK, FAMILY)
# The agent re-encodes every frame it relays: it never sends more than this, whatever a browser
# sends it (a phone's portrait picture keeps its orientation).
MAX_LONG_SIDE = 480
MAX_SHORT_SIDE = 360
MAX_FPS = 15.0
# Relayed sound: Opus at a bitrate enough for speech.
AUDIO_RATE = 48000
AUDIO_BITRATE = 32000
# 60 ms a packet: a third of the packets of the usual 20 ms, and each packet costs the event
# loop RTP, SRTP and RTCP work in Python (bench/rtc_call.py); 40 ms more delay is not heard.
_OPUS_MS = 60
_OPUS_FRAME = AUDIO_RATE * _OPUS_MS // 1000
# VP8 first: aiortc encodes it in about half the CPU time of its libx264 settings (bench).
VIDEO_CODECS = ("video/VP8", "video/H264")
# Frames waiting for the other side's encoder: video keeps only the newest, audio 100 ms.
_VIDEO_DEPTH = 1
_AUDIO_DEPTH = 5
# Missed calls listed for a callee: the most recent, of the last 30 days.
MISSED_LIMIT = 20
MISSED_DAYS = 30.0
# Call records are kept this long (and at most this many), then deleted as new calls come.
RECORD_DAYS = 90.0
MAX_RECORDS = 5000
# Event subscriptions: per audience (a phone reloading leaves streams behind until the server
# notices) and in all; each holds at most QUEUE events.
STREAMS_PER_AUDIENCE = 4
MAX_STREAMS = 64
QUEUE = 16


class CallState(StrEnum):
    RINGING = "ringing"
    ACTIVE = "active"
    ENDED = "ended"


class EndReason(StrEnum):
    HANGUP = "hangup"
    DECLINED = "declined"
    MISSED = "missed"
    FAILED = "failed"
    TIME_LIMIT = "time_limit"


class CallBusyError(KioskError):
    """No room for another call (``scope``: ``all`` or ``user``): the caller is told "busy"."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"no room for another call ({scope})")


class CallNotFoundError(KioskError):
    """No such call (or it ended long ago)."""

    def __init__(self) -> None:
        super().__init__("no such call")


class NotYourCallError(KioskError):
    """The call exists but this side or account is not the one that may do this to it."""

    def __init__(self) -> None:
        super().__init__("not a party of this call")


class CallStateError(ValidationError):
    """The call is not in a state that allows this (answering an ended call, say)."""

    def __init__(self, code: str) -> None:
        super().__init__("call", code)


class SubscribersFullError(KioskError):
    """Too many event streams open at once."""


def audience_of(side: str, username: str | None = None) -> str:
    """The audience name of a party: ``kiosk`` or ``family:<username>``."""
    if side == KIOSK:
        return KIOSK
    if side == FAMILY and username:
        return f"{FAMILY}:{username}"
    raise ValueError(f"no audience for side {side!r}")


@dataclass(frozen=True)
class CallInfo:
    """A call as pages and the database see it."""

    id: str
    household_id: int
    household_name: str
    caller: str  # KIOSK or FAMILY
    family_user: str
    state: CallState
    created_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    reason: EndReason | None = None

    @property
    def callee(self) -> str:
        return FAMILY if self.caller == KIOSK else KIOSK

    @property
    def audiences(self) -> tuple[str, str]:
        return (KIOSK, audience_of(FAMILY, self.family_user))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": str(self.state),
            "caller": self.caller,
            "callee": self.callee,
            "household": {"id": self.household_id, "name": self.household_name},
            "family_user": self.family_user,
            "created_at": self.created_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "reason": str(self.reason) if self.reason else None,
        }


@dataclass(frozen=True)
class CallEvent:
    name: str  # "ringing", "answered", "ended"
    call: CallInfo


# -- media ---------------------------------------------------------------------------------------

Frame = av.VideoFrame | av.AudioFrame


class _Feed:
    """What one side sent, waiting for the other side's encoder: at most ``depth`` frames, the
    oldest dropped, so a slow encoder or a side not connected yet never grows memory."""

    def __init__(self, depth: int) -> None:
        self._frames: deque[Frame] = deque(maxlen=depth)
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, frame: Frame) -> None:
        if not self._closed:
            self._frames.append(frame)
            self._ready.set()

    async def get(self) -> Frame | None:
        while not self._frames:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def close(self) -> None:
        self._closed = True
        self._frames.clear()
        self._ready.set()


def with_audio_ptime(sdp: str, ptime_ms: int) -> str:
    """The answer with ``a=ptime`` in its audio section (where there is none yet)."""
    lines = sdp.split("\r\n")
    result: list[str] = []
    in_audio = False
    added = False
    for line in lines:
        if line.startswith("m="):
            if in_audio and not added:
                result.append(f"a=ptime:{ptime_ms}")
            in_audio = line.startswith("m=audio")
            added = False
        elif in_audio and line.startswith("a=ptime:"):
            added = True
        result.append(line)
    if in_audio and not added:
        # The audio section is the last one: before the closing empty line.
        index = len(result) - 1 if result and result[-1] == "" else len(result)
        result.insert(index, f"a=ptime:{ptime_ms}")
    return "\r\n".join(result)


class OpusPackets:
    """The agent's own Opus encoder for relayed sound: speech at AUDIO_BITRATE.

    The track hands aiortc encoded packets, which it only packs: given decoded frames, aiortc
    would also measure each frame's level for an RTP header extension in a pure Python loop,
    2.5 ms per 20 ms frame, a quarter of a core for the two directions of a call (bench). Its own
    encoder would also send 96 kbit/s, which a phone on 4G pays for. aiortc's Opus decoder gives
    20 ms of 48 kHz stereo, which is encoded as it comes; anything else is resampled first.
    """

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.bit_rate = AUDIO_BITRATE
        self._codec.format = "s16"
        self._codec.layout = "stereo"
        self._codec.sample_rate = AUDIO_RATE
        self._codec.time_base = Fraction(1, AUDIO_RATE)
        self._codec.options = {"application": "voip", "frame_duration": str(_OPUS_MS)}
        self._resampler: av.AudioResampler | None = None
        self._samples = 0

    def _frames(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        if (
            frame.format.name == "s16"
            and frame.layout.name == "stereo"
            and frame.sample_rate == AUDIO_RATE
            and frame.samples == _OPUS_FRAME
        ):
            return [frame]
        if self._resampler is None:
            self._resampler = av.AudioResampler(
                format="s16", layout="stereo", rate=AUDIO_RATE, frame_size=_OPUS_FRAME
            )
        return list(self._resampler.resample(frame))

    def encode(self, frame: av.AudioFrame) -> list[av.Packet[Any]]:
        # One timeline of our own: frames dropped on the way leave no gap to wait for.
        frame.pts = self._samples
        frame.time_base = Fraction(1, frame.sample_rate)
        self._samples += frame.samples
        packets: list[av.Packet[Any]] = []
        for ready in self._frames(frame):
            for packet in self._codec.encode(ready):
                if packet.time_base is None:
                    packet.time_base = Fraction(1, AUDIO_RATE)
                packets.append(packet)
        return packets


class RelayTrack(MediaStreamTrack):
    """A track of one side's peer that sends what the other side sent (from its feed); until
    the other side is connected it sends nothing. Sound leaves as Opus packets of our own
    encoder (OpusPackets), pictures as frames for aiortc's encoder."""

    def __init__(self, kind: str, feed: _Feed) -> None:
        super().__init__()
        self.kind = kind
        self._feed = feed
        self._opus = OpusPackets() if kind == "audio" else None
        self._packets: deque[av.Packet[Any]] = deque()

    async def recv(self) -> Frame | av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        while not self._packets:
            frame = await self._feed.get()
            if frame is None:
                self.stop()
                raise MediaStreamError
            if self._opus is None or not isinstance(frame, av.AudioFrame):
                return frame
            self._packets.extend(self._opus.encode(frame))
        return self._packets.popleft()


def fit_video(frame: av.VideoFrame) -> av.VideoFrame:
    """The frame in yuv420p within MAX_LONG_SIDE x MAX_SHORT_SIDE (either orientation).

    The encoder gets its own converted frame: one decoded frame in another format handed to an
    encoder is where aiortc's shared colour converter races.
    """
    width, height = frame.width, frame.height
    long_side, short_side = max(width, height), min(width, height)
    scale = min(1.0, MAX_LONG_SIDE / long_side, MAX_SHORT_SIDE / short_side)
    if scale >= 1.0 and frame.format.name == "yuv420p":
        return frame
    new_width = max(2, int(width * scale) // 2 * 2)
    new_height = max(2, int(height * scale) // 2 * 2)
    fitted = frame.reformat(width=new_width, height=new_height, format="yuv420p")
    fitted.pts = frame.pts
    if frame.time_base is not None:
        fitted.time_base = frame.time_base
    return fitted


async def _pump(track: MediaStreamTrack, feed: _Feed) -> None:
    """Take a remote track's decoded frames into ``feed`` (video capped at MAX_FPS and in
    size) for as long as the track lives. Consuming every frame is what keeps aiortc's own
    queue of the track from growing."""
    interval = 1.0 / MAX_FPS
    due: float | None = None
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if isinstance(frame, av.VideoFrame):
            if frame.pts is not None and frame.time_base is not None:
                at = float(frame.pts * Fraction(frame.time_base))
                # Frames are kept on a grid of the interval, a quarter early still counting: a
                # 20 fps camera gives 15, not every other frame.
                if due is not None and at < due - interval / 4:
                    continue
                due = at + interval if due is None or at > due + interval else due + interval
            frame = fit_video(frame)
        if isinstance(frame, av.VideoFrame | av.AudioFrame):
            feed.put(frame)


def prefer_codecs(pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
    """Send and receive ``track``'s kind on one sendrecv transceiver, video as VP8 (else H.264)."""
    transceiver = pc.addTransceiver(track, direction="sendrecv")
    if track.kind == "video":
        codecs = RTCRtpSender.getCapabilities("video").codecs
        ordered = [
            codec
            for mime in VIDEO_CODECS
            for codec in codecs
            if codec.mimeType.lower() == mime.lower()
        ]
        # RTX goes with the video codecs it repairs.
        ordered += [codec for codec in codecs if codec.mimeType.lower() == "video/rtx"]
        transceiver.setCodecPreferences(ordered)


def check_call_offer(offer: Offer) -> None:
    """A call offer has at most one audio and one video section: each is a decoder here."""
    sections = [line.split()[0] for line in offer.sdp.splitlines() if line.startswith("m=")]
    if sections.count("m=audio") > 1 or sections.count("m=video") > 1:
        raise OfferError("a call sends at most one audio and one video track")


# -- records -------------------------------------------------------------------------------------


def _create_tables(db: sqlite_utils.Database) -> None:
    # A deleted account takes its call records with it.
    db.execute(
        "CREATE TABLE calls ("
        " id TEXT PRIMARY KEY, household_id INTEGER NOT NULL, household_name TEXT NOT NULL,"
        " caller TEXT NOT NULL CHECK (caller IN ('kiosk', 'family')),"
        " family_user TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,"
        " created_at REAL NOT NULL, answered_at REAL, ended_at REAL, end_reason TEXT,"
        " seen_at REAL)"
    )
    db.execute("CREATE INDEX calls_missed ON calls (caller, family_user, created_at)")
    db.execute("CREATE INDEX calls_age ON calls (created_at)")


MIGRATIONS = (Migration(1, "family call records", _create_tables),)

# Missed by the callee: ended without an answer and not declined, not seen yet, recent. The
# callee is the kiosk for calls from a family account ('' matches every account).
_MISSED = (
    "ended_at IS NOT NULL AND answered_at IS NULL AND end_reason != 'declined'"
    " AND seen_at IS NULL AND caller = :caller AND (family_user = :user OR :user = '')"
    " AND created_at >= :since"
)


def _from_row(row: Sequence[Any]) -> CallInfo:
    return CallInfo(
        id=str(row[0]),
        household_id=int(row[1]),
        household_name=str(row[2]),
        caller=str(row[3]),
        family_user=str(row[4]),
        state=CallState.ENDED if row[7] is not None else CallState.RINGING,
        created_at=float(row[5]),
        answered_at=None if row[6] is None else float(row[6]),
        ended_at=None if row[7] is None else float(row[7]),
        reason=None if row[8] is None else EndReason(row[8]),
    )


_SELECT_MISSED = (
    "SELECT id, household_id, household_name, caller, family_user, created_at, answered_at,"  # noqa: S608 - constants
    " ended_at, end_reason FROM calls WHERE " + _MISSED + " ORDER BY created_at DESC LIMIT :limit"
)


class CallRecords:
    """The ``calls`` table: one row per call, written when it starts, is answered and ends."""

    def __init__(self, database: Database, audit: AuditLog) -> None:
        self._database = database
        self._audit = audit
        database.migrate(AREA, MIGRATIONS)

    def started(self, call: CallInfo, actor: str) -> None:
        with self._database.write() as db:
            db.execute(
                "DELETE FROM calls WHERE created_at < ? OR rowid IN (SELECT rowid FROM calls"
                " ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
                [call.created_at - RECORD_DAYS * 86400, MAX_RECORDS - 1],
            )
            db.execute(
                "INSERT INTO calls (id, household_id, household_name, caller, family_user,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    call.id,
                    call.household_id,
                    call.household_name,
                    call.caller,
                    call.family_user,
                    call.created_at,
                ],
            )
            target = f"user:{call.family_user}" if call.caller == KIOSK else f"{KIOSK}"
            self._audit.record(
                actor,
                "call.start",
                f"call:{call.id}",
                f"household:{call.household_id} to {target}",
                db=db,
            )

    def answered(self, call: CallInfo, actor: str) -> None:
        with self._database.write() as db:
            db.execute("UPDATE calls SET answered_at = ? WHERE id = ?", [call.answered_at, call.id])
            self._audit.record(
                actor, "call.answer", f"call:{call.id}", f"household:{call.household_id}", db=db
            )

    def ended(self, call: CallInfo, actor: str) -> None:
        talk = 0.0
        if call.answered_at is not None and call.ended_at is not None:
            talk = max(0.0, call.ended_at - call.answered_at)
        with self._database.write() as db:
            db.execute(
                "UPDATE calls SET ended_at = ?, end_reason = ? WHERE id = ?",
                [call.ended_at, str(call.reason), call.id],
            )
            self._audit.record(
                actor,
                "call.end",
                f"call:{call.id}",
                f"household:{call.household_id} reason={call.reason} talk_seconds={talk:.0f}",
                db=db,
            )

    def get(self, call_id: str) -> CallInfo | None:
        with self._database.read() as db:
            row = db.execute(
                "SELECT id, household_id, household_name, caller, family_user, created_at,"
                " answered_at, ended_at, end_reason FROM calls WHERE id = ?",
                [call_id],
            ).fetchone()
        return None if row is None else _from_row(row)

    @staticmethod
    def _missed_params(audience: str, now: float) -> dict[str, Any]:
        since = now - MISSED_DAYS * 86400
        if audience == KIOSK:
            return {"caller": FAMILY, "user": "", "since": since}
        return {"caller": KIOSK, "user": audience.removeprefix(f"{FAMILY}:"), "since": since}

    def missed(self, audience: str, now: float) -> list[CallInfo]:
        with self._database.read() as db:
            rows = db.execute(
                _SELECT_MISSED,
                {**self._missed_params(audience, now), "limit": MISSED_LIMIT},
            ).fetchall()
        return [_from_row(row) for row in rows]

    def mark_seen(self, audience: str, now: float) -> int:
        with self._database.write() as db:
            cursor = db.execute(
                "UPDATE calls SET seen_at = :now WHERE " + _MISSED,  # noqa: S608 - a constant
                {**self._missed_params(audience, now), "now": now},
            )
            return int(cursor.rowcount)

    def end_unfinished(self, now: float) -> int:
        """Calls a previous run left open (a crash) end as failed; returns how many."""
        with self._database.write() as db:
            cursor = db.execute(
                "UPDATE calls SET ended_at = ?, end_reason = 'failed' WHERE ended_at IS NULL",
                [now],
            )
            return int(cursor.rowcount)


# -- events --------------------------------------------------------------------------------------


class Subscription:
    """One open event stream of an audience; ``next`` gives the next event, or None when there
    is nothing to send (yet, or any more once ``closed``: closed by the service, replaced by a
    newer stream of its audience, or fallen QUEUE events behind)."""

    def __init__(self, audience: str) -> None:
        self.audience = audience
        self._events: deque[CallEvent] = deque()
        self._ready = asyncio.Event()
        self.closed = False

    def push(self, event: CallEvent) -> None:
        if self.closed:
            return
        if len(self._events) >= QUEUE:
            # A client this far behind reconnects and reads the state afresh.
            self._events.clear()
            self.close()
            return
        self._events.append(event)
        self._ready.set()

    def close(self) -> None:
        """No more events; those already queued are still given (the last ``ended``)."""
        self.closed = True
        self._ready.set()

    async def next(self, timeout: float) -> CallEvent | None:
        """The next event; None after ``timeout`` with nothing to send, or once closed and
        drained."""
        if not self._events and not self.closed:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        if self._events:
            return self._events.popleft()
        return None


# -- the service ---------------------------------------------------------------------------------


@dataclass
class _Call:
    info: CallInfo
    feeds: dict[tuple[str, str], _Feed] = field(
        default_factory=lambda: {
            (side, kind): _Feed(_VIDEO_DEPTH if kind == "video" else _AUDIO_DEPTH)
            for side in SIDES
            for kind in ("audio", "video")
        }
    )
    peers: dict[str, str] = field(default_factory=dict)  # side -> peer id
    pumps: set[asyncio.Task[None]] = field(default_factory=set)
    timer: asyncio.Task[None] | None = None
    ending: bool = False


_PEER_REASONS = {
    "time_limit": EndReason.TIME_LIMIT,
    "closed": EndReason.HANGUP,  # the browser closed its connection: it hung up
    "hangup": EndReason.HANGUP,
}


class CallService:
    """The calls of this kiosk: at most one at a time (every call has the kiosk screen as a
    party, and it takes one call at a time), and none when ``rtc.max_calls`` is 0."""

    def __init__(
        self,
        peers: PeerSessions,
        database: Database,
        audit: AuditLog,
        config: RtcConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._peers = peers
        self._records = CallRecords(database, audit)
        self._config = config
        self._clock = clock
        self._calls: dict[str, _Call] = {}
        # Ended calls whose end is not written yet: get() must not read the stale record.
        self._ending: dict[str, CallInfo] = {}
        self._subscribers: list[Subscription] = []
        self._closed = False
        unfinished = self._records.end_unfinished(clock())
        if unfinished:
            log.warning("%d call(s) left open by the last run marked failed", unfinished)

    @property
    def limit(self) -> int:
        return min(1, self._config.max_calls)

    # -- reading ------------------------------------------------------------------------------

    def live(self, audience: str | None = None) -> list[CallInfo]:
        """The calls ringing or active now (for ``audience``: those it is a party of)."""
        return [
            call.info
            for call in self._calls.values()
            if audience is None or audience in call.info.audiences
        ]

    def subscribers(self) -> int:
        return len(self._subscribers)

    def stream_room(self, audience: str) -> bool:
        """Whether a new event stream of ``audience`` would be taken (an audience's own oldest
        stream makes room for its new one)."""
        if self._closed:
            return False
        mine = sum(1 for s in self._subscribers if s.audience == audience)
        return mine >= STREAMS_PER_AUDIENCE or len(self._subscribers) < MAX_STREAMS

    async def get(self, call_id: str) -> CallInfo:
        call = self._calls.get(call_id)
        if call is not None:
            return call.info
        if call_id in self._ending:
            return self._ending[call_id]
        info = await asyncio.to_thread(self._records.get, call_id)
        if info is None:
            raise CallNotFoundError()
        return info

    async def missed(self, audience: str) -> list[CallInfo]:
        return await asyncio.to_thread(self._records.missed, audience, self._clock())

    async def mark_seen(self, audience: str) -> int:
        return await asyncio.to_thread(self._records.mark_seen, audience, self._clock())

    # -- placing, answering, ending -----------------------------------------------------------

    async def start(
        self, *, caller: str, household_id: int, household_name: str, family_user: str
    ) -> CallInfo:
        """Ring the other side. Raises CallBusyError when a call is on already."""
        if caller not in SIDES:
            raise ValueError(f"unknown side {caller!r}")
        if self._closed or len(self._calls) >= self.limit:
            raise CallBusyError("all")
        if any(call.info.family_user == family_user for call in self._calls.values()):
            raise CallBusyError("user")
        info = CallInfo(
            id=secrets.token_urlsafe(12),
            household_id=household_id,
            household_name=household_name,
            caller=caller,
            family_user=family_user,
            state=CallState.RINGING,
            created_at=self._clock(),
        )
        call = _Call(info)
        # Reserved before the first await: two callers cannot both take the last place.
        self._calls[info.id] = call
        actor = family_user if caller == FAMILY else KIOSK
        try:
            await asyncio.to_thread(self._records.started, info, actor)
        except BaseException:
            self._calls.pop(info.id, None)
            raise
        call.timer = asyncio.create_task(self._ring(call), name=f"call-ring-{info.id}")
        log.info("call %s: %s rings household %d", info.id, caller, household_id)
        self._publish(CallEvent("ringing", info))
        return info

    def _party(self, call_id: str, side: str, username: str | None) -> _Call:
        call = self._calls.get(call_id)
        if call is None:
            raise CallNotFoundError()
        if side not in SIDES or (side == FAMILY and username != call.info.family_user):
            raise NotYourCallError()
        return call

    async def answer(
        self, call_id: str, *, side: str, username: str | None, offer: Offer
    ) -> Answer:
        """The callee takes the call with its offer; the caller is told to connect."""
        call = self._party(call_id, side, username)
        if side != call.info.callee:
            raise NotYourCallError()
        if call.info.state is not CallState.RINGING:
            raise CallStateError("call.not_ringing")
        check_call_offer(offer)
        # Taken before the first await: a second answer (another tab) finds it active.
        call.info = replace(call.info, state=CallState.ACTIVE, answered_at=self._clock())
        if call.timer is not None:
            call.timer.cancel()
        try:
            answer = await self._open_peer(call, side, offer)
        except BaseException:
            if not call.ending:
                await self._end(call, EndReason.FAILED, actor=KIOSK if side == KIOSK else username)
            raise
        actor = KIOSK if side == KIOSK else str(username)
        try:
            await asyncio.to_thread(self._records.answered, call.info, actor)
        except Exception:
            await self._end(call, EndReason.FAILED, actor=actor)
            raise
        if call.ending:
            raise CallStateError("call.ended")
        # The caller has connect_timeout_seconds to bring its media.
        call.timer = asyncio.create_task(self._await_caller(call), name=f"call-join-{call_id}")
        log.info("call %s answered", call_id)
        self._publish(CallEvent("answered", call.info))
        return answer

    async def join(self, call_id: str, *, side: str, username: str | None, offer: Offer) -> Answer:
        """The caller's media, once the call is answered."""
        call = self._party(call_id, side, username)
        if side != call.info.caller:
            raise NotYourCallError()
        if call.info.state is not CallState.ACTIVE:
            raise CallStateError("call.not_answered")
        if side in call.peers:
            raise CallStateError("call.joined")
        check_call_offer(offer)
        call.peers[side] = ""  # taken: a second offer of the same side is refused
        try:
            answer = await self._open_peer(call, side, offer)
        except BaseException:
            call.peers.pop(side, None)
            if not call.ending:
                await self._end(call, EndReason.FAILED, actor=KIOSK if side == KIOSK else username)
            raise
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        return answer

    async def decline(self, call_id: str, *, side: str, username: str | None) -> CallInfo:
        call = self._party(call_id, side, username)
        if side != call.info.callee:
            raise NotYourCallError()
        if call.info.state is not CallState.RINGING:
            raise CallStateError("call.not_ringing")
        await self._end(call, EndReason.DECLINED, actor=KIOSK if side == KIOSK else username)
        return call.info

    async def hangup(self, call_id: str, *, side: str, username: str | None) -> CallInfo:
        """Either side ends the call (the caller while it rings, too)."""
        call = self._party(call_id, side, username)
        await self._end(call, EndReason.HANGUP, actor=KIOSK if side == KIOSK else username)
        return call.info

    async def close(self) -> None:
        """End every call, then every event stream once it has sent the end (the agent
        stops)."""
        self._closed = True
        await asyncio.gather(
            *(self._end(call, EndReason.FAILED) for call in list(self._calls.values())),
            return_exceptions=True,
        )
        for subscriber in list(self._subscribers):
            subscriber.close()
        self._subscribers.clear()

    # -- events -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(self, audience: str) -> AsyncIterator[Subscription]:
        """An event stream for ``audience``; the oldest of its streams beyond
        STREAMS_PER_AUDIENCE is closed. Raises SubscribersFullError at MAX_STREAMS."""
        if self._closed:
            raise SubscribersFullError("the call service is closed")
        same = [s for s in self._subscribers if s.audience == audience]
        for old in same[: max(0, len(same) - STREAMS_PER_AUDIENCE + 1)]:
            old.close()
            self._subscribers.remove(old)
        if len(self._subscribers) >= MAX_STREAMS:
            raise SubscribersFullError("too many event streams")
        subscription = Subscription(audience)
        self._subscribers.append(subscription)
        try:
            yield subscription
        finally:
            subscription.close()
            with contextlib.suppress(ValueError):
                self._subscribers.remove(subscription)

    def _publish(self, event: CallEvent) -> None:
        audiences = event.call.audiences
        for subscriber in list(self._subscribers):
            if subscriber.audience in audiences:
                subscriber.push(event)
                if subscriber.closed:
                    self._subscribers.remove(subscriber)

    # -- internals ----------------------------------------------------------------------------

    async def _open_peer(self, call: _Call, side: str, offer: Offer) -> Answer:
        other = FAMILY if side == KIOSK else KIOSK

        def attach(pc: RTCPeerConnection) -> list[MediaStreamTrack]:
            tracks: list[MediaStreamTrack] = []
            for kind in ("audio", "video"):
                track = RelayTrack(kind, call.feeds[(other, kind)])
                prefer_codecs(pc, track)
                tracks.append(track)

            @pc.on("track")
            def _on_track(track: MediaStreamTrack) -> None:
                if track.kind not in ("audio", "video") or call.ending:
                    return
                pump = asyncio.create_task(
                    _pump(track, call.feeds[(side, track.kind)]),
                    name=f"call-{call.info.id}-{side}-{track.kind}",
                )
                call.pumps.add(pump)
                pump.add_done_callback(call.pumps.discard)

            return tracks

        answered_at = call.info.answered_at or self._clock()
        remaining = self._config.max_call_minutes * 60.0 - (self._clock() - answered_at)
        owner = KIOSK if side == KIOSK else call.info.family_user
        answer = await self._peers.answer(
            offer,
            kind=KIND,
            owner=owner,
            subject=call.info.id,
            attach=attach,
            group_limit=2,
            kind_limit=2 * max(1, self._config.max_calls),
            max_seconds=max(1.0, remaining),
            on_closed=self._peer_closed,
        )
        call.peers[side] = answer.peer.id
        if call.ending:  # hung up while the offer was being answered
            await self._peers.close(answer.peer.id, "hangup")
            raise CallStateError("call.ended")
        # Ask the browser for sound in 60 ms packets too: it is the packets, not the bytes,
        # that cost the event loop (a browser that ignores it sends 20 ms, as before).
        return replace(answer, sdp=with_audio_ptime(answer.sdp, _OPUS_MS))

    async def _peer_closed(self, info: PeerInfo, reason: str) -> None:
        call = self._calls.get(info.subject)
        if call is None or call.ending:
            return
        side = KIOSK if info.owner == KIOSK else FAMILY
        await self._end(call, _PEER_REASONS.get(reason, EndReason.FAILED), actor=None, by=side)

    async def _ring(self, call: _Call) -> None:
        await asyncio.sleep(self._config.ring_seconds)
        if call.info.state is CallState.RINGING:
            call.timer = None
            await self._end(call, EndReason.MISSED)

    async def _await_caller(self, call: _Call) -> None:
        await asyncio.sleep(self._config.connect_timeout_seconds)
        if call.info.caller not in call.peers:
            call.timer = None
            log.info("call %s: the caller never brought its media", call.info.id)
            await self._end(call, EndReason.FAILED)

    async def _end(
        self,
        call: _Call,
        reason: EndReason,
        actor: str | None = None,
        by: str | None = None,
    ) -> None:
        """End ``call`` for both sides: once, whoever asks first."""
        if call.ending:
            return
        call.ending = True
        now = self._clock()
        call.info = replace(call.info, state=CallState.ENDED, ended_at=now, reason=reason)
        self._calls.pop(call.info.id, None)
        self._ending[call.info.id] = call.info
        timer = call.timer
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        for feed in call.feeds.values():
            feed.close()
        self._publish(CallEvent("ended", call.info))
        log.info("call %s ended: %s", call.info.id, reason)
        # Shielded: a page that goes away while hanging up must not leave a peer open.
        await asyncio.shield(self._release(call))
        if actor is None:
            actor = by_actor(call.info, by) if by else "system"
        try:
            await asyncio.shield(asyncio.to_thread(self._records.ended, call.info, actor))
        except Exception:
            log.exception("call %s: its end could not be recorded", call.info.id)
        finally:
            self._ending.pop(call.info.id, None)

    async def _release(self, call: _Call) -> None:
        peer_ids = [peer_id for peer_id in call.peers.values() if peer_id]
        await asyncio.gather(
            *(self._peers.close(peer_id, "hangup") for peer_id in peer_ids),
            return_exceptions=True,
        )
        pumps = list(call.pumps)
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


def by_actor(call: CallInfo, side: str) -> str:
    """The audit actor of a side of ``call``."""
    return KIOSK if side == KIOSK else call.family_user
