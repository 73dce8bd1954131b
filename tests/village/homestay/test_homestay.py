"""Homestay guest registration: validation, encrypted storage, search, audit, reports, purge."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agent.audit import AuditLog
from agent.errors import RecordNotFoundError, ValidationError
from agent.privacy import Vault, VaultError
from agent.store.database import Database
from agent.village.homestay import (
    ERROR_MESSAGES,
    GuestInput,
    HomestayService,
    SearchLimitError,
)
from agent.village.identity import IdType, check_character

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def resident_id(birth: str = "19900307", region: str = "330106", sequence: str = "123") -> str:
    body = region + birth + sequence
    return body + check_character(body)


GUEST_ID = resident_id()
COMPANION_ID = resident_id(birth="20150601", sequence="456")
GUEST_PHONE = "13912345678"


def guest_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "name": "张三丰",
        "sex": "male",
        "ethnicity": "汉族",
        "birth_date": "1990-03-07",
        "id_type": "resident_id",
        "id_number": GUEST_ID,
        "phone": GUEST_PHONE,
        "address": "浙江省杭州市西湖区文三路100号",
        "room": "201",
        "check_in": "2026-11-29T14:00:00+08:00",
        "expected_check_out": "2026-12-01",
        "companions": [
            {
                "name": "张小宝",
                "id_type": "resident_id",
                "id_number": COMPANION_ID,
                "birth_date": "2015-06-01",
            }
        ],
    }
    form.update(changes)
    return form


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ReportRecorder:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    in_transaction: list[bool] = field(default_factory=list)
    fail: bool = False

    def __call__(self, db: sqlite_utils.Database, kind: str, payload: dict[str, Any]) -> None:
        self.in_transaction.append(db.conn.in_transaction)
        if self.fail:
            raise RuntimeError("outbox is full")
        self.calls.append((kind, payload))


@dataclass
class Kiosk:
    database: Database
    service: HomestayService
    audit: AuditLog
    report: ReportRecorder
    clock: Clock
    homestay_id: int


@pytest.fixture
def kiosk(tmp_path: Path) -> Iterator[Kiosk]:
    database = Database(tmp_path / "kiosk.db")
    clock = Clock()
    audit = AuditLog(database, clock=clock)
    report = ReportRecorder()
    service = HomestayService(
        database,
        Vault.load_or_create(tmp_path / "secrets" / "vault.key"),
        audit,
        report,
        guest_retention_days=180,
        clock=clock,
    ).migrated()
    homestay = service.create_homestay("山居小院", "溪头村12号", 6, "host1")
    yield Kiosk(database, service, audit, report, clock, homestay.id)
    database.close()


def register(kiosk: Kiosk, **changes: Any) -> int:
    guest = GuestInput(**guest_form(**changes))
    return kiosk.service.check_in(kiosk.homestay_id, guest, actor="host1").id


# -- validation ----------------------------------------------------------------------------------


def test_a_valid_form_is_normalized() -> None:
    guest = GuestInput(
        **guest_form(name=" 张三丰 ", id_number=GUEST_ID.lower(), phone="139 1234 5678")
    )
    assert (guest.name, guest.id_number, guest.phone) == ("张三丰", GUEST_ID, GUEST_PHONE)
    assert guest.companions[0].id_type is IdType.RESIDENT_ID
    assert guest.foreign is False


@pytest.mark.parametrize(
    ("changes", "field_path", "code"),
    [
        ({"name": "  "}, "name", "name.required"),
        ({"name": "张" * 51}, "name", "name.too_long"),
        ({"name": "张\x00三"}, "name", "name.format"),
        ({"sex": "other"}, "sex", "sex.invalid"),
        ({"ethnicity": ""}, "ethnicity", "ethnicity.required"),
        ({"birth_date": "1990-02-30"}, "birth_date", "birth_date.format"),
        ({"birth_date": "1990-03-08"}, "id_number", "id_number.birth_date_mismatch"),
        ({"id_type": "driving_licence"}, "id_type", "id_type.invalid"),
        ({"id_number": GUEST_ID[:17] + "0"}, "id_number", "id_number.check_digit"),
        ({"phone": "12345"}, "phone", "phone.format"),
        ({"address": ""}, "address", "address.required"),
        ({"room": ""}, "room", "room.required"),
        ({"check_in": "yesterday"}, "check_in", "check_in.format"),
        ({"expected_check_out": "2026-11-28"}, "expected_check_out", "check_out.before_check_in"),
        ({"expected_check_out": "2028-01-01"}, "expected_check_out", "check_out.too_far"),
        ({"nationality": "USA"}, "nationality", "nationality.mismatch"),
        ({"unexpected": "x"}, "unexpected", "field.unknown"),
        (
            {
                "companions": [
                    {"name": "李四", "id_type": "resident_id", "birth_date": "2015-06-01"}
                ]
            },
            "companions[0].id_number",
            "id_number.required",
        ),
        (
            {
                "companions": [
                    {
                        "name": "李四",
                        "id_type": "resident_id",
                        "id_number": COMPANION_ID[:17] + "0"
                        if COMPANION_ID[17] != "0"
                        else COMPANION_ID[:17] + "1",
                        "birth_date": "2015-06-01",
                    }
                ]
            },
            "companions[0].id_number",
            "id_number.check_digit",
        ),
        (
            {
                "companions": [
                    {
                        "name": "李四",
                        "id_type": "resident_id",
                        "id_number": GUEST_ID,
                        "birth_date": "1990-03-07",
                    }
                ]
            },
            "companions[0].id_number",
            "id_number.duplicate",
        ),
        (
            {
                "companions": [
                    {
                        "name": "",
                        "id_type": "resident_id",
                        "id_number": COMPANION_ID,
                        "birth_date": "2015-06-01",
                    }
                ]
            },
            "companions[0].name",
            "name.required",
        ),
        ({"companions": "nobody"}, "companions", "companions.invalid"),
    ],
)
def test_invalid_forms_name_the_field_and_a_known_code(
    changes: dict[str, Any], field_path: str, code: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        GuestInput(**guest_form(**changes))
    assert (raised.value.field, raised.value.message) == (field_path, code)
    assert code in ERROR_MESSAGES


def test_missing_fields_are_reported_as_required() -> None:
    form = guest_form()
    del form["phone"]
    with pytest.raises(ValidationError) as raised:
        GuestInput.model_validate(form)
    assert (raised.value.field, raised.value.message) == ("phone", "phone.required")


def test_ethnicity_is_optional_for_foreign_documents() -> None:
    guest = GuestInput(
        **guest_form(
            ethnicity="",
            id_type="passport",
            id_number="X1234567",
            nationality="ｕｓａ ",  # full-width, as a kiosk IME may type it
            companions=[],
        )
    )
    assert guest.nationality == "USA"
    assert guest.foreign is True


# -- check-in, reports, storage ------------------------------------------------------------------


def test_check_in_returns_a_masked_record_and_reports_inside_the_transaction(
    kiosk: Kiosk,
) -> None:
    record = kiosk.service.check_in(kiosk.homestay_id, GuestInput(**guest_form()), actor="host1")

    assert record.masked
    assert record.name == "张*丰"
    assert record.id_number == GUEST_ID[:2] + "*" * 16
    assert record.phone == "139****5678"
    assert record.address == "浙江省***"
    assert (record.birth_date, record.age_band) == (None, "30-39")
    assert record.companions[0].name == "张*宝"
    assert record.companions[0].id_number == COMPANION_ID[:2] + "*" * 16
    assert (record.companions[0].birth_date, record.companions[0].age_band) == (None, "0-17")
    assert record.check_in == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert record.homestay_name == "山居小院"

    assert kiosk.report.in_transaction == [True]
    ((kind, payload),) = kiosk.report.calls
    assert kind == "registration"
    assert payload["action"] == "check_in"
    assert payload["record_id"] == record.id
    assert payload["foreign"] is False
    assert payload["report_deadline"] is None
    assert payload["homestay"]["name"] == "山居小院"
    assert payload["guest"]["id_number"] == GUEST_ID
    assert payload["guest"]["name"] == "张三丰"
    assert payload["guest"]["phone"] == GUEST_PHONE
    assert payload["guest"]["birth_date"] == "1990-03-07"
    assert payload["companions"][0]["id_number"] == COMPANION_ID
    assert payload["companions"][0]["birth_date"] == "2015-06-01"
    assert payload["check_in"] == "2026-11-29T06:00:00+00:00"


def test_a_failed_report_rolls_the_registration_back(kiosk: Kiosk) -> None:
    kiosk.report.fail = True
    with pytest.raises(RuntimeError):
        register(kiosk)
    assert kiosk.service.search() == []


def test_foreign_guests_are_flagged_with_a_24_hour_deadline(kiosk: Kiosk) -> None:
    register(
        kiosk,
        ethnicity="",
        id_type="hk_macao_permit",
        id_number="H12345678",
        companions=[],
    )
    (_, payload) = kiosk.report.calls[-1]
    assert payload["foreign"] is True
    assert payload["report_deadline"] == "2026-11-30T06:00:00+00:00"


def test_a_foreign_companion_flags_the_registration(kiosk: Kiosk) -> None:
    companion = {
        "name": "John Smith",
        "id_type": "passport",
        "id_number": "X1234567",
        "birth_date": "1988-01-02",
        "nationality": "GBR",
    }
    guest_id = register(kiosk, companions=[companion])
    (_, payload) = kiosk.report.calls[-1]
    assert payload["foreign"] is True
    assert payload["companions"][0]["foreign"] is True
    assert kiosk.service.get_guest(guest_id, actor="host1").foreign is True


def test_check_in_far_in_the_future_is_refused(kiosk: Kiosk) -> None:
    with pytest.raises(ValidationError) as raised:
        register(kiosk, check_in="2026-12-05T14:00:00+08:00", expected_check_out="2026-12-06")
    assert (raised.value.field, raised.value.message) == ("check_in", "check_in.future")
    assert kiosk.report.calls == []


def test_a_check_in_dated_more_than_a_week_back_is_refused(kiosk: Kiosk) -> None:
    """Otherwise a registration dated years back would be purged at the next housekeeping,
    before the police ever looked at it."""
    with pytest.raises(ValidationError) as raised:
        register(kiosk, check_in="2020-01-01T10:00:00+08:00", expected_check_out="2020-01-02")
    assert (raised.value.field, raised.value.message) == ("check_in", "check_in.past")
    assert "check_in.past" in ERROR_MESSAGES
    assert kiosk.report.calls == []
    late = NOW - timedelta(days=7) + timedelta(minutes=1)
    week_late = register(kiosk, check_in=late.isoformat(), expected_check_out="2026-11-30")
    assert kiosk.service.get_guest(week_late, actor="host1").check_in == late
    with pytest.raises(ValidationError):
        register(kiosk, check_in=(late - timedelta(minutes=2)).isoformat(),
                 expected_check_out="2026-11-30")  # fmt: skip


def test_check_in_at_an_unknown_homestay(kiosk: Kiosk) -> None:
    with pytest.raises(RecordNotFoundError) as raised:
        kiosk.service.check_in(999, GuestInput(**guest_form()), actor="host1")
    assert raised.value.message == "homestay.not_found"


def test_the_database_file_holds_no_personal_data_in_clear(kiosk: Kiosk) -> None:
    register(kiosk)
    register(
        kiosk,
        name="Maria Lopez",
        ethnicity="",
        id_type="passport",
        id_number="PAB123987",
        nationality="ESP",
        phone="+34612345678",
        birth_date="1979-05-05",
        companions=[],
    )
    kiosk.database.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    path = kiosk.database.path
    raw = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    # The bytes read do hold the registrations: their masked forms are there.
    assert "张*丰".encode() in raw
    assert b"M*********z" in raw
    for secret in (GUEST_ID, COMPANION_ID, GUEST_PHONE, "PAB123987", "+34612345678",
                   "张三丰", "张小宝", "Maria Lopez", "文三路100号", "杭州市", "1990-03-07",
                   "2015-06-01", "1979-05-05"):  # fmt: skip
        assert secret.encode("utf-8") not in raw, secret


# -- reading -------------------------------------------------------------------------------------


def test_search_by_id_number_uses_the_blind_index(kiosk: Kiosk) -> None:
    first = register(kiosk)
    other = register(
        kiosk,
        name="李四",
        id_number=resident_id(birth="19850101", sequence="777"),
        birth_date="1985-01-01",
        companions=[],
    )
    assert [r.id for r in kiosk.service.search(id_number=GUEST_ID)] == [first]
    assert [r.id for r in kiosk.service.search(id_number=GUEST_ID.lower())] == [first]
    spaced = f"{COMPANION_ID[:6]} {COMPANION_ID[6:]}"
    assert [r.id for r in kiosk.service.search(id_number=spaced)] == [first]
    assert [r.id for r in kiosk.service.search(name="李四")] == [other]
    assert [r.id for r in kiosk.service.search(name=" 张小宝 ")] == [first]
    # A part of a name (two adjacent characters or more) finds the person, guest or companion;
    # one character or characters that are not adjacent find nobody.
    assert [r.id for r in kiosk.service.search(name="张三")] == [first]
    assert [r.id for r in kiosk.service.search(name="小宝")] == [first]
    assert kiosk.service.search(name="张丰") == []
    assert kiosk.service.search(name="张") == []
    assert kiosk.service.search(id_number=resident_id(birth="19700101")) == []
    assert kiosk.service.search(id_number=GUEST_ID[:10]) == [], "ID numbers match whole only"
    assert all(r.masked and "*" in r.id_number for r in kiosk.service.search())


def test_search_filters(kiosk: Kiosk) -> None:
    early = register(kiosk, check_in="2026-11-23T10:00:00+08:00", expected_check_out="2026-11-25")
    late = register(kiosk, name="李四", companions=[])
    second = kiosk.service.create_homestay("竹林人家", "溪头村30号", 3, "host2")
    elsewhere = kiosk.service.check_in(
        second.id, GuestInput(**guest_form(name="王五", companions=[])), actor="host2"
    ).id
    kiosk.service.check_out(early, actor="host1", at=datetime(2026, 11, 25, 2, tzinfo=UTC))

    def ids(**filters: Any) -> list[int]:
        return [r.id for r in kiosk.service.search(**filters)]

    assert ids() == [elsewhere, late, early]
    assert ids(date_from=date(2026, 11, 25)) == [elsewhere, late]
    assert ids(date_to=date(2026, 11, 23)) == [early]
    assert ids(date_from=date(2026, 11, 23), date_to=date(2026, 11, 23)) == [early]
    assert ids(homestay_id=second.id) == [elsewhere]
    assert ids(host_username="host1") == [late, early]
    assert ids(active_only=True) == [elsewhere, late]
    assert ids(limit=1) == [elsewhere]
    assert [h.id for h in kiosk.service.list_homestays(host_username="host2")] == [second.id]
    assert len(kiosk.service.list_homestays()) == 2


def test_masked_view_is_not_audited_unmasked_view_is(kiosk: Kiosk) -> None:
    guest_id = register(kiosk)
    masked = kiosk.service.get_guest(guest_id, actor="police1")
    assert masked.masked
    assert masked.id_number != GUEST_ID
    assert kiosk.audit.entries(action="guest.view_unmasked") == []

    full = kiosk.service.get_guest(guest_id, actor="police1", unmasked=True)
    assert not full.masked
    assert (full.name, full.id_number, full.phone) == ("张三丰", GUEST_ID, GUEST_PHONE)
    assert full.address == "浙江省杭州市西湖区文三路100号"
    assert full.companions[0].id_number == COMPANION_ID
    (entry,) = kiosk.audit.entries(action="guest.view_unmasked")
    assert (entry.actor, entry.subject) == ("police1", f"guest:{guest_id}")


def test_unknown_guest(kiosk: Kiosk) -> None:
    with pytest.raises(RecordNotFoundError) as raised:
        kiosk.service.get_guest(12345, actor="police1", unmasked=True)
    assert (raised.value.field, raised.value.message) == ("guest_id", "guest.not_found")
    assert kiosk.audit.entries() == []


def test_export_is_unmasked_complete_and_audited(kiosk: Kiosk) -> None:
    first = register(kiosk, name="=HYPERLINK(1)")
    register(kiosk, name="李四", companions=[], id_number=resident_id(birth="19850101"),
             birth_date="1985-01-01")  # fmt: skip

    text = kiosk.service.export_csv(actor="police1", id_number=GUEST_ID)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert [(r["record_id"], r["role"]) for r in rows] == [
        (str(first), "guest"),
        (str(first), "companion"),
    ]
    assert rows[0]["id_number"] == GUEST_ID
    assert rows[0]["phone"] == GUEST_PHONE
    assert rows[0]["name"] == "'=HYPERLINK(1)"
    assert rows[1]["id_number"] == COMPANION_ID
    assert rows[1]["name"] == "张小宝"

    (entry,) = kiosk.audit.entries(action="guest.export")
    assert entry.actor == "police1"
    assert entry.detail == f"rows=1 filters=id_number ids={first}"
    assert GUEST_ID not in entry.detail
    assert rows[0]["birth_date"] == "1990-03-07"
    assert rows[1]["birth_date"] == "2015-06-01"


def test_an_export_audit_says_whose_records_left(kiosk: Kiosk) -> None:
    ids = [register(kiosk, name=f"客人{i}", companions=[]) for i in range(6)]
    kiosk.service.check_out(ids[3], actor="host1", at=NOW + timedelta(hours=1))
    kiosk.service.export_csv(actor="police1", active_only=True)
    (entry,) = kiosk.audit.entries(action="guest.export")
    assert entry.detail == (f"rows=5 filters=active_only ids={ids[0]}-{ids[2]},{ids[4]}-{ids[5]}")


def test_a_huge_export_lists_every_id_over_several_audit_entries(
    kiosk: Kiosk, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [register(kiosk, name=f"客人{i}", companions=[]) for i in range(6)]
    for guest_id in ids[1::2]:
        kiosk.service.check_out(guest_id, actor="host1", at=NOW + timedelta(hours=1))
    # A detail with room for one id at a time: the ids continue on further entries, none is
    # cut off.
    head = "rows=3 filters=active_only"
    monkeypatch.setattr("agent.village.homestay.service.MAX_DETAIL", len(head) + 40 + 2)
    kiosk.service.export_csv(actor="police1", active_only=True)
    entries = list(reversed(kiosk.audit.entries(action="guest.export")))
    assert [e.detail for e in entries] == [
        f"{head} part={n}/3 ids={guest_id}" for n, guest_id in enumerate(ids[::2], start=1)
    ]


# -- check-out -----------------------------------------------------------------------------------


def test_check_out_is_reported_once(kiosk: Kiosk) -> None:
    guest_id = register(kiosk)
    kiosk.clock.now = NOW + timedelta(days=2)
    record = kiosk.service.check_out(guest_id, actor="host1")
    assert record.checked_out_at == NOW + timedelta(days=2)
    assert record.masked

    (kind, payload) = kiosk.report.calls[-1]
    assert (kind, payload["action"], payload["record_id"]) == (
        "registration",
        "check_out",
        guest_id,
    )
    assert payload["checked_out_at"] == "2026-12-01T06:00:00+00:00"
    assert payload["guest"]["id_number"] == GUEST_ID
    assert kiosk.report.in_transaction == [True, True]

    with pytest.raises(ValidationError) as raised:
        kiosk.service.check_out(guest_id, actor="host1")
    assert raised.value.message == "guest.already_checked_out"
    assert len(kiosk.report.calls) == 2


def test_check_out_before_check_in_is_refused(kiosk: Kiosk) -> None:
    guest_id = register(kiosk)
    with pytest.raises(ValidationError) as raised:
        kiosk.service.check_out(guest_id, actor="host1", at=NOW - timedelta(minutes=1))
    assert raised.value.message == "check_out.before_check_in"
    assert kiosk.service.get_guest(guest_id, actor="host1").checked_out_at is None


# -- homestays and retention ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field_name", "code"),
    [
        (("", "溪头村1号", 3, "host1"), "name", "name.required"),
        (("小院", "", 3, "host1"), "address", "address.required"),
        (("小院", "溪头村1号", 0, "host1"), "rooms", "rooms.range"),
        (("小院", "溪头村1号", 501, "host1"), "rooms", "rooms.range"),
        (("小院", "溪头村1号", 3, " "), "host_username", "host_username.required"),
    ],
)
def test_create_homestay_validates(
    kiosk: Kiosk, args: tuple[Any, ...], field_name: str, code: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        kiosk.service.create_homestay(*args)
    assert (raised.value.field, raised.value.message) == (field_name, code)
    assert code in ERROR_MESSAGES


def test_get_homestay(kiosk: Kiosk) -> None:
    homestay = kiosk.service.get_homestay(kiosk.homestay_id)
    assert (homestay.name, homestay.rooms, homestay.host_username) == ("山居小院", 6, "host1")
    with pytest.raises(RecordNotFoundError):
        kiosk.service.get_homestay(999)


def test_purge_removes_only_registrations_past_retention(kiosk: Kiosk) -> None:
    kiosk.clock.now = datetime(2026, 6, 1, 4, tzinfo=UTC)  # registered on the day of arrival
    old = register(kiosk, check_in="2026-06-01T10:00:00+08:00", expected_check_out="2026-06-05")
    forgotten = register(
        kiosk,
        name="李四",
        companions=[],
        check_in="2026-06-01T10:00:00+08:00",
        expected_check_out="2026-06-04",
    )
    kiosk.clock.now = NOW
    recent = register(kiosk, name="王五", companions=[])
    old_check_out = datetime(2026, 6, 5, 2, tzinfo=UTC)
    kiosk.service.check_out(old, actor="host1", at=old_check_out)
    kiosk.service.check_out(recent, actor="host1", at=NOW + timedelta(hours=1))

    kiosk.clock.now = old_check_out + timedelta(days=179)
    assert kiosk.service.purge_expired() == 0
    assert len(kiosk.service.search()) == 3

    kiosk.clock.now = old_check_out + timedelta(days=181)
    assert kiosk.service.purge_expired() == 2
    assert [r.id for r in kiosk.service.search()] == [recent]
    assert kiosk.service.search(id_number=COMPANION_ID) == []
    with pytest.raises(RecordNotFoundError):
        kiosk.service.get_guest(forgotten, actor="host1")
    with kiosk.database.read() as db:
        assert db.execute("SELECT COUNT(*) FROM guest_companions").fetchone()[0] == 0
    (entry,) = kiosk.audit.entries(action="guest.purge")
    assert entry.detail == "rows=2"
    assert kiosk.service.purge_expired() == 0

    # A purged id is never handed out again.
    kiosk.clock.now = NOW
    assert register(kiosk, name="赵六", companions=[]) > recent


def test_retention_counts_from_the_later_of_the_stay_and_the_entry(kiosk: Kiosk) -> None:
    """A stay entered a week late (and checked out at once, dated back to its end) is kept for
    the whole retention period from the day it was entered."""
    late = register(
        kiosk,
        check_in=(NOW - timedelta(days=6)).isoformat(),
        expected_check_out=(NOW - timedelta(days=5)).date().isoformat(),
    )
    kiosk.service.check_out(late, actor="host1", at=NOW - timedelta(days=5))
    kiosk.clock.now = NOW + timedelta(days=178)
    assert kiosk.service.purge_expired() == 0, "180 days after the stay, but not the entry"
    assert [r.id for r in kiosk.service.search()] == [late]
    kiosk.clock.now = NOW + timedelta(days=181)
    assert kiosk.service.purge_expired() == 1


def test_a_different_key_is_refused_at_start(kiosk: Kiosk, tmp_path: Path) -> None:
    register(kiosk)
    same_key = Vault.load_or_create(tmp_path / "secrets" / "vault.key")
    again = HomestayService(
        kiosk.database, same_key, kiosk.audit, kiosk.report, guest_retention_days=180
    ).migrated()
    assert len(again.search()) == 1
    with pytest.raises(VaultError, match="restore the original key"):
        HomestayService(
            kiosk.database,
            Vault.load_or_create(tmp_path / "other" / "vault.key"),
            kiosk.audit,
            kiosk.report,
            guest_retention_days=180,
        ).migrated()


# -- properties ----------------------------------------------------------------------------------


GUEST_FIELDS = [
    "name", "sex", "ethnicity", "birth_date", "id_type", "id_number", "phone", "address", "room",
    "check_in", "expected_check_out", "nationality", "companions",
]  # fmt: skip
COMPANION_FIELDS = ["name", "id_type", "id_number", "birth_date", "nationality"]


@pytest.mark.parametrize("name", GUEST_FIELDS)
def test_every_wrongly_typed_field_gets_its_own_code(name: str) -> None:
    with pytest.raises(ValidationError) as raised:
        GuestInput(**guest_form(**{name: {"not": "a value"}}))
    assert raised.value.field == name
    assert raised.value.message.startswith(f"{name}.")
    assert raised.value.message in ERROR_MESSAGES


@pytest.mark.parametrize("name", COMPANION_FIELDS)
def test_every_wrongly_typed_companion_field_gets_its_own_code(name: str) -> None:
    companion = {
        "name": "张小宝",
        "id_type": "resident_id",
        "id_number": COMPANION_ID,
        "birth_date": "2015-06-01",
        name: {"not": "a value"},
    }
    with pytest.raises(ValidationError) as raised:
        GuestInput(**guest_form(companions=[companion]))
    assert raised.value.field == f"companions[0].{name}"
    assert raised.value.message.startswith(f"{name}.")
    assert raised.value.message in ERROR_MESSAGES


@st.composite
def parties(draw: st.DrawFn) -> dict[str, Any]:
    def person(birth: date) -> tuple[str, str]:
        region = draw(st.sampled_from(["110105", "330106", "510104", "650102"]))
        sequence = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
        return resident_id(birth.strftime("%Y%m%d"), region, sequence), birth.isoformat()

    born = st.dates(min_value=date(1930, 1, 1), max_value=date(2026, 11, 1))
    number, birth = person(draw(born))
    companions = []
    for _ in range(draw(st.integers(0, 3))):
        companion_number, companion_birth = person(draw(born))
        companions.append(
            {
                "name": draw(st.text(alphabet="王李张刘陈杨赵黄周吴", min_size=2, max_size=4)),
                "id_type": "resident_id",
                "id_number": companion_number,
                "birth_date": companion_birth,
            }
        )
    return guest_form(
        name=draw(st.text(alphabet="王李张刘陈杨赵黄周吴", min_size=2, max_size=4)),
        id_number=number,
        # The 17th digit of a resident ID records the sex: odd for a man.
        sex="male" if int(number[16]) % 2 else "female",
        birth_date=birth,
        phone=draw(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)),
        companions=companions,
    )


def test_registrations_round_trip_and_lists_never_show_the_middle(kiosk: Kiosk) -> None:
    @settings(max_examples=30, deadline=None)
    @given(parties())
    def round_trip(form: dict[str, Any]) -> None:
        numbers = [form["id_number"], *(c["id_number"] for c in form["companions"])]
        assume(len(set(numbers)) == len(numbers))  # a repeated number is refused, tested above
        guest = GuestInput(**form)
        record = kiosk.service.check_in(kiosk.homestay_id, guest, actor="host1")
        full = kiosk.service.get_guest(record.id, actor="police1", unmasked=True)
        assert (full.name, full.id_number, full.phone) == (guest.name, guest.id_number, guest.phone)
        assert [c.id_number for c in full.companions] == [c.id_number for c in guest.companions]
        (found,) = [r for r in kiosk.service.search(id_number=guest.id_number) if r.id == record.id]
        for masked, number in [(found.id_number, guest.id_number)] + [
            (c.id_number, o.id_number)
            for c, o in zip(found.companions, guest.companions, strict=True)
        ]:
            assert masked == number[:2] + "*" * 16
        assert found.phone == guest.phone[:3] + "****" + guest.phone[7:]

    round_trip()
    assert len(kiosk.report.calls) >= 10  # the property ran on many parties, not on none


# -- age bands, the re-sealing migration, audited searches ----------------------------------------


@pytest.mark.parametrize(
    ("birth", "band"),
    [
        ("2008-11-29", "18-29"),  # eighteen on the day of check-in
        ("2008-11-30", "0-17"),
        ("1996-11-30", "18-29"),
        ("1996-11-29", "30-39"),
        ("1956-11-30", "60-69"),
        ("1956-11-29", "70+"),
        ("1900-01-01", "70+"),
    ],
)
def test_the_age_band_is_the_age_on_the_day_of_check_in(
    kiosk: Kiosk, birth: str, band: str
) -> None:
    number = resident_id(birth=birth.replace("-", ""))
    guest_id = register(kiosk, birth_date=birth, id_number=number, companions=[])
    (found,) = kiosk.service.search(id_number=number)
    assert (found.id, found.age_band, found.birth_date) == (guest_id, band, None)
    full = kiosk.service.get_guest(guest_id, actor="police1", unmasked=True)
    assert (full.age_band, full.birth_date) == (band, date.fromisoformat(birth))


def _old_registration(db: sqlite_utils.Database, vault: Vault, homestay_id: int) -> None:
    """A guest and a companion as the first schema stored them: birth dates in clear, the ID
    number masked to its first 3 and last 4 characters, the address to its county."""
    db.execute(
        "INSERT INTO guests (homestay_id, personal, name_index, id_number_index, name_masked,"
        " id_number_masked, phone_masked, address_masked, sex, ethnicity, birth_date, id_type,"
        " nationality, foreign_guest, room, check_in, check_in_date, expected_check_out,"
        " checked_out_at, registered_by, created_at) VALUES"
        " (?, ?, ?, ?, '张*丰', ?, '139****5678', '浙江省杭州市***', 'male', '汉族',"
        " '1990-03-07', 'resident_id', 'CHN', 0, '201', '2026-11-29T06:00:00+00:00',"
        " '2026-11-29', '2026-12-01', NULL, 'host1', '2026-11-29T06:00:00+00:00')",
        [
            homestay_id,
            vault.encrypt(
                json.dumps(
                    {
                        "name": "张三丰",
                        "id_number": GUEST_ID,
                        "phone": GUEST_PHONE,
                        "address": "浙江省杭州市西湖区文三路100号",
                    },
                    ensure_ascii=False,
                    sort_keys=True,
                )
            ),
            vault.blind_index("name", "张三丰"),
            vault.blind_index("id_number", GUEST_ID),
            GUEST_ID[:3] + "*" * 11 + GUEST_ID[14:],
        ],
    )
    guest_id = db.execute("SELECT max(id) FROM guests").fetchone()[0]
    db.execute(
        "INSERT INTO guest_companions (guest_id, position, personal, name_index,"
        " id_number_index, name_masked, id_number_masked, id_type, birth_date, nationality,"
        " foreign_guest) VALUES (?, 0, ?, ?, ?, '张*宝', ?, 'resident_id', '2015-06-01', 'CHN', 0)",
        [
            guest_id,
            vault.encrypt(
                json.dumps({"name": "张小宝", "id_number": COMPANION_ID}, sort_keys=True)
            ),
            vault.blind_index("name", "张小宝"),
            vault.blind_index("id_number", COMPANION_ID),
            COMPANION_ID[:3] + "*" * 11 + COMPANION_ID[14:],
        ],
    )


def test_an_existing_database_is_resealed_and_its_clear_dates_are_gone(tmp_path: Path) -> None:
    from agent.village import homestay

    database = Database(tmp_path / "kiosk.db")
    vault = Vault.load_or_create(tmp_path / "secrets" / "vault.key")
    audit = AuditLog(database)
    database.migrate(homestay.AREA, homestay.MIGRATIONS)  # the schema before this change
    with database.write() as db:
        db.execute(
            "INSERT INTO homestays (name, address, rooms, host_username, created_at)"
            " VALUES ('山居小院', '溪头村12号', 6, 'host1', '2026-11-01T00:00:00+00:00')"
        )
        for _ in range(30):
            _old_registration(db, vault, 1)
    path = database.path

    def raw() -> bytes:
        files = (path, path.with_name(path.name + "-wal"))
        return b"".join(p.read_bytes() for p in files if p.exists())

    old_tail = ("*" * 11 + GUEST_ID[14:]).encode()
    assert b"1990-03-07" in raw() and old_tail in raw(), "the old layout was written"

    service = HomestayService(
        database, vault, audit, ReportRecorder(), guest_retention_days=180, clock=Clock()
    ).migrated()
    after = raw()
    for leftover in (b"1990-03-07", b"2015-06-01", old_tail, "杭州市***".encode()):
        assert leftover not in after, leftover
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the WAL with the old pages is emptied"
    with database.read() as db:
        for table in ("guests", "guest_companions"):
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}
            assert "birth_date" not in columns and "age_band" in columns

    found = service.search(id_number=GUEST_ID)
    assert len(found) == 30
    assert (found[0].id_number, found[0].address, found[0].age_band) == (
        GUEST_ID[:2] + "*" * 16, "浙江省***", "30-39",
    )  # fmt: skip
    assert (found[0].companions[0].id_number, found[0].companions[0].age_band) == (
        COMPANION_ID[:2] + "*" * 16, "0-17",
    )  # fmt: skip
    full = service.get_guest(found[0].id, actor="police1", unmasked=True)
    assert (full.birth_date, full.companions[0].birth_date) == (date(1990, 3, 7), date(2015, 6, 1))
    assert full.id_number == GUEST_ID
    # Opening the database again does not migrate twice.
    again = HomestayService(
        database, vault, audit, ReportRecorder(), guest_retention_days=180
    ).migrated()
    assert (
        again.get_guest(found[0].id, actor="police1", unmasked=True).birth_date == full.birth_date
    )
    database.close()


def test_an_existing_database_with_another_key_is_refused_before_resealing(
    tmp_path: Path,
) -> None:
    from agent.village import homestay

    database = Database(tmp_path / "kiosk.db")
    vault = Vault.load_or_create(tmp_path / "secrets" / "vault.key")
    audit = AuditLog(database)
    database.migrate(homestay.AREA, homestay.MIGRATIONS)
    with database.write() as db:
        db.execute(
            "INSERT INTO homestays (name, address, rooms, host_username, created_at)"
            " VALUES ('山居小院', '溪头村12号', 6, 'host1', '2026-11-01T00:00:00+00:00')"
        )
        _old_registration(db, vault, 1)
        db.execute(
            "INSERT INTO homestay_vault_check (id, fingerprint) VALUES (1, ?)",
            [vault.blind_index("vault-key-check", "homestay")],
        )
    with pytest.raises(VaultError, match="restore the original key"):
        HomestayService(
            database, Vault(b"o" * 32), audit, ReportRecorder(), guest_retention_days=180
        ).migrated()
    with database.read() as db:
        assert db.execute("SELECT birth_date FROM guests").fetchone() == ("1990-03-07",)
    database.close()


def test_searches_by_name_or_number_are_audited_by_blind_index_and_limited(kiosk: Kiosk) -> None:
    guest_id = register(kiosk)
    service = kiosk.service
    by_number = service.query(id_number=GUEST_ID.lower())
    by_name = service.query(name=" 张三丰 ", active_only=True)
    assert [r.id for r in service.search_audited(by_number, actor="police1", per_hour=3)] == [
        guest_id
    ]
    assert service.search_audited(by_name, actor="police1", per_hour=3)[0].id == guest_id
    service.record_search(service.query(name="李四"), actor="police1", per_hour=3)
    entries = kiosk.audit.entries(action="guest.search")
    assert [e.actor for e in entries] == ["police1"] * 3
    assert entries[-1].subject == f"id_number:{by_number.id_number_index}"
    assert entries[-2].subject == f"name:{by_name.name_index}"
    assert entries[-2].detail == "filters=name,active_only"
    for entry in entries:
        assert "张三丰" not in entry.subject + entry.detail and GUEST_ID not in entry.subject

    with pytest.raises(SearchLimitError) as raised:
        service.search_audited(by_number, actor="police1", per_hour=3)
    assert raised.value.limit == 3
    assert 0 < raised.value.retry_after_seconds <= 3600
    assert len(kiosk.audit.entries(action="guest.search")) == 3, "a refusal is not counted"
    # Another officer has their own allowance; lists without a name or number are not counted.
    assert service.search_audited(by_number, actor="police2", per_hour=3)
    assert service.search_audited(service.query(active_only=True), actor="police1", per_hour=3)
    # An hour later the allowance is back.
    kiosk.clock.now = NOW + timedelta(hours=1, seconds=1)
    for _ in range(3):
        assert service.search_audited(by_number, actor="police1", per_hour=3)
    # An export by number counts as a search when a limit is given.
    with pytest.raises(SearchLimitError):
        service.export_csv(actor="police1", query=by_number, searches_per_hour=3)
    assert kiosk.audit.entries(action="guest.export") == []


def test_searches_at_once_never_exceed_the_limit(kiosk: Kiosk) -> None:
    from concurrent.futures import ThreadPoolExecutor

    register(kiosk)
    query = kiosk.service.query(id_number=GUEST_ID)

    def search(_: int) -> bool:
        try:
            kiosk.service.search_audited(query, actor="police1", per_hour=5)
        except SearchLimitError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(search, range(24)))
    assert results.count(True) == 5
    assert len(kiosk.audit.entries(action="guest.search")) == 5


def test_a_query_holds_blind_indexes_not_values(kiosk: Kiosk) -> None:
    query = kiosk.service.query(name="张三丰", id_number=f" {GUEST_ID.lower()} ")
    assert "张三丰" not in repr(query) and GUEST_ID not in repr(query).upper()
    assert query.identifying
    assert query.id_number_index == kiosk.service.query(id_number=GUEST_ID).id_number_index
    assert not kiosk.service.query(name="  ", id_number="").identifying
