"""What hosts and police found at the kiosk, checked against the service and the pages."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.alerts import outbox
from agent.audit import AuditLog
from agent.errors import RecordNotFoundError, ValidationError
from agent.privacy import Vault
from agent.store.database import Database
from agent.village.homestay import GuestInput, HomestayService
from agent.village.homestay.inputs import GuestFormError
from agent.village.services import Services
from tests.fixtures.browser import App, form_token, resident_id
from tests.village.homestay.test_homestay import (
    GUEST_ID,
    Clock,
    Kiosk,
    guest_form,
    register,
)
from web_ui.village.homestay.pages import prefill

# -- a double tap stores one guest; a wrong registration can be deleted ----------------------


def test_a_second_submit_with_the_same_form_token_returns_the_first_registration(
    kiosk: Kiosk,
) -> None:
    guest = GuestInput(**guest_form())
    first = kiosk.service.check_in(
        kiosk.homestay_id, guest, actor="host1", host_username="host1", form_token="tap"
    )
    again = kiosk.service.check_in(
        kiosk.homestay_id, guest, actor="host1", host_username="host1", form_token="tap"
    )
    assert again.id == first.id
    assert len(kiosk.service.search()) == 1
    assert len(kiosk.report.calls) == 1, "one report for one registration"
    other = kiosk.service.check_in(
        kiosk.homestay_id, guest, actor="host1", host_username="host1", form_token="next form"
    )
    assert other.id != first.id


def test_a_host_deletes_a_wrong_registration_of_their_own_homestay_only(kiosk: Kiosk) -> None:
    guest_id = register(kiosk)
    with pytest.raises(RecordNotFoundError):
        kiosk.service.delete_registration(guest_id, host_username="host2")
    removed = kiosk.service.delete_registration(guest_id, host_username="host1")
    assert removed.id == guest_id and removed.masked
    assert kiosk.service.search() == []
    kind, payload = kiosk.report.calls[-1]
    assert (kind, payload["action"], payload["record_id"]) == ("registration", "delete", guest_id)
    assert payload["guest"]["id_number"] == GUEST_ID, "the police's copy can be corrected"
    (entry,) = kiosk.audit.entries(action="guest.delete")
    assert (entry.actor, entry.subject) == ("host1", f"guest:{guest_id}")


def test_check_out_by_a_host_needs_their_own_homestay(kiosk: Kiosk) -> None:
    guest_id = register(kiosk)
    with pytest.raises(RecordNotFoundError):
        kiosk.service.check_out(guest_id, actor="host2", host_username="host2")
    assert kiosk.service.check_out(guest_id, actor="host1", host_username="host1").checked_out_at


# -- the report state is what the outbox says ------------------------------------------------


def test_report_state_is_queued_until_the_outbox_delivered_it(tmp_path: Path) -> None:
    database = Database(tmp_path / "kiosk.db")
    outbox.migrate(database)
    limits = outbox.OutboxLimits(max_rows=1000, max_bytes=10_000_000)

    def report(db: Any, kind: str, payload: dict[str, Any]) -> None:
        outbox.enqueue(
            db, topic=f"v/k/report/{kind}", payload=b"{}", kind=outbox.MessageKind.REPORT,
            limits=limits,
        )  # fmt: skip

    service = HomestayService(
        database,
        Vault.load_or_create(tmp_path / "vault.key"),
        AuditLog(database),
        report,
        guest_retention_days=180,
        clock=Clock(),
    ).migrated()
    homestay = service.create_homestay("山居小院", "溪头村12号", 6, "host1")
    record = service.check_in(homestay.id, GuestInput(**guest_form()), actor="host1")
    assert record.report_state == "queued"
    assert service.search()[0].report_state == "queued"
    with database.write() as db:
        outbox.delete(db, [row.seq for row in outbox.fetch_after(db, 0, 10)])
    assert service.search()[0].report_state == "delivered"
    database.close()


# -- the form: every error in page order, the ID fills birth date and sex, nationality names -


def test_every_error_is_reported_in_the_order_of_the_page() -> None:
    with pytest.raises(GuestFormError) as raised:
        GuestInput(**guest_form(name="", phone="12", room="", birth_date="not a date"))
    fields = [error.field for error in raised.value.errors]
    assert fields == ["name", "birth_date", "phone", "room"]
    assert raised.value.field == "name"


def test_birth_date_and_sex_come_from_a_resident_id_and_a_mismatch_is_refused() -> None:
    form = guest_form()
    del form["birth_date"], form["sex"]
    guest = GuestInput(**form)
    assert (guest.birth_date.isoformat(), guest.sex) == ("1990-03-07", "male")
    with pytest.raises(ValidationError) as raised:
        GuestInput(**guest_form(sex="female"))
    assert (raised.value.field, raised.value.message) == ("sex", "homestay.sex_mismatch")


@pytest.mark.parametrize("typed", ["美国", "United States", "united states", "USA", "ｕｓａ"])
def test_nationality_by_code_or_exact_name(typed: str) -> None:
    guest = GuestInput(
        **guest_form(id_type="passport", id_number="P12345678", nationality=typed, companions=[])
    )
    assert guest.nationality == "USA"


def test_a_nationality_that_is_no_country_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        GuestInput(
            **guest_form(id_type="passport", id_number="P12345678", nationality="XYZ",
                         companions=[])
        )  # fmt: skip
    assert raised.value.message == "homestay.nationality_unknown"


# -- a booking pre-fills the form through CheckInPrefill -------------------------------------


class FakeBookings:
    """A provider of CheckInPrefill: one booking (7) of host wang.host."""

    def migrate(self) -> None: ...

    def purge_expired(self) -> int:
        return 0

    def tick(self) -> None: ...

    def check_in_prefill(self, booking_id: int, *, host_username: str) -> Mapping[str, str]:
        if booking_id != 7 or host_username != "wang.host":
            raise RecordNotFoundError("booking_id", "booking.not_found")
        return {"name": "赵小雨", "phone": "13700001111", "room": "301", "secret": "x"}


def test_prefill_asks_the_provider_and_keeps_form_fields_only(web_app: App) -> None:
    homestays = web_app.parts.context.homestays
    services = Services({"homestay": homestays, "tourism": FakeBookings()})
    assert prefill(services, 7, host_username="wang.host") == {
        "name": "赵小雨", "phone": "13700001111", "room": "301",
    }  # fmt: skip
    with pytest.raises(RecordNotFoundError):
        prefill(services, 7, host_username="other.host")
    assert prefill(Services({"homestay": homestays}), 7, host_username="wang.host") is None


def test_register_form_starts_from_a_booking(web_app: App) -> None:
    context = web_app.parts.context
    context.services = Services({"homestay": context.homestays, "tourism": FakeBookings()})
    host = web_app.session_client("host")
    url = f"/host/homestays/{web_app.homestay_id}/register"
    page = host.get(url, params={"booking": "7"})
    assert page.status_code == 200
    assert 'value="赵小雨"' in page.text and 'value="301"' in page.text
    assert host.get(url, params={"booking": "8"}).status_code == 404


# -- pages -------------------------------------------------------------------------------------


def test_admin_may_only_name_a_host_account_as_host(web_app: App) -> None:
    homestays = web_app.parts.context.homestays
    with pytest.raises(ValidationError) as raised:
        homestays.add_homestay("山居", "竹林村", "3", "li.police", actor="zhao.admin")
    assert raised.value.message == "host_username.unknown"
    made = homestays.add_homestay("山居", "竹林村", "3", "wang.host", actor="zhao.admin")
    assert made.rooms == 3


def test_check_out_asks_for_confirmation_first(web_app: App) -> None:
    host = web_app.session_client("host")
    confirm = host.get(f"/host/guests/{web_app.guest_id}/checkout")
    assert confirm.status_code == 200 and "data-confirm-yes" in confirm.text
    assert web_app.parts.context.homestays.search(active_only=True), "nothing happened yet"
    done = host.post(
        f"/host/guests/{web_app.guest_id}/checkout", data={"csrf_token": form_token(confirm.text)}
    )
    assert done.status_code == 303
    assert web_app.parts.context.homestays.search(active_only=True) == []


def test_the_register_page_says_the_report_is_queued_not_delivered(web_app: App) -> None:
    page = web_app.session_client("host").get("/host/homestays?done=registered")
    assert "已报送派出所" not in page.text
    assert "待发队列" in page.text


def test_a_draft_comes_back_after_the_session_ended(web_app: App) -> None:
    host = web_app.session_client("host")
    url = f"/host/homestays/{web_app.homestay_id}/register"
    host.get(url)
    saved = host.post(
        f"/api/homestays/{web_app.homestay_id}/draft",
        json={"name": "钱多多", "id_number": resident_id(), "companion_count": "0"},
    )
    assert saved.status_code == 204
    again = web_app.session_client("host")  # a new session of the same host
    page = again.get(url)
    assert 'value="钱多多"' in page.text and "data-draft-restored" in page.text
    other = web_app.session_client("police")
    assert other.post(f"/api/homestays/{web_app.homestay_id}/draft", json={}).status_code == 403


# -- police search -----------------------------------------------------------------------------


def test_a_reversed_date_range_is_refused_with_a_message(web_app: App) -> None:
    homestays = web_app.parts.context.homestays
    with pytest.raises(ValidationError) as raised:
        homestays.query(date_from=date(2026, 5, 2), date_to=date(2026, 5, 1))
    assert raised.value.message == "homestay.date_range_reversed"
    police = web_app.session_client("police")
    page = police.get(
        "/police/registrations", params={"date_from": "2026-05-02", "date_to": "2026-05-01"}
    )
    assert "结束日期早于开始日期" in page.text
    api = police.post(
        "/api/guests/search", json={"date_from": "2026-05-02", "date_to": "2026-05-01"}
    )
    assert api.status_code == 422 and api.json()["error"]["code"] == "homestay.date_range_reversed"


def test_police_find_a_guest_by_part_of_the_name(web_app: App) -> None:
    police = web_app.session_client("police")
    token = form_token(police.get("/police/registrations").text)
    posted = police.post("/police/registrations/search", data={"csrf_token": token, "name": "三丰"})
    found = police.get(posted.headers["location"])
    assert f'data-guest="{web_app.guest_id}"' in found.text
    (entry,) = web_app.parts.context.audit.entries(action="guest.search")
    assert "三丰" not in entry.subject + entry.detail, "the audit keeps blind indexes only"


def test_the_police_csv_reads_in_a_spreadsheet_in_the_page_language(web_app: App) -> None:
    police = web_app.session_client("police")
    body = police.get("/police/registrations.csv").content.decode("utf-8")
    assert body.startswith("\ufeff"), "a byte-order mark, so Excel reads Chinese"
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    header, guest = rows[0], rows[1]
    assert header[:5] == ["登记编号", "身份", "民宿", "房间", "姓名"]
    column = dict(zip(header, guest, strict=True))
    assert column["证件号码"] == f'="{resident_id()}"', "kept as text, not 1.1E+17"
    assert column["性别"] == "男" and column["身份"] == "入住人" and column["国籍"] == "中国 (CHN)"
    record = web_app.parts.context.homestays.search()[0]
    assert column["入住时间"] == record.check_in.astimezone().strftime("%Y-%m-%d %H:%M")

    police.cookies.set("vk_lang", "en")
    english = police.get("/police/registrations.csv").content.decode("utf-8")
    assert english.removeprefix("\ufeff").startswith("Record,Role,Homestay,Room,Name")
    assert ",Guest," in english and ",male," in english


def test_the_audit_log_speaks_the_readers_language_and_filters_by_day(web_app: App) -> None:
    police = web_app.session_client("police")
    police.get("/police/registrations.csv")
    page = police.get("/police/audit").text
    assert "导出登记信息" in page
    assert "1 条记录" in page and "条件：无" in page, "details in words, not rows=1"
    today = datetime.now().date()
    kept = police.get(
        "/police/audit", params={"date_from": today.isoformat(), "date_to": today.isoformat()}
    )
    assert 'data-action="guest.export"' in kept.text
    past = (today - timedelta(days=3)).isoformat()
    earlier = police.get("/police/audit", params={"date_from": past, "date_to": past})
    assert 'data-action="guest.export"' not in earlier.text
    reversed_range = police.get(
        "/police/audit", params={"date_from": today.isoformat(), "date_to": past}
    )
    assert reversed_range.status_code == 400 and "结束日期早于开始日期" in reversed_range.text
