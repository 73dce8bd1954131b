"""The latest-frame slot: newest frame wins, readers can wait, memory never grows."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc

import numpy as np
import pytest

from agent.camera.slot import FrameSlot
from tests.fixtures.loops import run_in_own_loop


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


# -- waiting from a coroutine: no thread per reader --------------------------------------------


def test_next_frame_returns_at_once_when_a_newer_frame_exists() -> None:
    slot = FrameSlot()
    slot.put(_image(1), ts=1.0)
    slot.put(_image(2), ts=2.0)

    async def read() -> int:
        return (await slot.next_frame(0)).seq

    assert run_in_own_loop(read) == 2
    assert slot.waiting() == 0


def test_next_frame_wakes_when_the_capture_thread_puts() -> None:
    slot = FrameSlot()
    slot.put(_image(1), ts=1.0)

    async def read() -> list[int]:
        readers = [asyncio.create_task(slot.next_frame(1)) for _ in range(3)]
        while slot.waiting() < 3:
            await asyncio.sleep(0.001)
        putter = threading.Thread(target=slot.put, args=(_image(2), 2.0))
        putter.start()
        frames = await asyncio.gather(*readers)
        putter.join()
        return [frame.seq for frame in frames]

    assert run_in_own_loop(read) == [2, 2, 2]
    assert slot.waiting() == 0


def test_a_cancelled_wait_leaves_no_waiter_behind() -> None:
    slot = FrameSlot()

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await slot.next_frame(0)

    run_in_own_loop(give_up)
    assert slot.waiting() == 0
    slot.put(_image(1), ts=1.0)  # nothing to wake, nothing to fail


def test_a_waiter_whose_loop_has_closed_does_not_break_put() -> None:
    slot = FrameSlot()
    abandoned: list[asyncio.Task[object]] = []

    def wait_then_close_the_loop() -> None:
        # In a thread of its own: the test session may have a loop running in this one.
        loop = asyncio.new_event_loop()
        waiter = loop.create_task(slot.next_frame(0))
        loop.run_until_complete(asyncio.sleep(0))  # the waiter registers, then its loop ends
        loop.close()
        waiter._log_destroy_pending = False  # type: ignore[attr-defined]  # abandoned on purpose
        abandoned.append(waiter)

    thread = threading.Thread(target=wait_then_close_the_loop)
    thread.start()
    thread.join()
    assert slot.waiting() == 1
    frame = slot.put(_image(1), ts=1.0)
    assert frame.seq == 1 and slot.waiting() == 0
