"""Live views of the cameras: who may open one, how many at once, and the audit trail.

A view is either a WebRTC peer (the normal case) or an MJPEG stream (the fallback for a browser
where WebRTC fails); both count against the same limits — ``rtc.max_viewers_per_camera`` and
``rtc.max_viewers`` — and both write ``camera.live`` when they start and ``camera.live_end``
with their length and end reason when they stop, so the audit log says who watched which camera
from when to when. Who may watch which camera is the web layer's decision (role and household);
this module trusts the viewer name it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender

from agent.audit import AuditLog
from agent.config import RtcConfig
from agent.errors import ValidationError
from agent.rtc.fanout import PacketTrack
from agent.rtc.peers import Answer, Offer, PeerBusyError, PeerInfo, PeerSessions

log = logging.getLogger(__name__)

KIND = "view"


class VideoSource(Protocol):
    """What views need of the video hub (agent.rtc.video)."""

    def track(self, camera_id: str, tier: str) -> MediaStreamTrack: ...

    def mjpeg(self, camera_id: str, fps: float) -> AsyncIterator[bytes]: ...


class UnknownCameraError(ValidationError):
    def __init__(self) -> None:
        super().__init__("camera", "live.camera_unknown")


def prefer_h264(pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
    """Send ``track`` with H.264 only: the hub's tracks carry encoded H.264 (its own encoder's,
    or the camera's), which no other codec could send, and phones decode it in hardware."""
    transceiver = pc.addTransceiver(track, direction="sendonly")
    if isinstance(track, PacketTrack):
        # aiortc answers a browser's keyframe request only for tracks it encodes itself.
        track.bind_sender(transceiver.sender)
    codecs = [
        codec
        for codec in RTCRtpSender.getCapabilities("video").codecs
        if codec.mimeType.lower() == "video/h264"
    ]
    transceiver.setCodecPreferences(codecs)


class LiveViews:
    def __init__(
        self,
        peers: PeerSessions,
        video: VideoSource,
        audit: AuditLog,
        config: RtcConfig,
        *,
        cameras: Callable[[], frozenset[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._peers = peers
        self._video = video
        self._audit = audit
        self._config = config
        self._cameras = cameras
        self._clock = clock
        self._streams: dict[str, int] = {}  # MJPEG streams per camera

    def viewers(self, camera_id: str | None = None) -> int:
        streams = (
            sum(self._streams.values()) if camera_id is None else self._streams.get(camera_id, 0)
        )
        return self._peers.count(kind=KIND, group=camera_id) + streams

    def check(self, camera_id: str, tier: str) -> None:
        """Whether a view of ``camera_id`` at ``tier`` may start now; raises PeerBusyError or
        a ValidationError (unknown camera or tier)."""
        if camera_id not in self._cameras():
            raise UnknownCameraError()
        if tier not in self._config.tiers:
            raise ValidationError("tier", "live.tier_unknown")
        if self.viewers() >= self._config.max_viewers:
            raise PeerBusyError("all")
        if self.viewers(camera_id) >= self._config.max_viewers_per_camera:
            raise PeerBusyError(camera_id)

    async def open(self, offer: Offer, *, viewer: str, camera_id: str, tier: str) -> Answer:
        """Answer a viewer's offer; raises PeerBusyError, OfferError or a ValidationError."""
        self.check(camera_id, tier)

        def attach(pc: RTCPeerConnection) -> list[MediaStreamTrack]:
            track = self._video.track(camera_id, tier)
            prefer_h264(pc, track)
            return [track]

        # No await between the check above and the reservation inside answer(): the count
        # cannot be overtaken by another offer.
        answer = await self._peers.answer(
            offer,
            kind=KIND,
            owner=viewer,
            subject=camera_id,
            attach=attach,
            max_seconds=self._config.max_view_minutes * 60.0,
            on_closed=self._ended,
        )
        await asyncio.to_thread(
            self._audit.record,
            viewer,
            "camera.live",
            f"camera:{camera_id}",
            f"session={answer.peer.id} tier={tier} webrtc",
        )
        return answer

    async def close(self, viewer: str, session_id: str) -> bool:
        """End one of ``viewer``'s own views; False when there is no such view of theirs."""
        for info in self._peers.peers(KIND):
            if info.id == session_id and info.owner == viewer:
                await self._peers.close(session_id, "hangup")
                return True
        return False

    async def _ended(self, info: PeerInfo, reason: str) -> None:
        seconds = max(0.0, self._clock() - info.started_at)
        await asyncio.to_thread(
            self._audit.record,
            info.owner,
            "camera.live_end",
            f"camera:{info.subject}",
            f"session={info.id} seconds={seconds:.0f} reason={reason}",
        )

    @contextlib.asynccontextmanager
    async def stream(
        self, *, viewer: str, camera_id: str, tier: str
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """An MJPEG view: the stills for as long as the caller iterates, audited like a peer."""
        self.check(camera_id, tier)
        self._streams[camera_id] = self._streams.get(camera_id, 0) + 1
        started = self._clock()
        reason = "hangup"
        try:
            await asyncio.to_thread(
                self._audit.record,
                viewer,
                "camera.live",
                f"camera:{camera_id}",
                f"tier={tier} mjpeg",
            )
            yield self._video.mjpeg(camera_id, self._config.tiers[tier].fps)
        except BaseException:
            reason = "closed"
            raise
        finally:
            self._streams[camera_id] -= 1
            seconds = max(0.0, self._clock() - started)
            await asyncio.shield(
                asyncio.to_thread(
                    self._audit.record,
                    viewer,
                    "camera.live_end",
                    f"camera:{camera_id}",
                    f"seconds={seconds:.0f} reason={reason} mjpeg",
                )
            )
