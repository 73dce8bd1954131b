"""The latest-frame slot: how frames cross from a capture thread to everyone who reads them.

A slot holds exactly one frame. ``put`` overwrites it, so a slow reader skips frames instead of
making memory grow; readers that want every new frame wait for a newer sequence number: threads
on a condition (``wait_newer``), coroutines on a future the capture thread resolves through
their loop (``next_frame``), so a live viewer costs no thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        # Coroutines waiting for a newer frame, each with the loop it waits on; put() hands the
        # list over and resolves them after releasing the lock.
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def put(self, image: np.ndarray, ts: float) -> Frame:
        """Publish ``image`` as the newest frame; the slot owns it from now on (read-only)."""
        image.flags.writeable = False
        with self._changed:
            self._seq += 1
            frame = Frame(image=image, seq=self._seq, ts=ts, monotonic=time.monotonic())
            self._frame = frame
            self._changed.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody to wake
                loop.call_soon_threadsafe(_wake, future)
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

    async def next_frame(self, after_seq: int) -> Frame:
        """The newest frame with ``seq > after_seq``, waiting as long as it takes (wrap in
        ``asyncio.timeout`` for a bound); cancelling the wait leaves nothing behind."""
        loop = asyncio.get_running_loop()
        while True:
            with self._changed:
                frame = self._frame
                if frame is not None and frame.seq > after_seq:
                    return frame
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            try:
                await future
            finally:
                if future.cancelled():
                    with self._changed:
                        if (loop, future) in self._waiters:
                            self._waiters.remove((loop, future))

    def waiting(self) -> int:
        """Coroutines waiting in ``next_frame`` (for health and tests)."""
        with self._changed:
            return len(self._waiters)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
