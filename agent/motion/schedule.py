"""Arm schedules: daily windows such as ``20:00-06:00`` in the kiosk's local time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time


def _parse_clock(text: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit()):
        raise ValueError(f"{text!r} is not a HH:MM time")
    return time(int(hours), int(minutes))


def parse_window(window: str) -> tuple[time, time]:
    """``"20:00-06:00"`` → (20:00, 06:00); raises ValueError for anything else."""
    start, sep, end = window.partition("-")
    if not sep:
        raise ValueError(f"{window!r} must look like 20:00-06:00")
    return _parse_clock(start), _parse_clock(end)


def in_window(window: str, moment: time) -> bool:
    """Whether ``moment`` falls in ``window``; a window whose end is before its start crosses
    midnight, and a window whose start equals its end covers the whole day. The start minute is
    inside the window, the end minute is not."""
    start, end = parse_window(window)
    if start == end:
        return True
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


def is_armed(schedule: Sequence[str], local_time: datetime | time) -> bool:
    """Whether a camera with this arm schedule is armed at ``local_time``; empty = always."""
    if not schedule:
        return True
    moment = local_time.time() if isinstance(local_time, datetime) else local_time
    moment = moment.replace(tzinfo=None)
    return any(in_window(window, moment) for window in schedule)
