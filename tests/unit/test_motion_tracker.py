"""Event lifecycle: debounced start, periodic updates, quiet end, length cap, cooldown, arming."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from agent.motion import EventConfig
from agent.motion.schedule import in_window, is_armed
from agent.motion.tracker import EventTracker

FPS = 10.0
BOX = (10, 20, 30, 40)


def _ids() -> object:
    count = 0

    def make() -> str:
        nonlocal count
        count += 1
        return f"ev{count}"

    return make


def _tracker(**overrides: float) -> EventTracker:
    settings: dict[str, float] = {
        "start_frames": 3,
        "window_frames": 5,
        "quiet_seconds": 2.0,
        "update_interval_seconds": 1.0,
        "max_event_seconds": 30.0,
    }
    config = EventConfig.model_validate(settings | overrides)
    return EventTracker("cam1", config, id_factory=_ids())  # type: ignore[arg-type]


def _feed(tracker: EventTracker, pattern: str, start: float = 0.0, **kw: object) -> list:
    """'x' = motion frame, '.' = quiet frame, one per 1/FPS seconds."""
    out = []
    for index, flag in enumerate(pattern):
        out.extend(
            tracker.update(
                start + index / FPS,
                motion=flag == "x",
                score=0.01 * (index + 1) if flag == "x" else 0.0,
                boxes=[BOX] if flag == "x" else [],
                zones=["gate"] if flag == "x" else [],
                **kw,  # type: ignore[arg-type]
            )
        )
    return out


def test_lone_flickers_never_start_an_event() -> None:
    tracker = _tracker()
    assert _feed(tracker, "x...x...x.x...x....x..x...") == []
    assert not tracker.active


def test_an_event_is_dated_from_the_first_moving_frame_of_its_window() -> None:
    tracker = _tracker()
    transitions = _feed(tracker, "....x.x.x" + "x" * 5)
    start = transitions[0]
    assert start.kind == "start"
    assert start.started_at == pytest.approx(0.4)
    assert start.ts > start.started_at


def test_full_lifecycle() -> None:
    tracker = _tracker()
    transitions = _feed(tracker, "xxx" + "x" * 27 + "." * 25)
    kinds = [t.kind for t in transitions]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("start") == 1 and kinds.count("end") == 1
    assert kinds.count("update") >= 2  # 3 s of motion, an update every second
    start, end = transitions[0], transitions[-1]
    assert start.event_id == end.event_id == "ev1"
    assert start.camera_id == "cam1"
    assert start.ts == pytest.approx(0.2)  # confirmed on the third moving frame …
    assert start.started_at == pytest.approx(0.0)  # … and dated from the first
    assert start.ended_at is None
    assert end.ended_at == pytest.approx(2.9)  # the last motion frame
    assert end.ts - end.ended_at >= 2.0  # quiet period
    assert end.score == pytest.approx(0.30)  # the peak
    assert end.boxes == (BOX,)
    assert end.zones == ("gate",)
    assert end.end_reason == "quiet"


def test_short_gaps_do_not_split_an_event() -> None:
    tracker = _tracker()
    transitions = _feed(tracker, "xxxx" + "." * 12 + "xxxx" + "." * 30)
    assert [t.kind for t in transitions if t.kind != "update"] == ["start", "end"]


def test_max_length_ends_and_a_new_event_starts() -> None:
    tracker = _tracker(max_event_seconds=2.0)
    transitions = _feed(tracker, "x" * 60)
    starts = [t for t in transitions if t.kind == "start"]
    ends = [t for t in transitions if t.kind == "end"]
    assert len(starts) >= 2
    assert ends[0].end_reason == "max_length"
    assert starts[1].event_id != starts[0].event_id


def test_cooldown_delays_the_next_event() -> None:
    tracker = _tracker(cooldown_seconds=5.0)
    first = _feed(tracker, "xxxx" + "." * 25)
    assert [t.kind for t in first if t.kind != "update"] == ["start", "end"]
    end_ts = first[-1].ts
    again = _feed(tracker, "xxxxxx", start=end_ts + 1.0)
    assert again == []
    later = _feed(tracker, "xxxxxx", start=end_ts + 6.0)
    assert later[0].kind == "start"


def test_disarmed_camera_raises_no_event_and_disarming_ends_one() -> None:
    tracker = _tracker()
    assert _feed(tracker, "x" * 20, armed=False) == []
    started = _feed(tracker, "xxxx", start=10.0)
    assert started[0].kind == "start"
    ended = tracker.update(11.0, motion=True, armed=False)
    assert [t.kind for t in ended] == ["end"] and ended[0].end_reason == "disarmed"


def test_clock_stepping_back_never_runs_an_event_backwards() -> None:
    tracker = _tracker()
    transitions = _feed(tracker, "xxxx", start=100.0)
    transitions += tracker.update(50.0, motion=True, score=0.5, boxes=[BOX])
    transitions += _feed(tracker, "." * 30, start=100.5)
    end = transitions[-1]
    assert end.kind == "end" and end.ended_at is not None
    assert end.ended_at >= end.started_at


def test_close_ends_the_open_event() -> None:
    tracker = _tracker()
    _feed(tracker, "xxxx")
    (end,) = tracker.close(5.0)
    assert end.kind == "end" and end.end_reason == "stopped"
    assert tracker.close(6.0) == []


@pytest.mark.parametrize(
    ("moment", "armed"),
    [
        (time(19, 59), False),
        (time(20, 0), True),
        (time(23, 30), True),
        (time(0, 0), True),
        (time(5, 59), True),
        (time(6, 0), False),
        (time(12, 0), False),
    ],
)
def test_schedule_crossing_midnight(moment: time, armed: bool) -> None:
    assert is_armed(["20:00-06:00"], moment) is armed


def test_schedule_forms() -> None:
    assert is_armed([], time(12, 0))
    assert is_armed(["08:00-12:00", "13:00-17:00"], datetime(2026, 1, 1, 14, 0))
    assert not is_armed(["08:00-12:00", "13:00-17:00"], datetime(2026, 1, 1, 12, 30))
    assert in_window("00:00-00:00", time(3, 0))
    with pytest.raises(ValueError, match="20:00-06:00"):
        is_armed(["tonight"], time(1, 0))
