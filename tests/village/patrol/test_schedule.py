"""Schedules: parsing, validation, and windows across midnight in the kiosk's local time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.errors import ValidationError
from agent.village.patrol.schedule import (
    Window,
    format_schedule,
    occurrences,
    parse_schedule,
    window_at,
)
from tests.village.patrol.conftest import ZONE, local


def test_three_rounds_a_night_in_any_order_and_separator() -> None:
    windows = parse_schedule("04:00-05:00，22:00-23:00; 1:00-02:00\n")
    assert [str(w) for w in windows] == ["01:00-02:00", "04:00-05:00", "22:00-23:00"]
    assert format_schedule(windows) == "01:00-02:00, 04:00-05:00, 22:00-23:00"
    assert parse_schedule(["22:00-23:00"]) == (Window(time(22), time(23)),)
    assert parse_schedule("  ") == ()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("22:00", "patrol.schedule.format"),
        ("22-23", "patrol.schedule.format"),
        ("24:00-01:00", "patrol.schedule.format"),
        ("22:60-23:00", "patrol.schedule.format"),
        ("22:00-22:00", "patrol.schedule.empty_window"),
        ("08:00-21:00", "patrol.schedule.too_long"),
        ("22:00-23:30, 23:00-23:45", "patrol.schedule.overlap"),
        # Overlapping only across midnight: 23:00-01:00 runs into 00:30-02:00.
        ("00:30-02:00, 23:00-01:00", "patrol.schedule.overlap"),
        (", ".join(f"{h:02d}:00-{h:02d}:30" for h in range(13)), "patrol.schedule.too_many"),
    ],
)
def test_bad_schedules_are_refused_with_their_code(text: str, code: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_schedule(text)
    assert (refused.value.field, refused.value.message) == ("schedule", code)


def test_back_to_back_windows_do_not_overlap() -> None:
    assert len(parse_schedule("22:00-23:00, 23:00-00:00, 00:00-01:00")) == 3


def test_a_window_across_midnight_ends_the_next_local_day() -> None:
    (window,) = parse_schedule("23:30-00:30")
    assert window.crosses_midnight
    assert window.length == timedelta(hours=1)
    occurrence = window.on(local("2026-12-01T00:00").date(), ZONE)
    # 23:30 in Shanghai (UTC+8) is 15:30 UTC the same day; the end is 00:30 local next day.
    assert occurrence.start == datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    assert occurrence.end == datetime(2026, 12, 1, 16, 30, tzinfo=UTC)
    assert occurrence.end.astimezone(ZONE).date().isoformat() == "2026-12-02"


def test_the_window_a_moment_falls_in_may_have_opened_the_day_before() -> None:
    windows = parse_schedule("22:00-23:00, 23:30-00:30, 01:00-02:00")
    after_midnight = local("2026-12-02T00:10")
    found = window_at(windows, after_midnight, ZONE)
    assert found is not None
    assert str(found.window) == "23:30-00:30"
    assert found.start == local("2026-12-01T23:30").astimezone(UTC)
    assert window_at(windows, local("2026-12-02T00:30"), ZONE) is None, "the end is open"
    assert window_at(windows, local("2026-12-02T00:40"), ZONE) is None
    early = window_at(windows, local("2026-12-02T01:59"), ZONE)
    assert early is not None and str(early.window) == "01:00-02:00"


def test_occurrences_follow_local_days_not_utc_days() -> None:
    windows = parse_schedule("22:00-23:00, 01:00-02:00, 04:00-05:00")
    night = occurrences(windows, local("2026-12-01T12:00"), local("2026-12-02T12:00"), ZONE)
    starts = [o.start.astimezone(ZONE).isoformat(timespec="minutes") for o in night]
    assert starts == [
        "2026-12-01T22:00+08:00",
        "2026-12-02T01:00+08:00",
        "2026-12-02T04:00+08:00",
    ]
    # The same wall-clock windows in another zone are other instants.
    elsewhere = occurrences(
        windows, local("2026-12-01T12:00"), local("2026-12-02T12:00"), ZoneInfo("UTC")
    )
    assert {o.start for o in elsewhere}.isdisjoint({o.start for o in night})
