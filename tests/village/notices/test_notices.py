"""The notice rules and the ``notice`` remote command (through the real command processor)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from agent.alerts.commands import CommandProcessor
from agent.audit import AuditLog
from agent.errors import NotAllowedError, RecordNotFoundError, ValidationError
from agent.store.database import Database
from agent.village.notices import SERVICE, NoticeInput, NoticeService
from agent.village.notices.records import KEPT_AFTER_EXPIRY
from agent.village.photos import PhotoStore
from agent.village.service import service_commands
from tests.fixtures.mosquitto import RecordingTarget

START = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


@dataclass
class Kiosk:
    service: NoticeService
    audit: AuditLog
    database: Database
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    now: list[datetime] = field(default_factory=lambda: [START])

    def move(self, delta: timedelta) -> None:
        self.now[0] += delta

    def processor(self) -> CommandProcessor:
        return CommandProcessor(
            RecordingTarget(), service_commands([SERVICE], {"notices": self.service})
        )


@pytest.fixture
def kiosk(tmp_path: Path) -> Iterator[Kiosk]:
    database = Database(tmp_path / "kiosk.sqlite3")
    audit = AuditLog(database)
    reports: list[tuple[str, dict[str, Any]]] = []
    now = [START]
    service = NoticeService(
        database,
        audit,
        lambda _db, kind, payload: reports.append((kind, payload)),
        clock=lambda: now[0],
    )
    service.migrate()
    service.migrate()  # idempotent
    yield Kiosk(service, audit, database, reports, now)
    database.close()


def notice(**overrides: Any) -> NoticeInput:
    data: dict[str, Any] = {
        "title": "停水通知",
        "text": "明天上午 9 点到 12 点村里停水，请提前储水。",
        "urgency": "normal",
        "expires_at": (START + timedelta(hours=6)).isoformat(),
    }
    data.update(overrides)
    return NoticeInput.model_validate(data)


def command(
    kiosk: Kiosk, body: object, processor: CommandProcessor | None = None
) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = (processor or kiosk.processor()).handle("notice", raw).reply
    return reply.model_dump(exclude_none=True)


def good_command(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "c-1",
        "title": "山洪预警",
        "text": "上游降雨，沿河住户请立即转移到村委会。",
        "urgency": "urgent",
        "expires_at": (START + timedelta(hours=3)).isoformat(),
    }
    body.update(overrides)
    return body


# -- input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field_name", "code"),
    [
        ({"title": "   "}, "title", "notices.title_required"),
        ({"title": "长" * 61}, "title", "notices.title_too_long"),
        ({"text": ""}, "text", "notices.text_required"),
        ({"text": "字" * 2001}, "text", "notices.text_too_long"),
        ({"text": "bell\x07"}, "text", "notices.text_invalid"),
        ({"urgency": "panic"}, "urgency", "notices.urgency_invalid"),
        ({"expires_at": "tomorrow"}, "expires_at", "notices.expires_at_invalid"),
        ({"colour": "red"}, "colour", "notices.field_unknown"),
    ],
)
def test_bad_input_names_the_field_and_a_known_code(
    overrides: dict[str, Any], field_name: str, code: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        notice(**overrides)
    assert (caught.value.field, caught.value.message) == (field_name, code)
    assert code in SERVICE.error_messages


def test_text_keeps_its_paragraphs_and_loses_stray_spaces() -> None:
    typed = notice(title="  停水   通知 ", text="第一段  \r\n\r\n第二段\n")
    assert (typed.title, typed.text) == ("停水 通知", "第一段\n\n第二段")


# -- publishing and expiry --------------------------------------------------------------------


def test_a_published_notice_is_shown_until_it_expires(kiosk: Kiosk) -> None:
    published = kiosk.service.publish(notice(), actor="zhou.staff")
    assert [n.id for n in kiosk.service.active()] == [published.id]
    (entry,) = kiosk.audit.entries(action="notice.publish")
    assert (entry.actor, entry.subject) == ("zhou.staff", f"notice:{published.id}")
    kiosk.move(timedelta(hours=6))
    assert kiosk.service.active() == [], "gone at its expiry"
    assert [n.id for n in kiosk.service.recent()] == [published.id], "still listed for staff"


def test_an_expiry_in_the_past_or_too_far_ahead_is_refused(kiosk: Kiosk) -> None:
    for expires, code in (
        (START - timedelta(minutes=1), "notices.expires_at_past"),
        (START, "notices.expires_at_past"),
        (START + timedelta(days=30, minutes=1), "notices.expires_at_too_far"),
    ):
        with pytest.raises(ValidationError) as caught:
            kiosk.service.publish(notice(expires_at=expires.isoformat()), actor="li.police")
        assert (caught.value.field, caught.value.message) == ("expires_at", code)
    assert kiosk.service.recent() == []
    assert kiosk.audit.entries(action="notice.publish") == []


def test_urgent_notices_come_first_on_the_board(kiosk: Kiosk) -> None:
    normal = kiosk.service.publish(notice(), actor="zhou.staff")
    kiosk.move(timedelta(minutes=1))
    urgent = kiosk.service.publish(notice(urgency="urgent"), actor="li.police")
    kiosk.move(timedelta(minutes=1))
    later = kiosk.service.publish(notice(title="村民大会"), actor="zhou.staff")
    assert [n.id for n in kiosk.service.active()] == [urgent.id, later.id, normal.id]


def test_purge_removes_notices_a_month_after_their_expiry(kiosk: Kiosk) -> None:
    old = kiosk.service.publish(notice(), actor="zhou.staff")
    kiosk.move(timedelta(days=20))
    expires = kiosk.now[0] + timedelta(hours=6)
    fresh = kiosk.service.publish(notice(expires_at=expires.isoformat()), actor="zhou.staff")
    kiosk.move(timedelta(days=10, hours=6, minutes=1))  # old expired 30 days and a minute ago
    assert kiosk.service.purge_expired() == 1
    assert [n.id for n in kiosk.service.recent()] == [fresh.id]
    with pytest.raises(RecordNotFoundError):
        kiosk.service.get(old.id)
    assert kiosk.service.purge_expired() == 0


# -- the urgent takeover and its acknowledgement ----------------------------------------------


def test_the_oldest_unacknowledged_urgent_notice_holds_the_screen(kiosk: Kiosk) -> None:
    assert kiosk.service.pending_urgent() is None
    kiosk.service.publish(notice(), actor="zhou.staff")
    assert kiosk.service.pending_urgent() is None, "a normal notice never takes over"
    first = kiosk.service.publish(notice(urgency="urgent", title="一"), actor="li.police")
    kiosk.move(timedelta(minutes=1))
    second = kiosk.service.publish(notice(urgency="urgent", title="二"), actor="li.police")
    assert kiosk.service.pending_urgent() == first

    kiosk.move(timedelta(minutes=1))
    acknowledged = kiosk.service.acknowledge(first.id, actor="anonymous")
    assert acknowledged.acknowledged_at == kiosk.now[0]
    assert kiosk.reports == [
        ("notice_ack", {"notice": first.id, "acknowledged_at": "2026-12-02T08:02:00+00:00"})
    ]
    assert kiosk.service.pending_urgent() == second
    # Again: nothing changes and nothing more is reported.
    assert kiosk.service.acknowledge(first.id, actor="anonymous") == acknowledged
    assert len(kiosk.reports) == 1
    assert len(kiosk.audit.entries(action="notice.acknowledge")) == 1


def test_an_expired_urgent_notice_stops_holding_the_screen(kiosk: Kiosk) -> None:
    urgent = kiosk.service.publish(notice(urgency="urgent"), actor="li.police")
    kiosk.move(timedelta(hours=6))
    assert kiosk.service.pending_urgent() is None
    with pytest.raises(RecordNotFoundError):
        kiosk.service.acknowledge(urgent.id, actor="anonymous")
    assert kiosk.reports == []


def test_only_urgent_notices_are_acknowledged(kiosk: Kiosk) -> None:
    normal = kiosk.service.publish(notice(), actor="zhou.staff")
    with pytest.raises(NotAllowedError):
        kiosk.service.acknowledge(normal.id, actor="anonymous")
    with pytest.raises(RecordNotFoundError):
        kiosk.service.acknowledge(999, actor="anonymous")
    assert kiosk.reports == []


def test_a_failed_report_undoes_the_acknowledgement(tmp_path: Path) -> None:
    database = Database(tmp_path / "kiosk.sqlite3")
    audit = AuditLog(database)

    def broken(_db: Any, _kind: str, _payload: dict[str, Any]) -> None:
        raise RuntimeError("outbox full")

    service = NoticeService(database, audit, broken, clock=lambda: START)
    service.migrate()
    urgent = service.publish(notice(urgency="urgent"), actor="li.police")
    with pytest.raises(RuntimeError):
        service.acknowledge(urgent.id, actor="anonymous")
    assert service.pending_urgent() == urgent, "no acknowledgement without its report"
    assert audit.entries(action="notice.acknowledge") == []
    database.close()


# -- the remote command -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"text": None}, "text: Enter the text of the notice."),
        ({"title": "  "}, "title: Enter the title of the notice."),
        (
            {"expires_at": (START - timedelta(minutes=5)).isoformat()},
            "expires_at: The expiry time has already passed.",
        ),
        ({"text": "长" * 5000}, "text: The text is longer than 2000 characters."),
        ({"urgency": "critical"}, "urgency: The urgency must be normal or urgent."),
        ({"expires_at": "soon"}, "expires_at: The expiry is not a valid date and time"),
        ({"picture": "x.jpg"}, "picture: The notice contains a field that does not belong"),
        ({"text": 42}, "text: The text must be text"),
    ],
)
def test_bad_notice_commands_get_a_clear_error_and_publish_nothing(
    kiosk: Kiosk, overrides: dict[str, Any], error: str
) -> None:
    body = good_command(**overrides)
    body = {key: value for key, value in body.items() if value is not None}
    reply = command(kiosk, body)
    assert reply["ok"] is False and reply["id"] == "c-1"
    assert str(reply["error"]).startswith(error)
    assert kiosk.service.recent() == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "request is not valid JSON"),
        ([1, 2], "request must be a JSON object"),
        ({"title": "x", "text": "y"}, "id: required"),
        (b'{"id": "c", "pad": "' + b"a" * 70_000 + b'"}', "larger than"),
    ],
)
def test_unreadable_notice_commands_are_refused_before_the_service(
    kiosk: Kiosk, body: object, error: str
) -> None:
    reply = command(kiosk, body)
    assert reply["ok"] is False and error in str(reply["error"])
    assert kiosk.service.recent() == []


def test_a_notice_command_publishes_and_names_the_notice(kiosk: Kiosk) -> None:
    processor = kiosk.processor()
    reply = command(kiosk, good_command(), processor)
    assert reply["ok"] is True
    (published,) = kiosk.service.active()
    assert reply["result"] == {
        "notice": published.id,
        "urgency": "urgent",
        "expires_at": "2026-12-02T11:00:00+00:00",
    }
    assert (published.source, published.created_by) == ("command", "command-centre")
    assert kiosk.service.pending_urgent() == published
    (entry,) = kiosk.audit.entries(action="notice.publish")
    assert entry.actor == "command-centre" and "request c-1" in entry.detail
    # Delivered again, to the same processor or after a restart: still one notice.
    assert command(kiosk, good_command(), processor) == reply
    assert command(kiosk, good_command(), kiosk.processor()) == reply
    assert len(kiosk.service.recent()) == 1


def test_a_naive_expiry_is_the_kiosks_local_time(kiosk: Kiosk) -> None:
    local = (START + timedelta(hours=2)).astimezone().replace(tzinfo=None)
    reply = command(kiosk, good_command(expires_at=local.isoformat()))
    assert reply["result"]["expires_at"] == "2026-12-02T10:00:00+00:00"


def test_service_commands_cannot_take_a_built_in_name_or_clash() -> None:
    processor = CommandProcessor(RecordingTarget())
    with pytest.raises(ValueError, match="arm"):
        processor.add_service_commands({"arm": lambda request: {}})
    with pytest.raises(ValueError, match="two services"):
        service_commands([SERVICE, SERVICE], {"notices": object()})  # type: ignore[dict-item]
    assert "notice" not in processor.known()
    processor.add_service_commands({"notice": lambda request: {"seen": dict(request)}})
    reply = processor.handle("notice", b'{"id": "n1", "x": 1}').reply
    assert reply.ok and reply.result == {"seen": {"id": "n1", "x": 1}}


def test_purge_takes_a_notices_picture_with_it(tmp_path: Path) -> None:
    database = Database(tmp_path / "kiosk.sqlite3")
    now = [START]
    store = PhotoStore(database, tmp_path / "photos", area="notices", clock=lambda: now[0])
    service = NoticeService(
        database, AuditLog(database), lambda *_: None, photos=store, clock=lambda: now[0]
    )
    service.migrate()
    picture = np.full((40, 60, 3), 128, dtype=np.uint8)
    ok, data = cv2.imencode(".png", picture)
    assert ok
    published = service.publish(notice(), actor="zhou.staff", photo=bytes(data))
    assert service.photo(published.id).startswith(b"\xff\xd8")
    assert len(list((tmp_path / "photos" / "notices").iterdir())) == 1
    now[0] += KEPT_AFTER_EXPIRY + timedelta(days=1)
    assert service.purge_expired() == 1
    assert list((tmp_path / "photos" / "notices").iterdir()) == []
    database.close()
