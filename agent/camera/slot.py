"""The latest-frame slot: how frames cross from a capture thread to everyone who reads them.

A slot holds exactly one frame. ``put`` overwrites it, so a slow reader skips frames instead of
making memory grow; readers that want every new frame wait on a condition for a newer sequence
number.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured image. The image is read-only because every consumer shares the same array."""

    image: np.ndarray  # HxWx3 BGR uint8, at the camera's configured resolution
    seq: int  # 1, 2, 3 … per camera
    ts: float  # wall-clock capture time (time.time())
    monotonic: float  # time.monotonic() at capture


class FrameSlot:
    """A lock, the newest frame, its sequence number and timestamp; overwrites, never queues."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._frame: Frame | None = None
        self._seq = 0

    def put(self, image: np.ndarray, ts: float) -> Frame:
        """Publish ``image`` as the newest frame; the slot owns it from now on (read-only)."""
        image.flags.writeable = False
        with self._changed:
            self._seq += 1
            frame = Frame(image=image, seq=self._seq, ts=ts, monotonic=time.monotonic())
            self._frame = frame
            self._changed.notify_all()
        return frame

    def latest(self) -> Frame | None:
        with self._changed:
            return self._frame

    def wait_newer(self, after_seq: int, timeout: float) -> Frame | None:
        """The newest frame with ``seq > after_seq``, waiting up to ``timeout`` s; else None."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._frame is not None and self._frame.seq > after_seq, timeout
            )
            frame = self._frame
        if frame is None or frame.seq <= after_seq:
            return None
        return frame
