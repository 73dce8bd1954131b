"""A route's schedule: daily time windows in the kiosk's local time (``22:00-23:00``).

A window may cross midnight (``23:30-00:30`` ends the next day). Windows of one schedule may
not overlap, so a moment falls in at most one window and a round started then belongs to it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from agent.errors import ValidationError

MAX_WINDOWS = 12
# A round is a look at a few cameras; a window longer than this is a typo (22:00-21:00).
MAX_WINDOW = timedelta(hours=12)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_SEPARATORS = re.compile(r"[,，;；\s]+")
_DAY = timedelta(days=1)


@dataclass(frozen=True, order=True)
class Window:
    """One daily window; ``end`` at or before ``start`` means it ends the next day."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    @property
    def length(self) -> timedelta:
        minutes = _minutes(self.end) - _minutes(self.start)
        return timedelta(minutes=minutes if minutes > 0 else minutes + 24 * 60)

    def on(self, day: date, tz: tzinfo) -> Occurrence:
        """The window that opens on local ``day``, as UTC times."""
        start = datetime.combine(day, self.start, tz)
        end = datetime.combine(day + _DAY if self.crosses_midnight else day, self.end, tz)
        return Occurrence(self, start.astimezone(UTC), end.astimezone(UTC))


@dataclass(frozen=True)
class Occurrence:
    """A window on one day: from ``start`` to ``end`` (UTC, aware)."""

    window: Window
    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _clock(text: str) -> time:
    match = _CLOCK.match(text.strip())
    if match is None:
        raise ValidationError("schedule", "patrol.schedule.format")
    return time(int(match[1]), int(match[2]))


def parse_window(text: str) -> Window:
    start, dash, end = text.replace("–", "-").replace("—", "-").partition("-")
    if not dash:
        raise ValidationError("schedule", "patrol.schedule.format")
    window = Window(_clock(start), _clock(end))
    if window.start == window.end:
        raise ValidationError("schedule", "patrol.schedule.empty_window")
    if window.length > MAX_WINDOW:
        raise ValidationError("schedule", "patrol.schedule.too_long")
    return window


def parse_schedule(text: str | Iterable[str]) -> tuple[Window, ...]:
    """``"22:00-23:00, 01:00-02:00"`` (commas, semicolons, spaces or new lines between) or a
    list of such windows, sorted by start; blank is a route walked only when someone chooses.
    Raises ValidationError("schedule", code) for a malformed, empty, too long or overlapping
    window."""
    parts = _SEPARATORS.split(text) if isinstance(text, str) else list(text)
    windows = sorted(parse_window(part) for part in parts if part.strip())
    if len(windows) > MAX_WINDOWS:
        raise ValidationError("schedule", "patrol.schedule.too_many")
    _check_overlap(windows)
    return tuple(windows)


def _check_overlap(windows: Sequence[Window]) -> None:
    # Minutes of a day on a circle: each window covers [start, start + length).
    spans = sorted(
        (_minutes(w.start), _minutes(w.start) + int(w.length.total_seconds()) // 60)
        for w in windows
    )
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        if next_start < end:
            raise ValidationError("schedule", "patrol.schedule.overlap")
    if len(spans) > 1 and spans[-1][1] > spans[0][0] + 24 * 60:
        raise ValidationError("schedule", "patrol.schedule.overlap")


def format_schedule(windows: Iterable[Window]) -> str:
    return ", ".join(str(window) for window in windows)


def occurrences(
    windows: Iterable[Window], since: datetime, until: datetime, tz: tzinfo
) -> list[Occurrence]:
    """Every window that opens in ``[since, until)`` (aware times), oldest first."""
    first = since.astimezone(tz).date() - _DAY
    last = until.astimezone(tz).date()
    found: list[Occurrence] = []
    day = first
    while day <= last:
        for window in windows:
            occurrence = window.on(day, tz)
            if since <= occurrence.start < until:
                found.append(occurrence)
        day += _DAY
    return sorted(found, key=lambda occurrence: occurrence.start)


def window_at(windows: Iterable[Window], moment: datetime, tz: tzinfo) -> Occurrence | None:
    """The window ``moment`` falls in (a window opened yesterday may still be open)."""
    local_day = moment.astimezone(tz).date()
    for day in (local_day - _DAY, local_day):
        for window in windows:
            occurrence = window.on(day, tz)
            if moment in occurrence:
                return occurrence
    return None
