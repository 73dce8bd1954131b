"""The latest-frame slot: newest frame wins, readers can wait, memory never grows."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

from agent.camera.slot import FrameSlot


def _image(value: int, size: int = 8) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_empty_slot_has_no_frame() -> None:
    slot = FrameSlot()
    assert slot.latest() is None
    assert slot.wait_newer(0, timeout=0.01) is None


def test_put_numbers_frames_and_latest_returns_the_newest() -> None:
    slot = FrameSlot()
    first = slot.put(_image(1), ts=100.0)
    second = slot.put(_image(2), ts=101.0)
    assert (first.seq, second.seq) == (1, 2)
    latest = slot.latest()
    assert latest is second
    assert latest.ts == 101.0
    assert int(latest.image[0, 0, 0]) == 2
    assert latest.monotonic >= first.monotonic


def test_published_image_is_read_only() -> None:
    slot = FrameSlot()
    frame = slot.put(_image(5), ts=1.0)
    with pytest.raises(ValueError, match="read-only"):
        frame.image[0, 0, 0] = 0


def test_wait_newer_returns_at_once_when_a_newer_frame_exists() -> None:
    slot = FrameSlot()
    slot.put(_image(1), ts=1.0)
    slot.put(_image(2), ts=2.0)
    frame = slot.wait_newer(0, timeout=0.01)
    assert frame is not None and frame.seq == 2


def test_wait_newer_gives_none_when_nothing_newer_arrives() -> None:
    slot = FrameSlot()
    slot.put(_image(1), ts=1.0)
    assert slot.wait_newer(1, timeout=0.05) is None


def test_wait_newer_wakes_when_another_thread_puts() -> None:
    slot = FrameSlot()
    slot.put(_image(1), ts=1.0)
    waiting = threading.Event()
    got: list[int] = []

    def reader() -> None:
        waiting.set()
        frame = slot.wait_newer(1, timeout=30.0)
        got.append(frame.seq if frame else -1)

    thread = threading.Thread(target=reader)
    thread.start()
    waiting.wait(5.0)
    slot.put(_image(2), ts=2.0)
    thread.join(30.0)
    assert got == [2]


def test_memory_stays_bounded_when_nobody_reads() -> None:
    slot = FrameSlot()
    frame_bytes = 64 * 64 * 3
    tracemalloc.start()
    try:
        for index in range(50):
            slot.put(_image(index % 256, size=64), ts=float(index))
        settled, _ = tracemalloc.get_traced_memory()
        for index in range(2000):
            slot.put(_image(index % 256, size=64), ts=float(index))
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A queue would hold 2000 more frames (about 24 MB); the slot holds one.
    assert after - settled < 4 * frame_bytes
    assert slot.latest() is not None and slot.latest().seq == 2050  # type: ignore[union-attr]
