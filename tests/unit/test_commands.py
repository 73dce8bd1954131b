"""Remote commands: every request gets a reply with its id; bad ones get a clear error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.alerts.commands import CommandProcessor
from agent.alerts.topics import Topics
from agent.errors import KioskError
from tests.fixtures.mosquitto import TINY_JPEG, RecordingTarget


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
