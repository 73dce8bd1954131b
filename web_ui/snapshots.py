"""JPEG snapshots of a camera's latest frame, with its privacy masks blacked out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import numpy.typing as npt

from agent.config import Polygon
from agent.errors import CameraError

JPEG_QUALITY = 80


def black_out(image: npt.NDArray[np.uint8], masks: Sequence[Polygon]) -> npt.NDArray[np.uint8]:
    """A copy of ``image`` with every privacy mask filled black (the original is shared)."""
    if not masks:
        return image
    height, width = image.shape[:2]
    masked = image.copy()
    polygons = [
        np.array(
            [[round(x * (width - 1)), round(y * (height - 1))] for x, y in mask.points],
            dtype=np.int32,
        )
        for mask in masks
    ]
    cv2.fillPoly(masked, polygons, (0, 0, 0))
    return masked


def encode_jpeg(image: npt.NDArray[np.uint8], masks: Sequence[Polygon] = ()) -> bytes:
    ok, buffer = cv2.imencode(
        ".jpg", black_out(image, masks), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise CameraError("the frame could not be encoded as JPEG")
    return bytes(buffer.tobytes())


class ViewAuditThrottle:
    """Decides when a camera view is worth a new audit entry.

    The status page refreshes snapshots every few seconds; one entry per viewer and camera per
    ``window_seconds`` records who watched what without flooding the audit log.
    """

    def __init__(
        self, window_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def should_record(self, viewer: str, camera_id: str) -> bool:
        now = self._clock()
        with self._lock:
            last = self._last.get((viewer, camera_id))
            if last is not None and now - last < self._window:
                return False
            self._last[(viewer, camera_id)] = now
            if len(self._last) > 10_000:  # bound memory; forgetting only adds an entry
                self._last.clear()
                self._last[(viewer, camera_id)] = now
            return True
