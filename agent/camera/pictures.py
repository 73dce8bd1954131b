"""The pictures of a camera that leave the agent, all made one way.

Event snapshots, clips, the remote snapshot command, the web UI and live video take their
pictures through here: the camera's privacy masks blacked out by its one ``PrivacyMasker``
(agent.motion.regions), and a still encoded by one JPEG encoder. A second way of masking drifts
from the first: one did, and left a one-pixel rim of the masked area visible in the web
snapshots. Live video (every encoder tier and the MJPEG fallback) shares one masked copy per
frame, so masking costs once per frame however many read it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from agent.errors import CameraError
from agent.motion.regions import PrivacyMasker

JPEG_QUALITY = 85

Image = npt.NDArray[Any]


class FrameLike(Protocol):
    @property
    def image(self) -> npt.NDArray[np.uint8]: ...

    @property
    def seq(self) -> int: ...

    @property
    def ts(self) -> float: ...


class SlotLike(Protocol):
    def latest(self) -> FrameLike | None: ...


@dataclass(frozen=True)
class Picture:
    """A masked still: JPEG bytes and the sequence number and capture time of its frame."""

    jpeg: bytes
    seq: int
    ts: float


def encode_jpeg(image: Image) -> bytes:
    """The one still encoder; raises CameraError when OpenCV cannot encode the array."""
    try:
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    except cv2.error as exc:
        raise CameraError(f"the frame could not be encoded as JPEG: {exc}") from exc
    if not ok:
        raise CameraError("the frame could not be encoded as JPEG")
    return bytes(buffer.tobytes())


def still_picture(frame: FrameLike, masker: PrivacyMasker) -> Picture:
    return Picture(jpeg=encode_jpeg(masker.apply(frame.image)), seq=frame.seq, ts=frame.ts)


class CameraPictures:
    """The masked pictures of one camera for readers outside the frame path (web UI, live)."""

    def __init__(self, slot: SlotLike, masker: PrivacyMasker) -> None:
        self._slot = slot
        self.masker = masker
        self._lock = threading.Lock()
        self._masked: tuple[int, Image] | None = None  # seq, masked image (read-only)
        self._still: Picture | None = None

    def latest(self) -> Picture | None:
        frame = self._slot.latest()
        return None if frame is None else still_picture(frame, self.masker)

    def masked(self, frame: FrameLike) -> Image:
        """``frame``'s image with the privacy masks blacked out, read-only and shared: the live
        encoders of every tier and the MJPEG stills of one frame get the same copy. A camera
        without masks gives its frame's own (read-only) image, with no copy at all."""
        if not self.masker.active:
            return frame.image
        with self._lock:
            if self._masked is not None and self._masked[0] == frame.seq:
                return self._masked[1]
            image = self.masker.apply(frame.image)
            image.flags.writeable = False
            self._masked = (frame.seq, image)
            return image

    def still(self, frame: FrameLike) -> Picture:
        """A masked JPEG of ``frame`` through the shared masked copy, encoded once however many
        MJPEG viewers (the live fallback) ask for the same frame."""
        image = self.masked(frame)
        with self._lock:
            if self._still is not None and self._still.seq == frame.seq:
                return self._still
            self._still = Picture(jpeg=encode_jpeg(image), seq=frame.seq, ts=frame.ts)
            return self._still
