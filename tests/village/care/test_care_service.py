"""The care service's rules: days and deadlines in the kiosk's zone, one alert per person and
day, late check-ins, PIN lockout, guardians' own people, purge."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from agent.errors import RecordNotFoundError, ValidationError
from agent.village.care import DayState, PersonInput
from agent.village.family import AttemptsPausedError
from tests.village.care.conftest import (
    CARER,
    GUARDIAN,
    OTHER_GUARDIAN,
    PIN,
    Care,
    make_care,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def state_of(care: Care, person_id: int) -> DayState:
    (line,) = [line for line in care.service.today() if line.person.id == person_id]
    return line.state


def test_the_day_and_its_deadline_are_the_kiosks_local_ones(care: Care) -> None:
    # 23:00 UTC on 1 Dec is 07:00 on 2 Dec in the village (UTC+8).
    person = care.register()
    (line,) = care.service.today()
    assert line.day == date(2026, 12, 2)
    assert line.state is DayState.DUE
    assert line.deadline_at.isoformat() == "2026-12-02T10:00:00+08:00"

    # 09:59 local is still before the deadline, though 2 Dec is long begun in UTC terms too.
    care.clock.now = utc(2026, 12, 2, 1, 59)
    care.service.tick()
    assert care.reports == []
    assert state_of(care, person.id) is DayState.DUE

    care.clock.now = utc(2026, 12, 2, 2, 0)  # 10:00 local
    care.service.tick()
    assert care.reports == [
        (
            "care_alert",
            {
                "person_ref": person.ref,
                "kind": "elder",
                "date": "2026-12-02",
                "deadline": "2026-12-02T10:00+08:00",
                "raised_at": "2026-12-02T02:00:00+00:00",
            },
        )
    ]
    assert state_of(care, person.id) is DayState.MISSED


def test_a_check_in_after_local_midnight_belongs_to_the_new_day(care: Care) -> None:
    care.clock.now = utc(2026, 11, 20, 0, 0)
    person = care.register(deadline="23:30")
    # 23:20 local on 2 Dec: in time for that day.
    care.clock.now = utc(2026, 12, 2, 15, 20)
    assert care.service.check_in(person.id, PIN).day == date(2026, 12, 2)
    # 00:10 local on 3 Dec (still 2 Dec in UTC): the new day's check-in, not a second one for
    # the old day.
    care.clock.now = utc(2026, 12, 2, 16, 10)
    done = care.service.check_in(person.id, PIN)
    assert done.day == date(2026, 12, 3)
    assert done.late is False
    assert state_of(care, person.id) is DayState.CHECKED_IN
    # 23:30 local on 3 Dec passes with that check-in: nothing is raised for either day.
    care.clock.now = utc(2026, 12, 3, 15, 31)
    care.service.tick()
    assert care.reports == []


def test_a_person_registered_after_the_deadline_is_first_due_the_next_day(care: Care) -> None:
    care.clock.now = utc(2026, 12, 2, 3, 0)  # 11:00 local, after 10:00
    person = care.register()
    care.service.tick()
    assert care.reports == []
    assert state_of(care, person.id) is DayState.NOT_DUE
    care.clock.now = utc(2026, 12, 3, 2, 0)
    care.service.tick()
    assert [payload["date"] for _, payload in care.reports] == ["2026-12-03"]


def test_one_alert_per_person_and_day(care: Care) -> None:
    first = care.register("王奶奶")
    second = care.register("小明", kind="child", pin="9371")
    care.clock.now = utc(2026, 12, 2, 2, 5)
    for _ in range(3):
        care.service.tick()
    care.clock.now += timedelta(hours=5)
    care.service.tick()
    reports = [(p["person_ref"], p["date"], p["kind"]) for _, p in care.reports]
    assert sorted(reports) == sorted(
        [(first.ref, "2026-12-02", "elder"), (second.ref, "2026-12-02", "child")]
    )
    care.clock.now = utc(2026, 12, 3, 2, 5)
    care.service.tick()
    care.service.tick()
    assert len(care.reports) == 4
    with care.database.read() as db:
        assert db.execute("SELECT COUNT(*) FROM care_alerts").fetchone()[0] == 4


def test_a_kiosk_left_off_over_a_deadline_raises_it_when_back(care: Care) -> None:
    person = care.register()
    care.clock.now = utc(2026, 12, 3, 0, 30)  # 08:30 on 3 Dec: 2 Dec passed unwatched
    care.service.tick()
    assert [(p["person_ref"], p["date"]) for _, p in care.reports] == [(person.ref, "2026-12-02")]


def test_a_late_check_in_clears_missed_but_the_alert_stays(care: Care) -> None:
    person = care.register()
    care.clock.now = utc(2026, 12, 2, 2, 30)
    care.service.tick()
    assert state_of(care, person.id) is DayState.MISSED

    care.clock.now = utc(2026, 12, 2, 3, 0)  # 11:00 local
    done = care.service.check_in(person.id, PIN)
    assert done.late is True
    (line,) = care.service.today()
    assert line.state is DayState.CHECKED_IN
    assert line.alerted is True
    history = care.service.history(person.id)
    assert [alert.day for alert in history.alerts] == [date(2026, 12, 2)]
    assert [c.day for c in history.check_ins] == [date(2026, 12, 2)]
    care.service.tick()
    assert len(care.reports) == 1


def test_a_check_in_before_the_tick_prevents_the_alert(care: Care) -> None:
    person = care.register()
    care.clock.now = utc(2026, 12, 2, 1, 0)
    care.service.check_in(person.id, PIN)
    care.clock.now = utc(2026, 12, 2, 9, 0)
    care.service.tick()
    assert care.reports == []
    assert state_of(care, person.id) is DayState.CHECKED_IN


def test_a_carers_visit_counts_as_the_check_in(care: Care) -> None:
    person = care.register()
    care.clock.now = utc(2026, 12, 2, 1, 0)
    visit = care.service.record_visit(person.id, "血压正常，米缸满了", actor=CARER)
    assert visit.source.value == "visit"
    care.clock.now = utc(2026, 12, 2, 4, 0)
    care.service.tick()
    assert care.reports == []
    (check_in,) = care.service.history(person.id).check_ins
    assert check_in.note == "血压正常，米缸满了"
    with pytest.raises(ValidationError) as refused:
        care.service.record_visit(person.id, "  ", actor=CARER)
    assert refused.value.message == "care.note_required"


def test_wrong_pins_pause_the_check_in(care: Care) -> None:
    person = care.register()
    for _ in range(2):
        with pytest.raises(ValidationError) as wrong:
            care.service.check_in(person.id, "1357")
        assert wrong.value.message == "care.pin_wrong"
    with pytest.raises(AttemptsPausedError) as paused:
        care.service.check_in(person.id, "1357")  # the third wrong PIN pauses
    assert paused.value.message == "care.pin_paused"
    assert 0 < paused.value.retry_after_seconds <= 15 * 60 + 1
    # While paused even the right PIN is refused: guessing on gains nothing.
    with pytest.raises(AttemptsPausedError):
        care.service.check_in(person.id, PIN)
    assert care.service.pin_paused(person.id) > 0

    care.clock.now += timedelta(minutes=16)
    assert care.service.pin_paused(person.id) == 0
    assert care.service.check_in(person.id, PIN).source.value == "kiosk"


def test_a_right_pin_resets_the_count_and_a_new_pin_lifts_a_pause(care: Care) -> None:
    person = care.register()
    for _ in range(2):
        with pytest.raises(ValidationError):
            care.service.check_in(person.id, "1357")
    care.service.check_in(person.id, PIN)
    for _ in range(2):  # counted afresh: two more wrong ones do not pause
        with pytest.raises(ValidationError) as wrong:
            care.service.check_in(person.id, "1357")
        assert wrong.value.message == "care.pin_wrong"
    with pytest.raises(AttemptsPausedError):
        care.service.check_in(person.id, "1357")
    care.service.set_pin(person.id, "6094", actor=CARER)
    care.service.check_in(person.id, "6094")


def test_a_guardian_sees_only_their_own_people(care: Care) -> None:
    mine = care.register("王奶奶")
    theirs = care.register("李爷爷", guardian=OTHER_GUARDIAN, pin="5820")
    assert [line.person.id for line in care.service.guarded_by(GUARDIAN)] == [mine.id]
    assert care.service.guardian_history(GUARDIAN, mine.id).person.name == "王奶奶"
    with pytest.raises(RecordNotFoundError):
        care.service.guardian_history(GUARDIAN, theirs.id)
    with pytest.raises(RecordNotFoundError):
        care.service.guardian_history(GUARDIAN, 9999)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("name", " ", "care.name_required"),
        ("kind", "adult", "care.kind_invalid"),
        ("guardian", CARER, "care.guardian_invalid"),
        ("guardian", "nobody", "care.guardian_invalid"),
        ("carer", GUARDIAN, "care.carer_invalid"),
        ("deadline", "25:00", "care.deadline_format"),
        ("pin", "12a4", "care.pin_format"),
        ("pin", "123", "care.pin_format"),
        ("pin", "1234", "care.pin_too_simple"),
        ("pin", "7777", "care.pin_too_simple"),
    ],
)
def test_registration_is_checked(care: Care, field: str, value: str, code: str) -> None:
    with pytest.raises(ValidationError) as refused:
        care.register(**{field: value})
    assert (refused.value.field, refused.value.message) == (field, code)


def test_name_pin_and_notes_are_not_stored_in_the_clear(care: Care, tmp_path: Path) -> None:
    person = care.register("欧阳秀英")
    care.service.record_visit(person.id, "腿脚不便", actor=CARER)
    care.clock.now = utc(2026, 12, 3, 3, 0)
    care.service.tick()
    care.database.close()
    for path in tmp_path.glob("kiosk.sqlite3*"):
        data = path.read_bytes()
        for secret in ("欧阳秀英", "腿脚不便"):
            assert secret.encode() not in data, path.name
        assert b'"4826"' not in data and b"'4826'" not in data
    (_, payload), *_ = care.reports
    assert GUARDIAN not in str(payload) and CARER not in str(payload)
    assert "欧阳秀英" not in str(payload)


def test_purge_drops_history_older_than_the_configured_days(tmp_path: Path) -> None:
    start = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
    care_iter: Iterator[Care] = make_care(tmp_path, start, history_days=30)
    care = next(care_iter)
    person = care.register()
    for day in range(60):
        care.clock.now = start + timedelta(days=day, hours=1)  # 09:00 local
        if day % 2:
            care.service.check_in(person.id, PIN)
        care.clock.now += timedelta(hours=2)
        care.service.tick()
    history = care.service.history(person.id)
    assert len(history.check_ins) == 30 and len(history.alerts) == 30
    purged = care.service.purge_expired()
    kept = care.service.history(person.id)
    cutoff = care.clock.now.date() - timedelta(days=30)
    assert purged == 60 - len(kept.check_ins) - len(kept.alerts)
    assert all(c.day >= cutoff for c in kept.check_ins)
    assert all(a.day >= cutoff for a in kept.alerts)
    assert len(kept.check_ins) + len(kept.alerts) == 31
    assert care.service.purge_expired() == 0
    next(care_iter, None)


def test_the_default_deadline_comes_from_the_settings(tmp_path: Path) -> None:
    care = next(make_care(tmp_path, datetime(2026, 12, 1, tzinfo=UTC), default_deadline=time(8)))
    assert care.register().deadline == time(8, 0)
    assert care.register("李爷爷", deadline="18:30", pin="5820").deadline == time(18, 30)
    assert PersonInput("a", "elder", GUARDIAN, CARER, PIN).deadline == ""
