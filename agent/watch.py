"""Per-camera glue between the capture thread, the motion detector, the event tracker and the
event store.

``on_frame`` runs in the camera's capture thread: detection is cheap enough (about a millisecond
per frame) to keep up with the camera, a snapshot is encoded only when an event starts or its
peak improves, and clips are written by a short-lived worker thread so the camera never waits on
the disk. A bad frame or a failing store is logged once and skipped; it never stops the capture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from agent.camera.pictures import still_picture
from agent.errors import CameraError, StoreError, ValidationError
from agent.motion import EventConfig, FrameError, MotionConfig, MotionDetector, MotionResult
from agent.motion.frames import check_frame
from agent.motion.regions import PrivacyMasker
from agent.motion.schedule import is_armed
from agent.motion.tracker import EventTracker, EventTransition, new_event_id
from agent.store.events import EventStore

if TYPE_CHECKING:
    from agent.camera.slot import Frame
    from agent.config import CameraConfig

log = logging.getLogger(__name__)

Image = npt.NDArray[Any]
MotionCallback = Callable[[str, bool], None]

_CLIP_MAX_WIDTH = 640  # clips are for a quick look; full resolution would triple the memory
_CLIP_MAX_FPS = 8.0
_MIN_FRAME_SIDE = 16


class CameraWatch:
    """Motion detection, arming and event recording for one camera."""

    def __init__(
        self,
        camera: CameraConfig,
        motion: MotionConfig,
        events: EventConfig,
        store: EventStore,
        *,
        clock_tz: tzinfo | None = None,
        on_motion: MotionCallback | None = None,
        id_factory: Callable[[], str] = new_event_id,
        masker: PrivacyMasker | None = None,
    ) -> None:
        self.camera = camera
        self.camera_id = camera.id
        self.motion_config = motion
        self.event_config = events
        self.store = store
        self.clock_tz = clock_tz
        self.on_motion = on_motion
        # Shared with the camera's other picture readers (agent.camera.pictures).
        self.masker = masker or PrivacyMasker(camera.privacy_masks)
        self.tracker = EventTracker(camera.id, events, id_factory=id_factory)
        self._detector: MotionDetector | None = None
        self._sensitivity = motion.sensitivity
        self._manual_armed = camera.armed
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._last_result: MotionResult | None = None
        self._peak_image: Image | None = None
        self._peak_written = False
        self._clip_fps = min(float(camera.fps), _CLIP_MAX_FPS)
        self._clip_step = 1.0 / self._clip_fps
        pre_roll = max(1, round(events.pre_roll_seconds * self._clip_fps))
        self._pre_roll: deque[Image] = deque(maxlen=pre_roll)
        self._last_clip_ts = float("-inf")
        self._clip: list[Image] | None = None
        self._clip_event: tuple[str, float] | None = None
        self._clip_limit = max(1, round(events.clip_seconds * self._clip_fps)) + pre_roll
        self._writer: threading.Thread | None = None
        self._frame_problem: str | None = None
        self._store_problem: str | None = None

    # -- commands (any thread) ------------------------------------------------------------------

    def arm(self) -> None:
        with self._lock:
            changed = not self._manual_armed
            self._manual_armed = True
        if changed:
            log.info("camera %s armed", self.camera_id)

    def disarm(self) -> None:
        with self._lock:
            changed = self._manual_armed
            self._manual_armed = False
        if changed:
            log.info("camera %s disarmed", self.camera_id)

    @property
    def armed(self) -> bool:
        """Armed by command (or config) and inside the arm schedule right now."""
        return self.armed_at(time.time())

    def armed_at(self, ts: float) -> bool:
        if not self._manual_armed:
            return False
        local = (
            datetime.fromtimestamp(ts, self.clock_tz)
            if self.clock_tz
            else (datetime.fromtimestamp(ts))
        )
        return is_armed(self.camera.arm_schedule, local)

    def set_sensitivity(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValidationError("sensitivity", "must be between 0 and 1")
        self._sensitivity = value
        detector = self._detector
        if detector is not None:
            detector.set_sensitivity(value)
        log.info("camera %s sensitivity set to %.2f", self.camera_id, value)

    @property
    def sensitivity(self) -> float:
        return self._sensitivity

    @property
    def motion_active(self) -> bool:
        return self.tracker.active

    @property
    def last_result(self) -> MotionResult | None:
        return self._last_result

    def snapshot_now(self) -> Path:
        """Write the latest frame (privacy masks applied) as a JPEG; returns its path."""
        frame = self._latest
        if frame is None:
            raise CameraError(f"camera {self.camera_id} has no frame yet")
        picture = still_picture(frame, self.masker)
        return self.store.write_snapshot_jpeg(self.camera_id, picture.jpeg, picture.ts)

    def close(self, ts: float | None = None) -> None:
        """End an open event and wait for a clip being written (camera stopping)."""
        for transition in self.tracker.close(time.time() if ts is None else ts):
            self._handle(transition)
        writer = self._writer
        if writer is not None:
            writer.join(timeout=30)

    # -- frame path (capture thread) ------------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        self._latest = frame
        try:
            result = self._detect(frame)
        except FrameError as exc:
            if self._frame_problem != exc.message:
                log.warning("camera %s: frame skipped: %s", self.camera_id, exc.message)
                self._frame_problem = exc.message
            return
        if self._frame_problem is not None:
            log.info("camera %s: frames usable again", self.camera_id)
            self._frame_problem = None
        self._last_result = result
        self._remember_for_clip(frame)
        transitions = self.tracker.update(
            frame.ts,
            motion=result.motion,
            score=result.score,
            boxes=result.boxes,
            zones=result.zones,
            armed=self.armed_at(frame.ts),
        )
        if self.tracker.new_peak:
            self._peak_image = frame.image
            self._peak_written = False
        for transition in transitions:
            self._handle(transition)

    def _detect(self, frame: Frame) -> MotionResult:
        image = frame.image
        if not isinstance(image, np.ndarray) or image.ndim < 2:
            raise FrameError("not an image")
        size = (int(image.shape[1]), int(image.shape[0]))
        # Check the frame on its own terms before a size change can rebuild the detector.
        check_frame(image, *size)
        if min(size) < _MIN_FRAME_SIDE:
            raise FrameError(f"{size[0]}x{size[1]} is too small to analyse")
        detector = self._detector
        if detector is None or detector.frame_size != size:
            # First frame, or the camera came back at another resolution.
            detector = MotionDetector(
                self.motion_config.model_copy(update={"sensitivity": self._sensitivity}),
                size,
                zones=self.camera.zones,
                privacy_masks=self.camera.privacy_masks,
            )
            self._detector = detector
        return detector.detect(image, timestamp=frame.ts)

    def _handle(self, transition: EventTransition) -> None:
        snapshot = None
        if self._peak_image is not None and (transition.kind == "start" or not self._peak_written):
            snapshot = self.masker.apply(self._peak_image)
            self._peak_written = True
        try:
            self.store.record(transition, snapshot=snapshot)
            if self._store_problem is not None:
                log.info("camera %s: events are recorded again", self.camera_id)
                self._store_problem = None
        except StoreError as exc:
            if self._store_problem != str(exc):
                log.error("camera %s: event not recorded: %s", self.camera_id, exc)
                self._store_problem = str(exc)
        if transition.kind == "start":
            self._start_clip(transition)
            self._notify(True)
        elif transition.kind == "end":
            self._finish_clip()
            self._peak_image = None
            self._notify(False)

    def _notify(self, active: bool) -> None:
        if self.on_motion is None:
            return
        try:
            self.on_motion(self.camera_id, active)
        except Exception:  # a broken listener must not stop the camera
            log.exception("camera %s: motion callback failed", self.camera_id)

    # -- clips ----------------------------------------------------------------------------------

    def _remember_for_clip(self, frame: Frame) -> None:
        if self.event_config.clip_seconds <= 0 or frame.ts - self._last_clip_ts < self._clip_step:
            return
        self._last_clip_ts = frame.ts
        image = frame.image
        width = image.shape[1]
        if width > _CLIP_MAX_WIDTH:
            height = round(image.shape[0] * _CLIP_MAX_WIDTH / width)
            image = cv2.resize(image, (_CLIP_MAX_WIDTH, height), interpolation=cv2.INTER_AREA)
        if self.masker.active:
            image = self.masker.apply(image)
        self._pre_roll.append(image)
        if self._clip is not None:
            self._clip.append(image)
            if len(self._clip) >= self._clip_limit:
                self._finish_clip()

    def _start_clip(self, transition: EventTransition) -> None:
        if self.event_config.clip_seconds <= 0 or self._clip is not None:
            return
        self._clip = list(self._pre_roll)
        self._clip_event = (transition.event_id, transition.started_at)

    def _finish_clip(self) -> None:
        frames, event = self._clip, self._clip_event
        self._clip, self._clip_event = None, None
        if not frames or event is None:
            return
        if self._writer is not None and self._writer.is_alive():
            log.warning(
                "camera %s: clip of event %s skipped, still writing the last one",
                self.camera_id,
                event[0],
            )
            return
        self._writer = threading.Thread(
            target=self._write_clip,
            args=(event[0], event[1], frames),
            name=f"clip-{self.camera_id}",
            daemon=True,
        )
        self._writer.start()

    def _write_clip(self, event_id: str, started_at: float, frames: list[Image]) -> None:
        try:
            self.store.write_clip(self.camera_id, event_id, started_at, frames, self._clip_fps)
        except StoreError as exc:
            log.error("camera %s: clip of event %s not written: %s", self.camera_id, event_id, exc)
