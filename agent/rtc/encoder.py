"""The live encoder of one camera and tier: masked frames in, H.264 access units out.

Every viewer of a camera at a tier shares one :class:`TierEncoder`, a thread that takes the
newest frame from the camera's slot at the tier's rate, gets its masked picture from the
camera's ``CameraPictures`` (the one masker), scales it into the tier's box and converts it to
yuv420p once (OpenCV; no frame in another format ever reaches an encoder, which is where
aiortc's shared colour converter races), and encodes it with libx264: constrained baseline,
``zerolatency``, ``ultrafast``, a keyframe every ``keyframe_seconds``, and the tier's bitrate as
a VBV cap so a 4G viewer's link sees no bursts beyond it. Keyframes asked for (a viewer joined,
fell behind or lost a picture) are made at the next frame, at most one per
``min_forced_keyframe_seconds``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Protocol

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.frame import PictureType

from agent.camera.pictures import FrameLike
from agent.config import ViewerCaps
from agent.errors import KioskError
from agent.rtc.fanout import TICKS_PER_SECOND, TIME_BASE, AccessUnit

log = logging.getLogger(__name__)

# How long the thread waits for a frame before it looks at its stop flag again.
_WAIT_SECONDS = 0.2
# Frames are taken on a grid of the tier's interval; a frame this much of an interval early
# still counts (capture jitter must not halve the rate of a camera running at the tier's fps).
_EARLY_FRACTION = 0.25
# Above 1280x720 at up to 30 fps level 3.1 is not enough.
_LEVEL_31_MAX_PIXELS = 1280 * 720


class EncoderError(KioskError):
    """The live video encoder could not be opened or failed on a frame."""


class FrameSource(Protocol):
    """The camera's latest-frame slot, as the encoder reads it."""

    def latest(self) -> TimedFrame | None: ...

    def wait_newer(self, after_seq: int, timeout: float) -> TimedFrame | None: ...


class TimedFrame(FrameLike, Protocol):
    @property
    def monotonic(self) -> float: ...


class MaskedPictures(Protocol):
    def masked(self, frame: FrameLike) -> npt.NDArray[np.uint8]: ...


def fit_size(width: int, height: int, caps: ViewerCaps) -> tuple[int, int]:
    """The picture size for a tier: the camera's picture scaled down (never up) to fit the
    tier's box with its aspect kept, in even numbers as 4:2:0 needs."""
    scale = min(1.0, caps.width / width, caps.height / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


class FrameEncoder:
    """libx264 for one tier, opened for the size of the first picture (reopened if it changes).
    Not thread-safe: one thread encodes."""

    def __init__(
        self,
        caps: ViewerCaps,
        *,
        keyframe_seconds: float = 2.0,
        preset: str = "ultrafast",
        threads: int = 1,
    ) -> None:
        self._caps = caps
        self._keyframe_seconds = keyframe_seconds
        self._preset = preset
        # One thread: at these sizes x264's slice threads cost more CPU than they save in
        # time (bench/rtc.py), and a Pi has cores to keep for capture. 0 lets x264 choose.
        self._threads = threads
        self._codec: av.VideoCodecContext | None = None
        self._source_size: tuple[int, int] | None = None
        self.size: tuple[int, int] | None = None

    def _open(self, width: int, height: int) -> av.VideoCodecContext:
        out_width, out_height = fit_size(width, height, self._caps)
        bitrate = self._caps.bitrate_kbps * 1000
        try:
            codec = av.CodecContext.create("libx264", "w")
            codec.width = out_width
            codec.height = out_height
            codec.pix_fmt = "yuv420p"
            codec.time_base = TIME_BASE
            codec.framerate = Fraction(self._caps.fps).limit_denominator(1001)
            codec.gop_size = max(1, round(self._keyframe_seconds * self._caps.fps))
            codec.bit_rate = bitrate
            codec.options = {
                "preset": self._preset,
                "tune": "zerolatency",
                "profile": "baseline",
                "level": "31" if out_width * out_height <= _LEVEL_31_MAX_PIXELS else "40",
                "forced-idr": "1",
                "threads": str(self._threads),
                "maxrate": str(bitrate),
                "bufsize": str(bitrate),
            }
            codec.open()
        except av.error.FFmpegError as exc:
            raise EncoderError(f"libx264 could not be opened: {exc}") from exc
        self._codec = codec
        self._source_size = (width, height)
        self.size = (out_width, out_height)
        log.debug("live encoder opened at %dx%d", out_width, out_height)
        return codec

    def encode(
        self, image: npt.NDArray[np.uint8], pts: int, *, keyframe: bool = False
    ) -> list[av.Packet[Any]]:
        """Encode one BGR picture with ``pts`` in 1/90000 s; a keyframe when asked."""
        height, width = image.shape[:2]
        codec = self._codec
        if codec is None or self._source_size != (width, height):
            self.close()
            codec = self._open(width, height)
        out_width, out_height = codec.width, codec.height
        if (out_width, out_height) != (width, height):
            whole = width % out_width == 0 and height % out_height == 0
            image = np.asarray(
                cv2.resize(
                    image,
                    (out_width, out_height),
                    interpolation=cv2.INTER_AREA if whole else cv2.INTER_LINEAR,
                ),
                np.uint8,
            )
        yuv = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), np.uint8)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = pts
        frame.time_base = TIME_BASE
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        try:
            return list(codec.encode(frame))
        except av.error.FFmpegError as exc:
            raise EncoderError(f"libx264 failed on a frame: {exc}") from exc

    def close(self) -> None:
        self._codec = None  # PyAV frees the encoder with its last reference
        self._source_size = None


class TierEncoder:
    """The thread that encodes one camera at one tier for every viewer of it.

    ``publish`` is called in the encoder thread with each access unit (the hub hands it to the
    event loop); ``on_exit`` once, as the thread ends, whatever ended it.
    """

    def __init__(
        self,
        name: str,
        slot: FrameSource,
        pictures: MaskedPictures,
        caps: ViewerCaps,
        *,
        publish: Callable[[AccessUnit], None],
        on_exit: Callable[[], None],
        keyframe_seconds: float = 2.0,
        min_forced_keyframe_seconds: float = 0.25,
    ) -> None:
        self.name = name
        self._slot = slot
        self._pictures = pictures
        self._caps = caps
        self._publish = publish
        self._on_exit = on_exit
        self._min_forced = min_forced_keyframe_seconds
        self._encoder = FrameEncoder(caps, keyframe_seconds=keyframe_seconds)
        self._stopping = threading.Event()
        self._keyframe_wanted = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.frames = 0
        self.forced_keyframes = 0
        self.errors = 0

    @property
    def size(self) -> tuple[int, int] | None:
        return self._encoder.size

    def start(self) -> None:
        self._thread.start()

    def request_keyframe(self) -> None:
        """Thread-safe: the next frame will be a keyframe (or the first one the limit allows)."""
        self._keyframe_wanted.set()

    def stop(self) -> None:
        """Thread-safe: the thread ends within one wait (0.2 s) or the frame in hand."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        log.info("live encoder %s started", self.name)
        try:
            self._encode_until_stopped()
        except Exception:
            log.exception("live encoder %s failed", self.name)
        finally:
            self._encoder.close()
            log.info("live encoder %s stopped after %d frames", self.name, self.frames)
            self._on_exit()

    def _encode_until_stopped(self) -> None:
        interval = 1.0 / self._caps.fps
        next_due = -math.inf
        first_monotonic: float | None = None
        last_pts = -1
        last_forced = -math.inf
        seq = 0
        # The newest frame there is starts the stream at once; later ones are waited for.
        frame = self._slot.latest()
        while not self._stopping.is_set():
            if frame is None or frame.seq <= seq:
                frame = self._slot.wait_newer(seq, _WAIT_SECONDS)
                if frame is None:
                    continue
            seq = frame.seq
            if next_due == -math.inf:
                next_due = frame.monotonic
            if frame.monotonic < next_due - interval * _EARLY_FRACTION:
                frame = None  # the camera runs faster than the tier: skip this one
                continue
            # On the tier's grid; after a gap (a stalled camera) the grid starts again.
            next_due = max(next_due + interval, frame.monotonic)
            if first_monotonic is None:
                first_monotonic = frame.monotonic
            pts = max(last_pts + 1, round((frame.monotonic - first_monotonic) * TICKS_PER_SECOND))
            last_pts = pts
            now = time.monotonic()
            force = self._keyframe_wanted.is_set() and now - last_forced >= self._min_forced
            if force:
                self._keyframe_wanted.clear()
                last_forced = now
                self.forced_keyframes += 1
            self._encode(frame, pts, force)
            frame = None

    def _encode(self, frame: TimedFrame, pts: int, keyframe: bool) -> None:
        try:
            packets = self._encoder.encode(self._pictures.masked(frame), pts, keyframe=keyframe)
        except EncoderError as exc:
            self.errors += 1
            if self.errors == 1 or self.errors % 100 == 0:
                log.warning("live encoder %s: %s (%d errors)", self.name, exc, self.errors)
            self._encoder.close()  # a fresh encoder for the next frame, starting at a keyframe
            return
        self.frames += 1
        for packet in packets:
            if packet.is_keyframe:
                self._keyframe_wanted.clear()  # a natural keyframe serves whoever asked
            self._publish(AccessUnit(packet, packet.is_keyframe, frame.monotonic))
