"""Peer connections: every browser that watches a camera or takes part in a call connects to the
agent, and only to it.

This module answers an offer and keeps each peer inside its limits. It knows nothing of HTTP:
the web routes hand it an offer and pass its answer back, so the transport can change (offers
through the county MQTT broker, for a phone outside the village, is the next one).

A peer ends when it is closed on purpose, when it has not connected ``connect_timeout_seconds``
after the answer, when nothing has come from it for ``silence_timeout_seconds`` (a phone that
lost its signal sends no more RTCP), when its own time limit passes, or when its connection
fails. However it ends, its tracks are stopped (so a shared encoder loses a subscriber) and its
``on_closed`` callback runs exactly once with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from agent.config import IceServer, RtcConfig
from agent.errors import KioskError, ValidationError

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024
# Browsers hide their host addresses behind mDNS names; resolving them costs up to a second
# each on a network without multicast. The agent answers with its own addresses and learns the
# browser's from its connectivity checks (a peer-reflexive candidate), so they are dropped.
_MDNS_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ \S+\.local \d+ .*$", re.MULTILINE)
_CHECK_SECONDS = 1.0
# Closing sends DTLS close alerts and stops ICE: well under a second when the other side is
# there, and nothing to wait for when it is not.
_CLOSE_SECONDS = 5.0

Attach = Callable[[RTCPeerConnection], Sequence[MediaStreamTrack]]
ClosedCallback = Callable[["PeerInfo", str], Awaitable[None] | None]


class PeerBusyError(KioskError):
    """No room for another peer: ``scope`` is the group (a camera, a call) or ``"all"``."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"too many live peers ({scope})")


class OfferError(ValidationError):
    """The offer cannot be answered (malformed, or nothing the agent can send or receive)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__("sdp", "live.offer_invalid")


@dataclass(frozen=True)
class Offer:
    sdp: str
    type: str = "offer"


@dataclass(frozen=True)
class PeerInfo:
    id: str
    kind: str  # "view" or "call"
    owner: str  # who asked: a username, or "kiosk"
    subject: str  # what it is about: a camera id, a call id
    group: str  # what its per-group limit counts: usually the subject
    started_at: float  # wall clock


@dataclass(frozen=True)
class Answer:
    peer: PeerInfo
    sdp: str
    type: str = "answer"


@dataclass
class _Peer:
    info: PeerInfo
    pc: RTCPeerConnection
    tracks: list[MediaStreamTrack]
    on_closed: ClosedCallback | None
    max_seconds: float
    opened: float = field(default_factory=time.monotonic)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    watchdog: asyncio.Task[None] | None = None


def ice_servers(servers: Sequence[IceServer]) -> list[RTCIceServer]:
    """The configured STUN/TURN servers as aiortc wants them (credentials read from files)."""
    result = []
    for server in servers:
        credential = _read_credential(server.credential_file) if server.credential_file else None
        result.append(
            RTCIceServer(
                urls=list(server.urls), username=server.username or None, credential=credential
            )
        )
    return result


def _read_credential(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KioskError(f"cannot read the TURN credential file {path}") from exc


def without_mdns_candidates(sdp: str) -> str:
    return _MDNS_CANDIDATE.sub("", sdp).replace("\r\n\r\n", "\r\n").replace("\n\n", "\n")


def _check_offer(offer: Offer) -> None:
    if offer.type != "offer":
        raise OfferError("the description is not an offer")
    if not offer.sdp or len(offer.sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise OfferError("the offer is empty or too large")
    if not offer.sdp.startswith("v=0") or "m=" not in offer.sdp:
        raise OfferError("the offer is not a session description")


class PeerSessions:
    """All peer connections of the agent, their limits and their ends."""

    def __init__(
        self,
        config: RtcConfig,
        *,
        servers: Sequence[RTCIceServer] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._servers = list(servers)
        self._clock = clock
        self._peers: dict[str, _Peer] = {}
        self._closed = False

    def peers(self, kind: str | None = None) -> list[PeerInfo]:
        # Health reads this from other threads: list() copies the dict's values in one step.
        return [p.info for p in list(self._peers.values()) if kind is None or p.info.kind == kind]

    def count(self, *, kind: str, group: str | None = None) -> int:
        return sum(
            1
            for p in list(self._peers.values())
            if p.info.kind == kind and (group is None or p.info.group == group)
        )

    async def answer(
        self,
        offer: Offer,
        *,
        kind: str,
        owner: str,
        subject: str,
        attach: Attach,
        group: str | None = None,
        group_limit: int | None = None,
        kind_limit: int | None = None,
        max_seconds: float,
        on_closed: ClosedCallback | None = None,
    ) -> Answer:
        """Answer ``offer`` with a new peer whose tracks ``attach(pc)`` adds.

        Raises PeerBusyError when a limit is reached (nothing was started) and OfferError when
        the offer cannot be answered.
        """
        if self._closed:
            raise PeerBusyError("all")
        _check_offer(offer)
        group = group or subject
        # Counted and reserved with no await in between: two offers cannot both take the last
        # place.
        if kind_limit is not None and self.count(kind=kind) >= kind_limit:
            raise PeerBusyError("all")
        if group_limit is not None and self.count(kind=kind, group=group) >= group_limit:
            raise PeerBusyError(group)
        info = PeerInfo(
            id=secrets.token_urlsafe(12),
            kind=kind,
            owner=owner,
            subject=subject,
            group=group,
            started_at=self._clock(),
        )
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self._servers) or None))
        # No close callback until the answer exists: a refused offer never started anything.
        peer = _Peer(info, pc, [], None, max_seconds)
        self._peers[info.id] = peer
        try:
            peer.tracks = list(attach(pc))
            await pc.setRemoteDescription(
                RTCSessionDescription(sdp=without_mdns_candidates(offer.sdp), type="offer")
            )
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except OfferError:
            await self._close(peer, "refused")
            raise
        except (ValueError, KeyError, IndexError, AttributeError, TypeError, AssertionError) as exc:
            # aiortc raises plain errors (even assertions) for SDP it cannot parse or answer.
            await self._close(peer, "refused")
            raise OfferError(str(exc)[:200]) from exc
        except BaseException:
            await self._close(peer, "refused")
            raise

        peer.on_closed = on_closed
        peer.opened = time.monotonic()

        @pc.on("connectionstatechange")
        async def _state_changed() -> None:
            state = pc.connectionState
            if state == "connected":
                peer.connected.set()
            elif state in ("failed", "closed"):
                await self._close(peer, "failed" if state == "failed" else "closed")

        peer.watchdog = asyncio.create_task(self._watch(peer), name=f"peer-{info.id}")
        log.info("%s peer %s for %s opened by %s", kind, info.id, subject, owner)
        local = pc.localDescription
        return Answer(peer=info, sdp=local.sdp, type=local.type)

    async def close(self, peer_id: str, reason: str = "hangup") -> PeerInfo | None:
        peer = self._peers.get(peer_id)
        if peer is None:
            return None
        await self._close(peer, reason)
        return peer.info

    async def close_all(self, reason: str = "stopped") -> None:
        self._closed = True
        await asyncio.gather(
            *(self._close(peer, reason) for peer in list(self._peers.values())),
            return_exceptions=True,
        )

    async def _watch(self, peer: _Peer) -> None:
        # A cancelled watchdog closes nothing: whoever cancels it (``_close`` or ``close_all`` at
        # stop) is already closing the peer, and a close awaited inside a cancelled task could
        # wait forever on a loop that is being torn down.
        try:
            await asyncio.wait_for(
                peer.connected.wait(), timeout=self._config.connect_timeout_seconds
            )
        except TimeoutError:
            reason = "no_connect"
        else:
            reason = await self._while_alive(peer)
        await self._close(peer, reason)

    async def _while_alive(self, peer: _Peer) -> str:
        heard = time.monotonic()
        received = -1
        while not peer.closing:
            await asyncio.sleep(_CHECK_SECONDS)
            now = time.monotonic()
            if now >= peer.opened + peer.max_seconds:
                return "time_limit"
            total = await _bytes_received(peer.pc)
            if total != received:
                received, heard = total, now
            elif now - heard >= self._config.silence_timeout_seconds:
                return "silent"
        return "closed"

    async def _close(self, peer: _Peer, reason: str) -> None:
        if peer.closing:
            return
        peer.closing = True
        self._peers.pop(peer.info.id, None)
        for track in peer.tracks:
            track.stop()
        # A half-made connection may fail to close, or wait on ICE work that never ends; a peer
        # is forgotten either way, so a close is given a bounded time.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(peer.pc.close(), timeout=_CLOSE_SECONDS)
        watchdog = peer.watchdog
        if watchdog is not None and watchdog is not asyncio.current_task():
            watchdog.cancel()
        seconds = self._clock() - peer.info.started_at
        log.info(
            "%s peer %s for %s closed after %.1f s: %s",
            peer.info.kind,
            peer.info.id,
            peer.info.subject,
            seconds,
            reason,
        )
        if peer.on_closed is not None:
            try:
                result = peer.on_closed(peer.info, reason)
                if result is not None:
                    await result
            except Exception:  # a failing listener must not keep the peer half-open
                log.exception("peer %s: close callback failed", peer.info.id)


async def _bytes_received(pc: RTCPeerConnection) -> int:
    """Everything the browser sent over the connection's transports (RTCP reports included)."""
    report = await pc.getStats()
    return sum(
        int(getattr(stats, "bytesReceived", 0) or 0)
        for stats in report.values()
        if getattr(stats, "type", "") == "transport"
    )
