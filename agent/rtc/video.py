"""The video hub: every live viewer's track, and what it costs, per agent.

Viewers of one camera at one quality tier share one producer, started with the first viewer
and stopped ``linger_seconds`` after the last one leaves (a page reload or a tier switch does
not restart it):

- an encoder (:class:`~agent.rtc.encoder.TierEncoder`) of the camera's masked frames, or
- for an RTSP camera without privacy masks, a relay (:class:`~agent.rtc.relay.H264Relay`) of
  the camera's own H.264, shared by every tier whose box holds the camera's picture: no
  decoding or encoding at all. A camera with privacy masks is never relayed.

A camera cannot be asked for a keyframe, and waiting for its next one takes up to its keyframe
interval (often 2–4 s). So a viewer of a relayed camera starts on the encoder, which makes a
keyframe at once, and moves to the relay at the camera's next keyframe; the encoder stops when
its last viewer has moved on. When the relay cannot open the camera (one RTSP session only?),
loses it, or finds another codec or a picture too large for a tier, its viewers stay on (or
move back to) encoders, and a failed camera is encoded for ``relay_retry_seconds``.

The hub lives on the event loop: ``track``, ``mjpeg`` and ``close`` are called there (``stop``
from any other thread), and the producers' threads hand their packets to it with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiortc import MediaStreamTrack

from agent.camera.pictures import CameraPictures
from agent.camera.slot import FrameSlot
from agent.camera.source import RtspSource, parse_source
from agent.config import CameraConfig, RtcConfig, ViewerCaps
from agent.errors import KioskError
from agent.rtc.encoder import TierEncoder
from agent.rtc.fanout import AccessUnit, Fanout, PacketTrack
from agent.rtc.relay import H264Relay, StreamInfo

log = logging.getLogger(__name__)

# A viewer's queue holds about this many seconds of frames before it skips to a keyframe.
_QUEUE_SECONDS = 1.0


@dataclass(frozen=True)
class LiveCamera:
    """What the hub needs of one camera: its config, its latest-frame slot and its pictures
    (whose masker is the camera's one ``PrivacyMasker``)."""

    config: CameraConfig
    slot: FrameSlot
    pictures: CameraPictures

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def relayable(self) -> bool:
        """Its own stream may go to viewers as it is: RTSP, and nothing to mask."""
        source = parse_source(self.config.source)
        return isinstance(source, RtspSource) and not self.pictures.masker.active


@dataclass(eq=False)
class _Producer:
    """One running producer (encoder or relay) with the viewers it feeds."""

    camera_id: str
    tier: str | None  # None for a camera's relay, which serves every tier it fits
    worker: TierEncoder | H264Relay
    fanout: Fanout
    exited: asyncio.Future[None]
    stopped: bool = False
    linger: asyncio.Task[None] | None = None
    # A relay's viewers still on their encoder, to move over at the camera's next keyframe.
    joining: set[PacketTrack] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.camera_id, self.tier)


class VideoHub:
    """Live video tracks of the agent's cameras: one producer per camera and tier, not per
    viewer."""

    def __init__(
        self,
        rtc: RtcConfig,
        cameras: Iterable[LiveCamera],
        *,
        passthrough: bool = True,
        linger_seconds: float = 2.0,
        keyframe_seconds: float = 2.0,
        min_forced_keyframe_seconds: float = 0.25,
        relay_retry_seconds: float = 60.0,
    ) -> None:
        self._tiers: dict[str, ViewerCaps] = dict(rtc.tiers)
        self._cameras = {camera.id: camera for camera in cameras}
        self._passthrough = passthrough
        self._linger = linger_seconds
        self._keyframe_seconds = keyframe_seconds
        self._min_forced = min_forced_keyframe_seconds
        self._relay_retry = relay_retry_seconds
        self._producers: dict[tuple[str, str | None], _Producer] = {}  # the running ones
        self._fanouts: dict[Fanout, _Producer] = {}  # running and stopping, until reaped
        self._tasks: set[asyncio.Task[None]] = set()
        self._streams: dict[str, StreamInfo] = {}  # what each relayed camera was found to send
        self._relay_barred_until: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the first track
        self._closed = False

    # -- the interface the web layer uses -------------------------------------------------------

    def track(self, camera_id: str, tier: str) -> MediaStreamTrack:
        """A new viewer's video track (encoded H.264; send it with H.264 only). Raises KeyError
        for an unknown camera or tier. ``track.stop()`` unsubscribes it; ``track.bind_sender``
        lets the browser's keyframe requests through."""
        camera = self._cameras[camera_id]
        caps = self._tiers[tier]
        if self._closed:
            raise KioskError("live video has stopped")
        self._loop = asyncio.get_running_loop()
        track = PacketTrack(camera_id, tier, max_queue=math.ceil(caps.fps * _QUEUE_SECONDS))
        self._encoder_for(camera, tier).fanout.add(track)
        if self._relay_fits(camera, tier):
            self._relay_for(camera).joining.add(track)
        return track

    def mjpeg(self, camera_id: str, fps: float) -> AsyncIterator[bytes]:
        """Masked JPEG stills of a camera, at most ``fps`` a second, each a newer frame than the
        last, for as long as the caller iterates. Raises KeyError for an unknown camera."""
        camera = self._cameras[camera_id]
        if not fps > 0:
            raise ValueError("fps must be positive")
        return _stills(camera, 1.0 / fps)

    def stats(self) -> dict[str, object]:
        """Per camera: whether it may be relayed, its running producers and their viewers."""
        cameras: dict[str, object] = {}
        # Health reads this from other threads: list() copies in one step under the GIL, so a
        # producer starting on the loop meanwhile cannot break the iteration.
        running = list(self._producers.values())
        for camera_id, camera in list(self._cameras.items()):
            producers = [p for p in running if p.camera_id == camera_id]
            encoders: dict[str, object] = {}
            relay: dict[str, object] | None = None
            for producer in producers:
                figures: dict[str, object] = {
                    "subscribers": len(producer.fanout.tracks),
                    "frames": producer.fanout.published,
                    "keyframes": producer.fanout.keyframes,
                    "bytes": producer.fanout.bytes,
                    "dropped": producer.fanout.dropped,
                }
                worker = producer.worker
                if isinstance(worker, TierEncoder):
                    size = worker.size
                    figures["size"] = f"{size[0]}x{size[1]}" if size else None
                    figures["forced_keyframes"] = worker.forced_keyframes
                    encoders[producer.tier or ""] = figures
                else:
                    info = worker.info
                    figures["stream"] = info.describe() if info else None
                    figures["joining"] = len(producer.joining)
                    relay = figures
            cameras[camera_id] = {
                "passthrough": self._passthrough and camera.relayable,
                "relay": relay,
                "encoders": encoders,
                "subscribers": sum(len(p.fanout.tracks) for p in producers),
            }
        return cameras

    async def wait_idle(self) -> None:
        """Wait until every producer whose viewers all left has stopped and its thread ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """End every track and stop every producer, joining their threads."""
        self._closed = True
        for producer in list(self._producers.values()):
            for track in list(producer.fanout.tracks):
                track.stop()
            self._stop(producer)
        await self.wait_idle()

    def stop(self, timeout: float = 10.0) -> None:
        """``close()`` from another thread than the loop's (the runtime stops in a worker
        thread while the loop still runs). With that loop gone, the producers' threads are
        stopped and joined directly."""
        loop = self._loop
        if loop is not None and loop.is_running() and not _in_loop(loop):
            asyncio.run_coroutine_threadsafe(self.close(), loop).result(timeout)
            return
        self._closed = True
        workers = [p.worker for p in (*self._producers.values(), *self._fanouts.values())]
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(timeout)

    # -- producers --------------------------------------------------------------------------------

    def _relay_fits(self, camera: LiveCamera, tier: str) -> bool:
        if not (self._passthrough and camera.relayable):
            return False
        if time.monotonic() < self._relay_barred_until.get(camera.id, -math.inf):
            return False
        info = self._streams.get(camera.id)
        return info is None or _fits(info, self._tiers[tier])

    def _encoder_for(self, camera: LiveCamera, tier: str) -> _Producer:
        return self._running(camera, tier)

    def _relay_for(self, camera: LiveCamera) -> _Producer:
        return self._running(camera, None)

    def _running(self, camera: LiveCamera, tier: str | None) -> _Producer:
        producer = self._producers.get((camera.id, tier))
        if producer is None:
            producer = self._start(camera, tier)
        elif producer.linger is not None:
            producer.linger.cancel()
            producer.linger = None
        return producer

    def _start(self, camera: LiveCamera, tier: str | None) -> _Producer:
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        holder: list[_Producer] = []

        def publish(unit: AccessUnit) -> None:
            _call_soon(loop, self._publish, holder[0], unit)

        def on_exit() -> None:
            _call_soon(loop, _resolve, exited)

        worker: TierEncoder | H264Relay
        if tier is None:
            worker = H264Relay(
                f"rtc-relay-{camera.id}",
                camera.config.source,
                publish=publish,
                on_open=lambda info: _call_soon(loop, self._relay_opened, holder[0], info),
                on_fail=lambda reason: _call_soon(loop, self._relay_failed, holder[0], reason),
                on_exit=on_exit,
                open_timeout=camera.config.open_timeout_seconds,
                read_timeout=camera.config.stall_timeout_seconds,
            )
        else:
            worker = TierEncoder(
                f"rtc-encode-{camera.id}-{tier}",
                camera.slot,
                camera.pictures,
                self._tiers[tier],
                publish=publish,
                on_exit=on_exit,
                keyframe_seconds=self._keyframe_seconds,
                min_forced_keyframe_seconds=self._min_forced,
            )
        fanout = Fanout(request_keyframe=worker.request_keyframe, on_empty=self._on_empty)
        producer = _Producer(camera.id, tier, worker, fanout, exited)
        holder.append(producer)
        self._producers[producer.key] = producer
        self._fanouts[fanout] = producer
        worker.start()
        return producer

    def _publish(self, producer: _Producer, unit: AccessUnit) -> None:
        if producer.joining:
            producer.joining = {t for t in producer.joining if t.readyState == "live"}
            if unit.keyframe:
                # The camera's keyframe: whoever waits on an encoder moves over, starting here.
                for track in producer.joining:
                    if track.source is not None:
                        track.source.remove(track)
                    producer.fanout.add(track)
                producer.joining.clear()
            elif not producer.joining and not producer.fanout.tracks:
                self._on_empty(producer.fanout)
        producer.fanout.publish(unit)

    def _idle(self, producer: _Producer) -> bool:
        return not producer.fanout.tracks and not any(
            t.readyState == "live" for t in producer.joining
        )

    def _on_empty(self, fanout: Fanout) -> None:
        producer = self._fanouts.get(fanout)
        if producer is None or producer.stopped or producer.linger is not None:
            return
        if not self._idle(producer):
            return
        if self._linger <= 0 or self._closed:
            self._stop(producer)
            return
        producer.linger = self._spawn(self._stop_later(producer))

    async def _stop_later(self, producer: _Producer) -> None:
        await asyncio.sleep(self._linger)
        producer.linger = None
        if self._idle(producer):
            self._stop(producer)

    def _stop(self, producer: _Producer) -> None:
        if producer.stopped:
            return
        producer.stopped = True
        if producer.linger is not None:
            producer.linger.cancel()
            producer.linger = None
        if self._producers.get(producer.key) is producer:
            del self._producers[producer.key]
        producer.worker.stop()
        self._spawn(self._reap(producer))

    async def _reap(self, producer: _Producer) -> None:
        await producer.exited
        producer.worker.join()  # the thread has run its last line: this does not block
        self._fanouts.pop(producer.fanout, None)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- relay outcomes (on the loop) ----------------------------------------------------------

    def _relay_opened(self, producer: _Producer, info: StreamInfo) -> None:
        self._streams[producer.camera_id] = info
        camera = self._cameras[producer.camera_id]
        unfit = {t.tier for t in producer.joining if not self._relay_fits(camera, t.tier)}
        if unfit:
            log.info(
                "live %s: the camera sends %s, not for tier(s) %s: those stay encoded",
                camera.id,
                info.describe(),
                ", ".join(sorted(unfit)),
            )
        producer.joining = {t for t in producer.joining if t.tier not in unfit}
        for track in list(producer.fanout.tracks):
            if track.tier in unfit:
                self._move(track, producer, camera)
        if info.codec != "h264":
            self._stop(producer)
        else:
            self._on_empty(producer.fanout)

    def _relay_failed(self, producer: _Producer, reason: str) -> None:
        camera = self._cameras[producer.camera_id]
        self._relay_barred_until[camera.id] = time.monotonic() + self._relay_retry
        log.warning(
            "live %s: relaying the camera failed (%s); encoding it for %.0f s",
            camera.id,
            reason,
            self._relay_retry,
        )
        producer.joining.clear()  # they are on their encoders and stay there
        for track in list(producer.fanout.tracks):
            self._move(track, producer, camera)
        self._stop(producer)

    def _move(self, track: PacketTrack, source: _Producer, camera: LiveCamera) -> None:
        source.fanout.remove(track)
        if track.readyState == "live" and not self._closed:
            self._encoder_for(camera, track.tier).fanout.add(track)


def _fits(info: StreamInfo, caps: ViewerCaps) -> bool:
    return info.codec == "h264" and info.width <= caps.width and info.height <= caps.height


async def _stills(camera: LiveCamera, interval: float) -> AsyncIterator[bytes]:
    seq = 0
    next_due = -math.inf
    while True:
        frame = await camera.slot.next_frame(seq)
        wait = next_due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
            frame = camera.slot.latest() or frame
        seq = frame.seq
        # On the grid of the interval, and never sooner than most of an interval from now.
        next_due = max(next_due + interval, time.monotonic() + interval * 0.75)
        picture = await asyncio.to_thread(camera.pictures.still, frame)
        yield picture.jpeg


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """From a producer thread: run ``callback`` on the loop; nothing to do once it has closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
