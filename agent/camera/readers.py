"""Frame readers: one per kind of camera source, each hiding its library behind grab/retrieve.

A reader is used by one capture thread only. ``grab`` advances to the next frame (cheap: no colour
conversion), ``retrieve`` returns that frame as an image, so a live source faster than the
configured rate is decimated without paying for frames nobody keeps. Library errors become
:class:`~agent.errors.CameraError`; the source string's credentials never appear in a message.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import threading
from typing import Any, Protocol

import cv2
import numpy as np

from agent.camera.source import FileSource, RtspSource, SimSource, Source, UsbSource
from agent.config import CameraConfig
from agent.errors import CameraError

logger = logging.getLogger(__name__)

# OpenCV's FFmpeg backend reads its demuxer options from this variable when a capture opens.
FFMPEG_OPTIONS_VARIABLE = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
# Over UDP a lossy link shows up as smeared grey frames; TCP keeps each frame whole or absent.
RTSP_FFMPEG_OPTIONS = "rtsp_transport;tcp"
_environment_lock = threading.Lock()


class SourceEndedError(CameraError):
    """A file or finite scene reached its end and the camera is configured not to loop."""


class SourceUnusableError(CameraError):
    """The source can never work as configured (unknown scene, bad option); retrying is useless."""


class FrameReader(Protocol):
    """What a capture thread needs from a source."""

    @property
    def live(self) -> bool:
        """True when the source paces itself (a camera); False when the caller must pace reads."""
        ...

    def open(self) -> None:
        """Connect; raises CameraError (SourceUnusableError when retrying cannot help)."""
        ...

    def grab(self) -> bool:
        """Advance to the next frame; False when none came; SourceEndedError at the end."""
        ...

    def retrieve(self) -> np.ndarray | None:
        """The grabbed frame as a new image array, or None when it cannot be decoded."""
        ...

    def position(self) -> float | None:
        """Stream time of the grabbed frame in seconds, None when the source has no clock."""
        ...

    def close(self) -> None:
        """Release the source; safe to call more than once and after a failed open."""
        ...


class _OpenCvReader:
    """Shared part of the readers built on ``cv2.VideoCapture``."""

    def __init__(self, description: str) -> None:
        self._description = description
        self._capture: cv2.VideoCapture | None = None

    def _create_capture(self) -> cv2.VideoCapture:
        raise NotImplementedError

    def open(self) -> None:
        self.close()
        try:
            capture = self._create_capture()
        except cv2.error as exc:
            raise CameraError(f"cannot open {self._description}: {exc}") from exc
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"cannot open {self._description}")
        self._capture = capture

    def _require_capture(self) -> cv2.VideoCapture:
        if self._capture is None:
            raise CameraError(f"{self._description} is not open")
        return self._capture

    def grab(self) -> bool:
        capture = self._require_capture()
        try:
            return bool(capture.grab())
        except cv2.error as exc:
            raise CameraError(f"cannot read {self._description}: {exc}") from exc

    def retrieve(self) -> np.ndarray | None:
        capture = self._require_capture()
        try:
            ok, image = capture.retrieve()
        except cv2.error as exc:
            logger.debug("undecodable frame from %s: %s", self._description, exc)
            return None
        return image if ok else None

    def position(self) -> float | None:
        if self._capture is None:
            return None
        milliseconds = float(self._capture.get(cv2.CAP_PROP_POS_MSEC))
        return milliseconds / 1000.0 if math.isfinite(milliseconds) and milliseconds > 0 else None

    def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()


class UsbReader(_OpenCvReader):
    """A V4L2 camera (``usb:0`` or ``/dev/video0``); asks the driver for the configured mode."""

    live = True

    def __init__(self, source: UsbSource, config: CameraConfig) -> None:
        super().__init__(source.describe())
        self._device = source.device
        self._config = config

    def _create_capture(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self._device, cv2.CAP_V4L2)
        if capture.isOpened():
            # The driver may pick the nearest mode it supports; the worker resizes what comes.
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._config.resolution.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._config.resolution.height)
            capture.set(cv2.CAP_PROP_FPS, self._config.fps)
            # A one-frame driver queue keeps latency at one frame when the thread falls behind.
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return capture


def _ensure_rtsp_over_tcp() -> None:
    # Process-wide and read by OpenCV at each open; an operator's own setting is kept.
    with _environment_lock:
        os.environ.setdefault(FFMPEG_OPTIONS_VARIABLE, RTSP_FFMPEG_OPTIONS)


class RtspReader(_OpenCvReader):
    """An IP camera over RTSP (TCP), with open and read timeouts so a dead camera cannot hang us."""

    live = True

    def __init__(self, source: RtspSource, config: CameraConfig) -> None:
        super().__init__(source.describe())
        self._url = source.url
        self._open_timeout_ms = int(config.open_timeout_seconds * 1000)
        # A read that waits longer than the stall timeout would only delay the reopen.
        self._read_timeout_ms = int(config.stall_timeout_seconds * 1000)

    def _create_capture(self) -> cv2.VideoCapture:
        _ensure_rtsp_over_tcp()
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            self._open_timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            self._read_timeout_ms,
        ]
        return cv2.VideoCapture(self._url, cv2.CAP_FFMPEG, params)


class FileReader(_OpenCvReader):
    """A video file replayed in real time: each tick of the configured rate advances by the
    file's own frame rate divided by the configured one, so a 30 fps file captured at 15 fps
    skips every other frame instead of playing in slow motion. At the end it starts over when
    ``loop`` is set and raises SourceEndedError otherwise."""

    live = False

    def __init__(self, source: FileSource, config: CameraConfig) -> None:
        super().__init__(source.describe())
        self._path = source.path
        self._loop = config.loop
        self._target_fps = config.fps
        self._step = 1.0
        self._credit = 0.0
        self._frames_since_open = 0

    def _create_capture(self) -> cv2.VideoCapture:
        if not self._path.is_file():
            raise CameraError(f"{self._description}: no such file")
        return cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)

    def open(self) -> None:
        super().open()
        file_fps = float(self._require_capture().get(cv2.CAP_PROP_FPS))
        valid = math.isfinite(file_fps) and file_fps > 0
        self._step = max(1.0, file_fps / self._target_fps) if valid else 1.0
        # The first tick takes exactly one frame, so playback starts at the file's first frame.
        self._credit = 1.0 - self._step
        self._frames_since_open = 0

    def _grab_one(self) -> bool:
        if super().grab():
            self._frames_since_open += 1
            return True
        if self._frames_since_open == 0:
            raise CameraError(f"{self._description} has no readable frame")
        if not self._loop:
            raise SourceEndedError(f"{self._description}: end of file")
        # Reopening is the one way back to the start that every container supports.
        super().open()
        self._frames_since_open = 0
        return self._grab_one()

    def grab(self) -> bool:
        self._credit += self._step
        grabbed = False
        while self._credit >= 1.0:
            self._credit -= 1.0
            grabbed = self._grab_one()
        return grabbed


class SimReader:
    """Frames rendered by a synthetic scene (``simulators.scenes``) at the configured size."""

    live = False

    def __init__(self, source: SimSource, config: CameraConfig) -> None:
        self._source = source
        self._config = config
        self._scene: Any = None
        self._index = -1

    def open(self) -> None:
        if self._source.options:
            unknown = ", ".join(sorted(self._source.options))
            raise SourceUnusableError(f"{self._source.describe()}: unknown option(s) {unknown}")
        try:
            scenes = importlib.import_module("simulators.scenes")
        except ImportError as exc:
            raise SourceUnusableError("sim sources need the simulators package") from exc
        known: dict[str, str] = scenes.SCENES
        name = self._source.scene
        if name not in known:
            choices = ", ".join(sorted(known)) or "none"
            raise SourceUnusableError(f"unknown sim scene {name!r} (known scenes: {choices})")
        resolution = self._config.resolution
        try:
            self._scene = scenes.make_scene(
                name,
                resolution.width,
                resolution.height,
                seed=self._source.seed,
                fps=self._config.fps,
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise SourceUnusableError(f"cannot build sim scene {name!r}: {exc}") from exc
        self._index = -1

    def grab(self) -> bool:
        if self._scene is None:
            raise CameraError(f"{self._source.describe()} is not open")
        self._index += 1
        total: int | None = self._scene.num_frames
        if total is not None and self._index >= total:
            if not self._config.loop:
                raise SourceEndedError(f"{self._source.describe()}: end of scene")
            self._index = 0
        return True

    def retrieve(self) -> np.ndarray | None:
        image, _truth = self._scene.render(self._index)
        if not isinstance(image, np.ndarray):
            return None
        # The slot needs an array nobody else writes; a scene's internal buffer would be shared.
        return image if image.flags.owndata else image.copy()

    def position(self) -> float | None:
        return None

    def close(self) -> None:
        self._scene = None


def make_reader(config: CameraConfig) -> FrameReader:
    """The reader for a camera's source (not yet opened)."""
    source: Source = config.parsed_source
    if isinstance(source, UsbSource):
        return UsbReader(source, config)
    if isinstance(source, RtspSource):
        return RtspReader(source, config)
    if isinstance(source, FileSource):
        return FileReader(source, config)
    return SimReader(source, config)
