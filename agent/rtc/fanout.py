"""One encoded H.264 stream, many viewers: the fan-out and the viewers' tracks.

A producer (a tier's encoder, or a camera's relay) publishes each access unit once, on the event
loop; every viewer's :class:`PacketTrack` queues a reference to the same packet, and aiortc sends
it without encoding again (its H.264 sender *packs* an ``av.Packet``). A viewer that falls behind
— a congested sender, a peer that never connected — never grows memory: its queue has a bound,
and on overflow it drops everything, waits for the next keyframe and asks the producer for one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

log = logging.getLogger(__name__)

# Every producer stamps its packets in RTP's 90 kHz video clock, so a track can move between
# producers and keep one timeline.
TIME_BASE = Fraction(1, 90_000)
TICKS_PER_SECOND = 90_000


@dataclass(frozen=True)
class AccessUnit:
    """One encoded picture: an Annex B ``av.Packet`` (pts in :data:`TIME_BASE`), shared read-only
    by every viewer; whether it starts a decodable sequence (IDR with SPS/PPS); and when its
    picture was captured or received (``time.monotonic()``)."""

    packet: av.Packet[Any]
    keyframe: bool
    captured: float


class Fanout:
    """The viewers of one producer. Runs on the event loop only.

    ``request_keyframe`` asks the producer for a keyframe (it may be slow to come, or never come
    from a camera relayed as it is); ``on_empty`` is called when the last track leaves.
    """

    def __init__(
        self,
        *,
        request_keyframe: Callable[[], None],
        on_empty: Callable[[Fanout], None],
    ) -> None:
        self._request_keyframe = request_keyframe
        self._on_empty = on_empty
        self.tracks: set[PacketTrack] = set()
        self.published = 0
        self.keyframes = 0
        self.bytes = 0

    def add(self, track: PacketTrack) -> None:
        self.tracks.add(track)
        track.follow(self)
        self._request_keyframe()  # a new viewer sees a picture at the next frame, not the next GOP

    def remove(self, track: PacketTrack) -> None:
        if track not in self.tracks:
            return
        self.tracks.discard(track)
        if not self.tracks:
            self._on_empty(self)

    def publish(self, unit: AccessUnit) -> None:
        self.published += 1
        self.keyframes += unit.keyframe
        self.bytes += unit.packet.size
        for track in list(self.tracks):
            track.deliver(unit)

    def request_keyframe(self) -> None:
        self._request_keyframe()

    @property
    def dropped(self) -> int:
        return sum(track.dropped for track in self.tracks)


class PacketTrack(MediaStreamTrack):
    """A viewer's video track: encoded H.264 access units from the producer it follows.

    ``max_queue`` bounds what waits for the sender (about a second of frames). Before the first
    ``recv`` the track keeps only the current group of pictures, and if that is older than
    ``stale_seconds`` when sending starts (ICE and DTLS took a while), it asks for a fresh
    keyframe rather than start the viewer in the past. ``stop()`` unsubscribes the track.
    """

    kind = "video"

    def __init__(
        self,
        camera_id: str,
        tier: str,
        *,
        max_queue: int,
        stale_seconds: float = 0.5,
    ) -> None:
        super().__init__()
        self.camera_id = camera_id
        self.tier = tier
        self._max_queue = max(2, max_queue)
        self._stale_seconds = stale_seconds
        self._queue: deque[AccessUnit] = deque()
        self._fanout: Fanout | None = None
        self._need_keyframe = True
        self._started = False
        self._wakeup: asyncio.Future[None] | None = None
        # A track moved to another producer keeps its timeline continuous: the new producer's
        # pts are shifted to follow the last one sent.
        self._pts_offset = 0
        self._last_pts: int | None = None
        self._last_captured = 0.0
        self._rebase = False
        self.sent = 0
        self.dropped = 0
        self.resyncs = 0

    @property
    def source(self) -> Fanout | None:
        """The fan-out this track takes its packets from (None once stopped)."""
        return self._fanout

    @property
    def queued(self) -> int:
        """Access units waiting for the sender (never more than ``max_queue``)."""
        return len(self._queue)

    # -- producer side (event loop) -----------------------------------------------------------

    def follow(self, fanout: Fanout) -> None:
        """Take packets from ``fanout`` from now on, starting at its next keyframe."""
        self._fanout = fanout
        self.dropped += len(self._queue)
        self._queue.clear()
        self._need_keyframe = True
        self._rebase = self._last_pts is not None

    def deliver(self, unit: AccessUnit) -> None:
        if self.readyState != "live":
            return
        if self._need_keyframe and not unit.keyframe:
            self.dropped += 1
            return
        if unit.keyframe and not self._started:
            # Not sending yet: a later viewer start needs only the current group of pictures.
            self.dropped += len(self._queue)
            self._queue.clear()
        elif len(self._queue) >= self._max_queue:
            # Behind by a whole queue: skip to a fresh keyframe instead of queueing more.
            self.dropped += len(self._queue) + 1
            self._queue.clear()
            self.resyncs += 1
            self._need_keyframe = True
            if self.resyncs == 1 or self.resyncs % 100 == 0:
                log.info(
                    "live viewer of %s/%s fell behind (%d resyncs); skipping to a keyframe",
                    self.camera_id,
                    self.tier,
                    self.resyncs,
                )
            # A track not sending yet asks when it starts (see recv): a peer that never
            # connects must not make the encoder spend a keyframe every second.
            if self._started and self._fanout is not None:
                self._fanout.request_keyframe()
            if not unit.keyframe:
                return
        if unit.keyframe and self._rebase and self._last_pts is not None:
            gap = max(1, round((unit.captured - self._last_captured) * TICKS_PER_SECOND))
            self._pts_offset = self._last_pts + gap - int(unit.packet.pts or 0)
            self._rebase = False
        self._need_keyframe = False
        self._queue.append(unit)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    # -- sender side (aiortc's RTP loop) --------------------------------------------------------

    async def recv(self) -> av.Packet[Any]:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if not self._started:
                self._started = True
                self._drop_if_stale()
            if self._queue:
                return self._take(self._queue.popleft())
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None

    def _drop_if_stale(self) -> None:
        if self._queue and time.monotonic() - self._queue[0].captured > self._stale_seconds:
            self.dropped += len(self._queue)
            self._queue.clear()
            self._need_keyframe = True
            if self._fanout is not None:
                self._fanout.request_keyframe()

    def _take(self, unit: AccessUnit) -> av.Packet[Any]:
        packet = unit.packet
        pts = int(packet.pts or 0) + self._pts_offset
        self._last_pts = pts
        self._last_captured = unit.captured
        self.sent += 1
        if not self._pts_offset:
            return packet
        # The shared packet stays untouched; this viewer gets a copy on its own timeline.
        moved = av.Packet(bytes(packet))
        moved.pts = pts
        moved.time_base = TIME_BASE
        return moved

    def stop(self) -> None:
        if self.readyState == "live":
            log.debug("live track of %s/%s stopped", self.camera_id, self.tier)
        super().stop()
        self._queue.clear()
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)  # recv() sees the track ended and raises
        fanout, self._fanout = self._fanout, None
        if fanout is not None:
            fanout.remove(self)

    def bind_sender(self, sender: RTCRtpSender) -> None:
        """Pass the browser's keyframe requests (RTCP PLI and FIR) on to the producer.

        aiortc answers them only for tracks whose raw frames it encodes itself: for a track of
        packets it sets a flag nothing reads. The sender's hook is wrapped so that the shared
        encoder makes a keyframe (rate-limited); a relayed camera cannot be asked for one.
        """
        original = sender._send_keyframe

        def keyframe_requested() -> None:
            original()
            if self._fanout is not None:
                self._fanout.request_keyframe()

        sender._send_keyframe = keyframe_requested  # type: ignore[method-assign]
