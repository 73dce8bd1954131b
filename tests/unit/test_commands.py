"""Remote commands: every request gets a reply with its id; bad ones get a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.alerts.commands import CommandProcessor
from agent.alerts.service import AlertService
from agent.alerts.topics import Topics
from agent.audit import AuditLog
from agent.errors import KioskError
from agent.store.database import Database
from tests.fixtures.mosquitto import TINY_JPEG, RecordingTarget, kiosk_config


def _handle(processor: CommandProcessor, name: str, body: object) -> dict[str, object]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return processor.handle(name, raw).reply.model_dump(exclude_none=True)


@pytest.fixture
def target() -> RecordingTarget:
    return RecordingTarget()


@pytest.fixture
def processor(target: RecordingTarget) -> CommandProcessor:
    return CommandProcessor(target)


@pytest.mark.parametrize(
    ("name", "body", "error"),
    [
        ("arm", b"{oops", "request is not valid JSON"),
        ("arm", b"\xff\xfe", "request is not valid JSON"),
        ("arm", [1, 2], "request must be a JSON object"),
        ("arm", {"camera": "cam1"}, "id: required"),
        ("arm", {"id": "", "camera": "cam1"}, "id: String should have at least 1 character"),
        ("arm", {"id": "r1", "camera": 7}, "camera: Input should be a valid string"),
        ("arm", {"id": "r1", "camera": "cam9"}, "camera: unknown camera 'cam9'"),
        (
            "sensitivity",
            {"id": "r1", "value": 1.5},
            "value: Input should be less than or equal to 1",
        ),
        (
            "sensitivity",
            {"id": "r1", "value": -0.1},
            "value: Input should be greater than or equal",
        ),
        ("sensitivity", {"id": "r1"}, "value: required"),
        ("snapshot", {"id": "r1"}, "camera: required"),
        ("health", {"id": "r1", "extra": 1}, "extra: unknown field"),
        ("reboot", {"id": "r1"}, "unknown command 'reboot'"),
    ],
)
def test_bad_requests_get_a_clear_error_and_nothing_runs(
    processor: CommandProcessor, target: RecordingTarget, name: str, body: object, error: str
) -> None:
    reply = _handle(processor, name, body)
    assert reply["ok"] is False
    assert error in str(reply["error"])
    assert target.calls == []


def test_non_finite_sensitivity_is_refused(processor: CommandProcessor) -> None:
    reply = _handle(processor, "sensitivity", b'{"id": "r1", "value": NaN}')
    assert reply["ok"] is False and "value" in str(reply["error"])


def test_error_replies_carry_the_request_id_when_there_is_one(processor: CommandProcessor) -> None:
    assert _handle(processor, "reboot", {"id": "r9"})["id"] == "r9"
    assert _handle(processor, "sensitivity", {"id": "r8", "value": 3})["id"] == "r8"
    assert processor.handle("arm", b"{oops").reply.id is None


def test_valid_requests_run_and_reply_with_their_result(
    processor: CommandProcessor, target: RecordingTarget
) -> None:
    assert _handle(processor, "arm", {"id": "a"}) == {
        "id": "a",
        "ok": True,
        "result": {"camera": None, "armed": True},
    }
    assert _handle(processor, "disarm", {"id": "b", "camera": "cam2"})["ok"] is True
    assert _handle(processor, "sensitivity", {"id": "c", "value": 0})["ok"] is True
    outcome = processor.handle("snapshot", b'{"id": "d", "camera": "cam1"}')
    assert outcome.snapshot == ("cam1", TINY_JPEG)
    health = _handle(processor, "health", {"id": "e"})
    assert health["result"] == target.health()
    assert target.calls == [
        ("arm", None),
        ("disarm", "cam2"),
        ("sensitivity", (None, 0.0)),
        ("snapshot", "cam1"),
    ]


def test_a_redelivered_request_is_answered_again_but_not_run_twice(
    processor: CommandProcessor, target: RecordingTarget
) -> None:
    first = _handle(processor, "snapshot", {"id": "same", "camera": "cam1"})
    again = _handle(processor, "snapshot", {"id": "same", "camera": "cam1"})
    assert first == again and first["ok"] is True
    assert target.calls == [("snapshot", "cam1")]


class _BrokenTarget(RecordingTarget):
    def arm(self, camera_id: str | None) -> None:
        raise ZeroDivisionError("bug")

    def disarm(self, camera_id: str | None) -> None:
        raise KioskError("camera cam1 is offline")

    def snapshot_now(self, camera_id: str) -> bytes:
        return b"not a jpeg"


def test_failures_of_the_agent_become_error_replies() -> None:
    processor = CommandProcessor(_BrokenTarget())
    assert _handle(processor, "arm", {"id": "1"})["error"] == (
        "internal error while executing the command"
    )
    assert _handle(processor, "disarm", {"id": "2"})["error"] == "camera cam1 is offline"
    snapshot = processor.handle("snapshot", b'{"id": "3", "camera": "cam1"}')
    assert snapshot.reply.ok is False and snapshot.snapshot is None


def test_oversized_request_is_refused(processor: CommandProcessor) -> None:
    reply = _handle(processor, "arm", b'{"id": "x", "pad": "' + b"a" * 70_000 + b'"}')
    assert reply["ok"] is False and "larger than" in str(reply["error"])


def test_only_single_level_command_topics_are_commands() -> None:
    topics = Topics("village", "kiosk-1")
    assert topics.command_name("village/kiosk-1/cmd/arm") == "arm"
    assert topics.command_name("village/kiosk-1/cmd/arm/result") is None
    assert topics.command_name("village/kiosk-2/cmd/arm") is None
    assert topics.command_name("village/kiosk-1/cmd/") is None


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["arm", "disarm", "snapshot", "sensitivity", "health", "", "x/y", "arm2"]),
    body=st.one_of(
        st.binary(max_size=64),
        st.dictionaries(
            st.sampled_from(["id", "camera", "value", "extra"]), _json_values, max_size=4
        ).map(lambda d: json.dumps(d).encode()),
    ),
)
def test_any_command_gets_a_reply_and_never_raises(name: str, body: bytes) -> None:
    reply = CommandProcessor(RecordingTarget()).handle(name, body).reply
    if not reply.ok:
        assert reply.error


def test_the_outcome_names_the_camera_and_marks_a_repeat(processor: CommandProcessor) -> None:
    first = processor.handle("disarm", b'{"id": "r1", "camera": "cam1"}')
    assert (first.camera, first.repeated) == ("cam1", False)
    again = processor.handle("disarm", b'{"id": "r1", "camera": "cam1"}')
    assert (again.camera, again.repeated, again.reply) == ("cam1", True, first.reply)
    assert processor.handle("arm", b'{"id": "r2"}').camera is None
    # A refused request still names the camera it was about, if that is a camera id at all.
    assert processor.handle("sensitivity", b'{"id": "r3", "camera": "cam2"}').camera == "cam2"
    assert processor.handle("arm", b'{"id": "r4", "camera": "a/b#"}').camera is None


def test_commands_refused_while_the_kiosk_is_busy_are_audited_too(tmp_path: Path) -> None:
    database = Database(tmp_path / "kiosk.sqlite3")
    audit = AuditLog(database)
    config = kiosk_config(tmp_path, 1883, enabled=False)
    service = AlertService(config, database, RecordingTarget(), audit=audit)
    # Nothing works the queue (MQTT off, not started): it fills, then commands are refused.
    for number in range(65):
        service._receive_command("arm", json.dumps({"id": f"r{number}"}).encode())
    service._receive_command("reboot", b"{}")
    service._run_command("disarm", b'{"id": "d1", "camera": "cam1"}')
    rows = [(e.actor, e.action, e.subject, e.detail) for e in reversed(audit.entries())]
    database.close()
    assert rows == [
        ("command-centre", "command.arm", "kiosk-1", "error: kiosk busy"),
        ("command-centre", "command.unknown", "kiosk-1", "error: kiosk busy"),
        ("command-centre", "command.disarm", "cam1", "ok; request d1"),
    ]
