"""Homestay guest registration: validation, encrypted storage, search, audit, reports, purge."""

from __future__ import annotations

import csv
import io
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
from agent.errors import ValidationError
from agent.privacy import Vault, VaultError
from agent.store.database import Database
from agent.village.homestay import (
    ERROR_MESSAGES,
    GuestInput,
    HomestayService,
    RecordNotFoundError,
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
    )
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
    assert record.id_number == GUEST_ID[:3] + "*" * 11 + GUEST_ID[14:]
    assert record.phone == "139****5678"
    assert record.companions[0].name == "张*宝"
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
    assert payload["companions"][0]["id_number"] == COMPANION_ID
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
                   "张三丰", "张小宝", "Maria Lopez", "文三路100号"):  # fmt: skip
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
    assert kiosk.service.search(name="张三") == []
    assert kiosk.service.search(id_number=resident_id(birth="19700101")) == []
    assert all(r.masked and "*" in r.id_number for r in kiosk.service.search())


def test_search_filters(kiosk: Kiosk) -> None:
    early = register(kiosk, check_in="2026-11-20T10:00:00+08:00", expected_check_out="2026-11-22")
    late = register(kiosk, name="李四", companions=[])
    second = kiosk.service.create_homestay("竹林人家", "溪头村30号", 3, "host2")
    elsewhere = kiosk.service.check_in(
        second.id, GuestInput(**guest_form(name="王五", companions=[])), actor="host2"
    ).id
    kiosk.service.check_out(early, actor="host1", at=datetime(2026, 11, 22, 2, tzinfo=UTC))

    def ids(**filters: Any) -> list[int]:
        return [r.id for r in kiosk.service.search(**filters)]

    assert ids() == [elsewhere, late, early]
    assert ids(date_from=date(2026, 11, 25)) == [elsewhere, late]
    assert ids(date_to=date(2026, 11, 20)) == [early]
    assert ids(date_from=date(2026, 11, 20), date_to=date(2026, 11, 20)) == [early]
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
    assert entry.detail == "rows=1 filters=id_number"
    assert GUEST_ID not in entry.detail


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
    old = register(kiosk, check_in="2026-06-01T10:00:00+08:00", expected_check_out="2026-06-05")
    forgotten = register(
        kiosk,
        name="李四",
        companions=[],
        check_in="2026-06-01T10:00:00+08:00",
        expected_check_out="2026-06-04",
    )
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
    assert register(kiosk, name="赵六", companions=[]) > recent


def test_a_different_key_is_refused_at_start(kiosk: Kiosk, tmp_path: Path) -> None:
    register(kiosk)
    same_key = Vault.load_or_create(tmp_path / "secrets" / "vault.key")
    again = HomestayService(
        kiosk.database, same_key, kiosk.audit, kiosk.report, guest_retention_days=180
    )
    assert len(again.search()) == 1
    with pytest.raises(VaultError, match="restore the original key"):
        HomestayService(
            kiosk.database,
            Vault.load_or_create(tmp_path / "other" / "vault.key"),
            kiosk.audit,
            kiosk.report,
            guest_retention_days=180,
        )


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
            assert masked == number[:3] + "*" * 11 + number[14:]
        assert found.phone == guest.phone[:3] + "****" + guest.phone[7:]

    round_trip()
    assert len(kiosk.report.calls) >= 10  # the property ran on many parties, not on none
