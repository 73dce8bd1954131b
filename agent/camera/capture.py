"""Capture threads: one per camera, from its source into its latest-frame slot.

A :class:`CameraWorker` opens the camera's source, keeps the configured frame rate (decimating a
faster live camera, pacing a file or synthetic scene), conforms every frame to the configured
resolution and publishes it to :attr:`CameraWorker.slot`. It reconnects by itself and never
lets a bad frame, a dead camera or a failing callback end the thread.

Camera states:

``STARTING``
    The thread runs and has neither delivered a frame nor failed yet.
``ONLINE``
    Frames arrive.
``RECONNECTING``
    The source was lost (closed, stalled: no usable frame for ``stall_timeout_seconds``) or could
    not be opened, and the retries are in their fast phase: the delay starts at
    ``reconnect_min_seconds`` and doubles after each attempt that brings no frame.
``OFFLINE``
    The retry delay has grown to ``reconnect_max_seconds`` (and at least three attempts in a row
    have failed): the camera has been unreachable for roughly the sum of the fast delays (about
    30 s with the defaults). Retries go on every ``reconnect_max_seconds``, each with jitter,
    and the first frame makes the camera ``ONLINE`` again. ``OFFLINE`` is also the final state
    of a file or finite scene that ended with ``loop = false``, of a source that can never work
    (such as an unknown scene), and of a stopped worker; in those cases the thread has ended.
``DISABLED``
    ``enabled = false``: the source is never opened and no thread runs.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from agent.camera.readers import FrameReader, SourceEndedError, SourceUnusableError, make_reader
from agent.camera.slot import Frame, FrameSlot
from agent.config import CameraConfig
from agent.errors import CameraError

logger = logging.getLogger(__name__)

# A live camera whose reads fail this many times in a row has dropped the connection.
MAX_FAILED_READS = 3
# However short the backoff cap, a camera goes OFFLINE only after this many failed attempts.
MIN_ATTEMPTS_BEFORE_OFFLINE = 3
# A failing frame callback is logged at most once per this many seconds.
CALLBACK_LOG_INTERVAL_SECONDS = 60.0
# Measured fps covers the frames of about this many seconds.
FPS_WINDOW_SECONDS = 2.0
# A capture thread may be silent for its longest blocking call (an open or a read, bounded by
# the camera's timeouts) plus this much (a slow frame callback, a busy Pi) before it is hung.
LIVENESS_MARGIN_SECONDS = 10.0
# A reconnect wait shows a sign of life at least this often.
_BEAT_SECONDS = 1.0


class CameraState(StrEnum):
    STARTING = "starting"
    ONLINE = "online"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    DISABLED = "disabled"


@dataclass(frozen=True)
class CameraStatus:
    """A snapshot of one camera for health, MQTT and the UI.

    ``dropped`` counts frames that came but were unusable (corrupt, empty, a size other than
    the stream's) and reads that brought no frame; ``reconnects`` counts reopen attempts after
    the first open; ``callback_errors`` counts exceptions raised by the ``on_frame`` callback.
    """

    camera_id: str
    name: str
    source: str  # parsed_source.describe(): never carries credentials
    state: CameraState
    fps: float
    frames: int
    dropped: int
    reconnects: int
    last_frame_ts: float | None
    last_error: str | None
    width: int
    height: int
    callback_errors: int = 0


def backoff_delay(attempt: int, minimum: float, maximum: float, rng: random.Random) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0 = the first after a loss).

    Capped exponential backoff with "equal jitter": the base doubles from ``minimum`` up to
    ``maximum`` and the delay is drawn uniformly between half the base and the base, so
    cameras that lost the same network do not all come back in the same instant.
    """
    base = min(maximum, minimum * 2.0 ** min(max(attempt, 0), 64))
    return rng.uniform(base / 2.0, base)


def attempts_before_offline(minimum: float, maximum: float) -> int:
    """Failed attempts in a row that make a camera OFFLINE: when the backoff reaches its cap."""
    to_cap = math.ceil(math.log2(maximum / minimum)) if maximum > minimum else 0
    return max(MIN_ATTEMPTS_BEFORE_OFFLINE, to_cap)


class LiveLag:
    """Tells when a live stream's frames queue up behind real time, so they can be skipped.

    A slow ``on_frame`` makes a network camera's frames wait in the socket buffer, and the
    delay would grow without bound. The gap between the wall clock and a frame's stream time,
    compared with the smallest gap seen (the live edge), is how far behind the capture is.
    Past two frame intervals the worker only grabs (no conversion, no callback) until it is
    within half an interval again. A grab that had to wait for its frame proves the capture
    is at the live edge, which also absorbs clock drift and timestamp jumps. Sources without
    advancing timestamps are never considered behind.
    """

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._edge: float | None = None
        self._last_position: float | None = None
        self._catching_up = False

    def behind(self, position: float | None, now: float, waited: float) -> bool:
        if position is None or (
            self._last_position is not None and position <= self._last_position
        ):
            return False
        self._last_position = position
        gap = now - position
        if self._edge is None or gap < self._edge or waited >= self._interval / 2:
            self._edge = gap
        lag = gap - self._edge
        if lag > 2 * self._interval:
            self._catching_up = True
        elif lag <= self._interval / 2:
            self._catching_up = False
        return self._catching_up


class _SourceLostError(CameraError):
    """The open source stopped delivering usable frames; the worker reopens it."""


class CameraWorker:
    """The capture thread of one camera. ``on_frame`` and ``on_state`` run in that thread
    (``on_state`` also in the caller's thread from :meth:`start` and :meth:`stop`)."""

    def __init__(
        self,
        config: CameraConfig,
        *,
        on_frame: Callable[[Frame], None] | None = None,
        on_state: Callable[[str, CameraState], None] | None = None,
        reader_factory: Callable[[CameraConfig], FrameReader] = make_reader,
    ) -> None:
        self.config = config
        self.slot = FrameSlot()
        self._on_frame = on_frame
        self._on_state = on_state
        self._reader_factory = reader_factory
        self._description = config.parsed_source.describe()
        self._size = (config.resolution.width, config.resolution.height)
        self._interval = 1.0 / config.fps
        self._offline_after = attempts_before_offline(
            config.reconnect_min_seconds, config.reconnect_max_seconds
        )
        self._rng = random.Random()
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        # The capture thread's last sign of life (monotonic): every loop turn, frame, state
        # change and reconnect wait renews it. A float store, read without the lock.
        self._beat = time.monotonic()
        self._lock = threading.Lock()
        self._state = CameraState.STARTING if config.enabled else CameraState.DISABLED
        self._frames = 0
        self._dropped = 0
        self._reconnects = 0
        self._callback_errors = 0
        self._last_frame_ts: float | None = None
        self._last_error: str | None = None
        self._recent: deque[float] = deque(
            maxlen=max(3, math.ceil(config.fps * FPS_WINDOW_SECONDS))
        )
        # Only the capture thread touches these.
        self._stream_size: tuple[int, int] | None = None
        self._session_delivered = False
        self._last_callback_log = -math.inf

    # -- control ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the capture thread (a disabled camera only announces DISABLED)."""
        if not self.config.enabled:
            self._emit_state(CameraState.DISABLED)
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop_requested.clear()
        self._beat = time.monotonic()
        self._set_state(CameraState.STARTING, always_emit=True)
        self._thread = threading.Thread(
            target=self._run, name=f"camera-{self.config.id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and join the capture thread. Opens and reads are bounded by the camera's
        timeouts, so the join returns unless a driver ignores them (then it is logged)."""
        self._stop_requested.set()
        thread = self._thread
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            logger.warning(
                "camera %s: capture thread did not stop within %.1f s", self.config.id, timeout
            )
            return
        self._thread = None
        self._set_state(CameraState.OFFLINE, stopped=True)

    def status(self) -> CameraStatus:
        now = time.monotonic()
        with self._lock:
            return CameraStatus(
                camera_id=self.config.id,
                name=self.config.name or self.config.id,
                source=self._description,
                state=self._state,
                fps=self._measured_fps(now),
                frames=self._frames,
                dropped=self._dropped,
                reconnects=self._reconnects,
                last_frame_ts=self._last_frame_ts,
                last_error=self._last_error,
                width=self._size[0],
                height=self._size[1],
                callback_errors=self._callback_errors,
            )

    def liveness_limit(self) -> float:
        """Seconds the capture thread may go without a sign of life: its longest blocking
        call (an open or a read, each bounded by the camera's timeouts) plus a margin."""
        config = self.config
        longest = max(config.open_timeout_seconds, config.stall_timeout_seconds)
        return longest + LIVENESS_MARGIN_SECONDS

    def liveness_problem(self, now: float | None = None) -> str | None:
        """Why the capture thread is hung, or None while it is alive or not meant to run.

        Hung: the thread runs (not stopping) and has shown no sign of life for longer than
        :meth:`liveness_limit`, e.g. a driver that ignores its timeouts; or the thread is gone
        while the camera's state still says it is capturing. A thread that ended as documented
        (OFFLINE: a finished file, an unusable source) and a disabled camera are not hung.
        """
        if not self.config.enabled or self._stop_requested.is_set():
            return None
        thread = self._thread
        if thread is None:
            return None  # never started
        with self._lock:
            state = self._state
        if not thread.is_alive():
            if state in (CameraState.OFFLINE, CameraState.DISABLED):
                return None
            return f"capture thread ended while {state}"
        now = time.monotonic() if now is None else now
        silent = now - self._beat
        limit = self.liveness_limit()
        if silent <= limit:
            return None
        return f"capture thread silent for {silent:.1f} s while {state} (limit {limit:g} s)"

    # -- state --------------------------------------------------------------------------------

    def _measured_fps(self, now: float) -> float:
        recent = self._recent
        if self._state is not CameraState.ONLINE or len(recent) < 2:
            return 0.0
        # A frame older than the window says the rate has collapsed; do not report the old one.
        if now - recent[-1] > FPS_WINDOW_SECONDS:
            return 0.0
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0

    def _set_state(
        self, state: CameraState, *, always_emit: bool = False, stopped: bool = False
    ) -> None:
        self._beat = time.monotonic()
        with self._lock:
            previous, self._state = self._state, state
            if state is CameraState.ONLINE:
                # The rate of the previous session would drag the measured fps down.
                self._recent.clear()
            error = self._last_error
        if previous is state and not always_emit:
            return
        camera = (self.config.id, self._description)
        if previous is state:
            logger.info("camera %s (%s): %s", *camera, state)
        elif stopped:
            logger.info("camera %s (%s): %s → %s: stopped", *camera, previous, state)
        elif state in (CameraState.RECONNECTING, CameraState.OFFLINE) and error:
            logger.warning("camera %s (%s): %s → %s: %s", *camera, previous, state, error)
        else:
            logger.info("camera %s (%s): %s → %s", *camera, previous, state)
        self._emit_state(state)

    def _emit_state(self, state: CameraState) -> None:
        if self._on_state is None:
            return
        try:
            self._on_state(self.config.id, state)
        except Exception:
            logger.exception("camera %s: state callback failed", self.config.id)

    def _note_error(self, message: str) -> None:
        with self._lock:
            self._last_error = message

    def _count_dropped(self) -> None:
        with self._lock:
            self._dropped += 1

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        failed_attempts = 0
        first = True
        while not self._stop_requested.is_set():
            self._beat = time.monotonic()
            if not first:
                with self._lock:
                    self._reconnects += 1
            first = False
            self._session_delivered = False
            try:
                self._session()
            except (SourceEndedError, SourceUnusableError) as exc:
                self._note_error(str(exc))
                if not self._stop_requested.is_set():
                    self._set_state(CameraState.OFFLINE)
                return
            except CameraError as exc:
                self._note_error(str(exc))
            except Exception as exc:
                # The thread must outlive a defect in a reader or scene; it retries like a loss.
                logger.exception("camera %s: unexpected capture failure", self.config.id)
                self._note_error(f"unexpected capture failure: {exc!r}")
            if self._stop_requested.is_set():
                return
            failed_attempts = 0 if self._session_delivered else failed_attempts + 1
            offline = failed_attempts >= self._offline_after
            self._set_state(CameraState.OFFLINE if offline else CameraState.RECONNECTING)
            delay = backoff_delay(
                failed_attempts,
                self.config.reconnect_min_seconds,
                self.config.reconnect_max_seconds,
                self._rng,
            )
            self._wait_alive(delay)

    def _wait_alive(self, seconds: float) -> None:
        """Wait ``seconds`` or until a stop, renewing the sign of life while waiting."""
        deadline = time.monotonic() + seconds
        while True:
            self._beat = now = time.monotonic()
            if now >= deadline or self._stop_requested.wait(min(deadline - now, _BEAT_SECONDS)):
                return

    def _session(self) -> None:
        """Open the source and pump frames until it is lost (raises) or a stop is requested."""
        reader = self._reader_factory(self.config)
        try:
            reader.open()
            self._pump(reader)
        finally:
            reader.close()

    def _pump(self, reader: FrameReader) -> None:
        stall_timeout = self.config.stall_timeout_seconds
        interval = self._interval
        # A live frame up to a quarter interval early still counts as on time, so a camera
        # running at exactly the configured rate is not decimated by clock jitter.
        tolerance = interval / 4.0
        lag = LiveLag(interval)
        self._stream_size = None
        last_good = next_due = time.monotonic()
        failed_reads = 0
        while not self._stop_requested.is_set():
            self._beat = now = time.monotonic()
            if now - last_good > stall_timeout:
                raise _SourceLostError(f"no usable frame for {stall_timeout:g} s")
            if not reader.live:
                # A paced source gets one read per tick, whether or not the read is usable.
                if now < next_due and self._stop_requested.wait(next_due - now):
                    return
                next_due = self._next_tick(next_due, time.monotonic())
            grabbed = reader.grab()
            waited = time.monotonic() - now
            if not grabbed:
                failed_reads += 1
                self._count_dropped()
                if failed_reads >= MAX_FAILED_READS:
                    raise _SourceLostError(f"{self._description} stopped sending frames")
                if reader.live:
                    self._stop_requested.wait(min(interval, 0.1))
                continue
            failed_reads = 0
            now = time.monotonic()
            if reader.live and (
                now < next_due - tolerance or lag.behind(reader.position(), now, waited)
            ):
                continue
            image = self._conform(reader.retrieve())
            if image is None:
                self._count_dropped()
                continue
            if reader.live:
                next_due = self._next_tick(next_due, now)
            last_good = now
            self._publish(image)

    def _next_tick(self, due: float, now: float) -> float:
        # Never schedule more than one interval of catch-up, so a hiccup causes no burst.
        return max(due + self._interval, now - self._interval)

    def _conform(self, image: object) -> np.ndarray | None:
        """The frame as BGR uint8 at the configured size, or None when it is unusable."""
        if not isinstance(image, np.ndarray) or image.size == 0 or image.dtype != np.uint8:
            return None
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        elif image.ndim != 3 or image.shape[2] != 3:
            return None
        size = (image.shape[1], image.shape[0])
        # The first frame of a session fixes the stream's size; a frame of another size is a
        # decoder glitch. A camera that really changed mode stalls and is reopened at its new size.
        if self._stream_size is None:
            self._stream_size = size
        elif size != self._stream_size:
            return None
        if size != self._size:
            shrinking = size[0] * size[1] > self._size[0] * self._size[1]
            interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
            image = cv2.resize(image, self._size, interpolation=interpolation)
        return image

    def _publish(self, image: np.ndarray) -> None:
        frame = self.slot.put(image, time.time())
        with self._lock:
            self._frames += 1
            self._last_frame_ts = frame.ts
            self._recent.append(frame.monotonic)
        if not self._session_delivered:
            self._session_delivered = True
            self._set_state(CameraState.ONLINE)
        if self._on_frame is None:
            return
        try:
            self._on_frame(frame)
        except Exception as exc:  # noqa: BLE001 - logged (rate-limited) and counted
            self._callback_failed(exc)

    def _callback_failed(self, exc: Exception) -> None:
        with self._lock:
            self._callback_errors += 1
            count = self._callback_errors
        now = time.monotonic()
        if now - self._last_callback_log >= CALLBACK_LOG_INTERVAL_SECONDS:
            self._last_callback_log = now
            logger.error(
                "camera %s: frame callback failed (%d failures so far)",
                self.config.id,
                count,
                exc_info=exc,
            )
