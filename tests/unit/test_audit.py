"""The append-only audit log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.audit import MAX_DETAIL, AuditLog, id_range_chunks, id_ranges
from agent.errors import ValidationError
from agent.store.database import Database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "kiosk.db")
    yield db
    db.close()


def test_entries_are_newest_first_with_utc_times(database: Database) -> None:
    start = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    moments = iter(start + timedelta(minutes=m) for m in range(3))
    log = AuditLog(database, clock=lambda: next(moments))
    log.record("police1", "guest.view_unmasked", "guest:1")
    log.record("police1", "guest.export", "guests", "rows=3 filters=date_from")
    log.record("host1", "guest.view_unmasked", "guest:2")

    entries = log.entries()
    assert [e.subject for e in entries] == ["guest:2", "guests", "guest:1"]
    assert entries[1].detail == "rows=3 filters=date_from"
    assert datetime.fromisoformat(entries[2].at) == datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert entries[0].id > entries[1].id > entries[2].id


def test_entries_filter_and_page(database: Database) -> None:
    log = AuditLog(database)
    for n in range(5):
        log.record("police1" if n % 2 else "host1", "guest.view_unmasked", f"guest:{n}")
    log.record("police1", "camera.view", "camera:gate")

    assert [e.subject for e in log.entries(actor="police1")] == [
        "camera:gate",
        "guest:3",
        "guest:1",
    ]
    assert [e.subject for e in log.entries(action="camera.view")] == ["camera:gate"]
    assert [e.subject for e in log.entries(actor="police1", action="guest.view_unmasked")] == [
        "guest:3",
        "guest:1",
    ]
    assert [e.subject for e in log.entries(limit=2, offset=1)] == ["guest:4", "guest:3"]
    assert log.entries(actor="nobody") == []


def test_record_joins_the_callers_transaction(database: Database) -> None:
    log = AuditLog(database)

    class AbortError(Exception):
        pass

    with pytest.raises(AbortError), database.write() as db:
        log.record("police1", "guest.export", "guests", db=db)
        raise AbortError
    assert log.entries() == []

    with database.write() as db:
        log.record("police1", "guest.export", "guests", db=db)
    assert [e.action for e in log.entries()] == ["guest.export"]


def test_the_log_cannot_be_rewritten(database: Database) -> None:
    log = AuditLog(database)
    log.record("police1", "guest.view_unmasked", "guest:1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), database.write() as db:
        db.execute("UPDATE audit_log SET actor = 'someone else'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), database.write() as db:
        db.execute("DELETE FROM audit_log")
    assert [e.actor for e in log.entries()] == ["police1"]
    assert not any(hasattr(log, name) for name in ("update", "delete", "remove", "clear"))


@pytest.mark.parametrize(("actor", "action", "field"), [("", "x", "actor"), ("a", " ", "action")])
def test_actor_and_action_are_required(
    database: Database, actor: str, action: str, field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        AuditLog(database).record(actor, action, "guest:1")
    assert raised.value.field == field


def test_reopening_keeps_the_history(tmp_path: Path) -> None:
    first = Database(tmp_path / "kiosk.db")
    AuditLog(first).record("police1", "guest.export", "guests")
    first.close()
    again = Database(tmp_path / "kiosk.db")
    try:
        assert [e.actor for e in AuditLog(again).entries()] == ["police1"]
    finally:
        again.close()


def test_count_recent_counts_one_actor_and_action_in_the_window(database: Database) -> None:
    now = [datetime(2026, 11, 29, 8, 0, tzinfo=UTC)]
    log = AuditLog(database, clock=lambda: now[0])
    log.record("police1", "guest.search", "id_number:aa")
    now[0] += timedelta(minutes=30)
    log.record("police1", "guest.search", "name:bb")
    log.record("police2", "guest.search", "name:bb")
    log.record("police1", "guest.export", "guests")
    assert log.count_recent("police1", "guest.search", timedelta(hours=1)) == (
        2,
        datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
    )
    now[0] += timedelta(minutes=31)
    assert log.count_recent("police1", "guest.search", timedelta(hours=1)) == (
        1,
        datetime(2026, 11, 29, 8, 30, tzinfo=UTC),
    )
    assert log.count_recent("nobody", "guest.search", timedelta(hours=1)) == (0, None)
    with database.write() as db:
        assert log.count_recent("police2", "guest.search", timedelta(hours=1), db=db)[0] == 1


def test_id_ranges() -> None:
    assert id_ranges([]) == ""
    assert id_ranges([7]) == "7"
    assert id_ranges([20, 3, 4, 5, 17, 16, 15, 6, 7, 4]) == "3-7,15-17,20"
    assert id_range_chunks([1, 3, 5, 7, 8, 9], width=5) == ["1,3,5", "7-9"]
    assert id_range_chunks([], width=5) == [""]
    assert id_range_chunks([123456789], width=3) == ["123456789"], "an id is never split"


def test_a_long_detail_is_kept_up_to_its_own_limit(database: Database) -> None:
    log = AuditLog(database)
    detail = "ids=" + ",".join(str(n) for n in range(0, 6000, 2))
    assert 2000 < len(detail) <= MAX_DETAIL
    log.record("police1", "guest.export", "guests" * 1000, detail)
    (entry,) = log.entries()
    assert entry.detail == detail
    assert len(entry.subject) == 2000
    log.record("police1", "guest.export", "guests", "x" * (MAX_DETAIL + 10))
    assert len(log.entries()[0].detail) == MAX_DETAIL
