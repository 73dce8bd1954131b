"""The feedback service: who may leave and answer it, the code and its throttle, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.accounts import Role
from agent.audit import AuditLog
from agent.errors import NotAllowedError, RecordNotFoundError, ValidationError
from agent.privacy import Vault
from agent.store.database import Database
from agent.village.feedback import (
    Actor,
    CodePausedError,
    FeedbackInput,
    FeedbackService,
    FeedbackSettings,
    State,
)
from agent.village.feedback.records import CODE_ALPHABET, CODE_LENGTH

KIOSK = Actor("anonymous", None, at_kiosk=True)
PHONE_VISITOR = Actor("anonymous", None)
FAMILY = Actor("chen.family", Role.FAMILY)
STAFF = Actor("zhou.staff", Role.STAFF)
POLICE = Actor("li.police", Role.POLICE)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.database = Database(tmp_path / "kiosk.sqlite3")
        self.audit = AuditLog(self.database)
        self.clock = Clock()
        self.service = FeedbackService(
            self.database,
            Vault.load_or_create(tmp_path / "secrets" / "key"),
            self.audit,
            settings=FeedbackSettings(answered_retention_days=30, code_max_failures=4),
            clock=self.clock,
        )
        self.service.migrate()

    def submit(self, actor: Actor = KIOSK, **overrides: Any) -> tuple[int, str]:
        data: dict[str, Any] = {"category": "suggestion", "text": "村口路灯坏了，晚上看不清路。"}
        data.update(overrides)
        submitted = self.service.submit(FeedbackInput(**data), actor=actor)
        return submitted.feedback.id, submitted.code

    def audits(self, action: str) -> int:
        with self.database.read() as db:
            return int(
                db.execute("SELECT COUNT(*) FROM audit_log WHERE action = ?", [action]).fetchone()[
                    0
                ]
            )


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_left_at_the_kiosk_answered_and_read_back_by_code(setup: Setup) -> None:
    feedback_id, code = setup.submit()
    assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET)
    before = setup.service.read_reply(code.lower(), actor=KIOSK, address="127.0.0.1")
    assert before.state is State.NEW and before.reply == ""
    answered = setup.service.reply(feedback_id, "  已报修，本周内修好。 ", actor=STAFF)
    assert answered.state is State.ANSWERED and answered.replied_by == "zhou.staff"
    view = setup.service.read_reply(code, actor=FAMILY, address="10.0.0.8")
    assert view.reply == "已报修，本周内修好。" and view.replied_at == setup.clock.now
    assert setup.audits("feedback.reply") == 1 and setup.audits("feedback.submit") == 1
    setup.service.reply(feedback_id, "已修好。", actor=STAFF)
    assert setup.audits("feedback.reply_edit") == 1


def test_codes_are_stored_only_as_digests_and_phones_sealed(setup: Setup) -> None:
    _, code = setup.submit(anonymous=False, name="王五", phone="13912345678")
    with setup.database.read() as db:
        dump = repr(db.execute("SELECT * FROM feedback").fetchall())
    assert code not in dump and "13912345678" not in dump
    [item] = setup.service.list(actor=STAFF)
    assert (item.name, item.phone, item.anonymous) == ("王五", "139****5678", False)
    # An anonymous note keeps nothing of what was typed in the name boxes.
    setup.submit(anonymous=True, name="李四", phone="13812345678")
    anonymous = setup.service.list(actor=STAFF)[0]
    assert (anonymous.name, anonymous.phone, anonymous.anonymous) == ("", "", True)


def test_only_the_kiosk_screen_or_a_family_phone_leaves_feedback(setup: Setup) -> None:
    for actor in (PHONE_VISITOR, POLICE, STAFF):
        with pytest.raises(NotAllowedError):
            setup.submit(actor=actor)
        with pytest.raises(NotAllowedError):
            setup.service.read_reply("ABCDEF", actor=actor, address="10.0.0.9")
    feedback_id, _ = setup.submit(actor=FAMILY)
    assert setup.service.get(feedback_id, actor=STAFF).channel == "phone"
    for actor in (KIOSK, FAMILY, POLICE):
        with pytest.raises(NotAllowedError):
            setup.service.reply(feedback_id, "好的", actor=actor)
        with pytest.raises(NotAllowedError):
            setup.service.list(actor=actor)


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"text": "  "}, "text", "feedback.text_required"),
        ({"text": "字" * 10_000}, "text", "feedback.text_too_long"),
        ({"category": "bribe"}, "category", "feedback.category_invalid"),
        ({"category": ""}, "category", "feedback.category_required"),
        ({"anonymous": False, "name": " "}, "name", "feedback.name_required"),
        ({"anonymous": False, "name": "王" * 51}, "name", "feedback.name_too_long"),
        ({"anonymous": False, "name": "王五", "phone": "110"}, "phone", "feedback.phone_format"),
    ],
)
def test_bad_feedback_names_the_field(
    setup: Setup, overrides: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        setup.submit(**overrides)
    assert (refused.value.field, refused.value.message) == (field, code)
    assert setup.service.list(actor=STAFF) == []


def test_bad_replies_change_nothing(setup: Setup) -> None:
    feedback_id, _ = setup.submit()
    for text, code in (("  ", "feedback.reply_required"), ("复" * 2001, "feedback.reply_too_long")):
        with pytest.raises(ValidationError) as refused:
            setup.service.reply(feedback_id, text, actor=STAFF)
        assert refused.value.message == code
    assert setup.service.get(feedback_id, actor=STAFF).state is State.NEW
    assert setup.audits("feedback.reply") == 0
    with pytest.raises(RecordNotFoundError):
        setup.service.reply(999, "好", actor=STAFF)


def test_wrong_codes_pause_the_client_and_a_right_code_gives_one_back(setup: Setup) -> None:
    _, code = setup.submit()
    wrong = "ABCDEF" if code != "ABCDEF" else "ABCDEG"
    with pytest.raises(ValidationError) as malformed:
        setup.service.read_reply("AB-C0", actor=KIOSK, address="127.0.0.1")
    assert malformed.value.message == "feedback.code_format"
    for _ in range(2):
        with pytest.raises(ValidationError) as unknown:
            setup.service.read_reply(wrong, actor=KIOSK, address="127.0.0.1")
        assert unknown.value.message == "feedback.code_unknown"
    setup.service.read_reply(code, actor=KIOSK, address="127.0.0.1")  # counted, then given back
    with pytest.raises(ValidationError):
        setup.service.read_reply(wrong, actor=KIOSK, address="127.0.0.1")
    with pytest.raises(ValidationError):  # the 4th failure pauses the address
        setup.service.read_reply(wrong, actor=KIOSK, address="127.0.0.1")
    with pytest.raises(CodePausedError) as paused:
        setup.service.read_reply(code, actor=KIOSK, address="127.0.0.1")
    assert paused.value.retry_after_seconds > 0
    # Another client is not paused; the paused one may try again after the pause.
    assert setup.service.read_reply(code, actor=FAMILY, address="10.0.0.7").state is State.NEW
    setup.clock.now += timedelta(minutes=16)
    assert setup.service.read_reply(code, actor=KIOSK, address="127.0.0.1").state is State.NEW


def test_answered_feedback_goes_after_its_retention_unanswered_stays_a_year(
    setup: Setup,
) -> None:
    answered, code = setup.submit()
    waiting, _ = setup.submit()
    setup.service.reply(answered, "已处理", actor=STAFF)
    setup.clock.now += timedelta(days=29)
    assert setup.service.purge_expired() == 0
    setup.clock.now += timedelta(days=2)
    assert setup.service.purge_expired() == 1
    with pytest.raises(RecordNotFoundError):
        setup.service.get(answered, actor=STAFF)
    with pytest.raises(ValidationError):
        setup.service.read_reply(code, actor=KIOSK, address="127.0.0.1")
    assert setup.service.get(waiting, actor=STAFF).state is State.NEW
    setup.clock.now += timedelta(days=340)
    assert setup.service.purge_expired() == 1
    assert setup.audits("feedback.purge") == 2
