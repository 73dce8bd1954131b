"""The dispute service: the state machine, who may change what, reports, statistics, purge."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.accounts import Role
from agent.audit import AuditLog
from agent.errors import NotAllowedError, RecordNotFoundError, ValidationError
from agent.privacy import Vault
from agent.store.database import Database
from agent.village.disputes import (
    Actor,
    DisputeInput,
    DisputeService,
    DisputeSettings,
    PartyInput,
    State,
)
from agent.village.disputes.records import TERMINAL, TRANSITIONS, check_transition, parse_state

ZHOU = Actor("zhou.staff", Role.STAFF)
WU = Actor("wu.staff", Role.STAFF)
ADMIN = Actor("zhao.admin", Role.ADMIN)
POLICE = Actor("li.police", Role.POLICE)
FAMILY = Actor("chen.family", Role.FAMILY)
KIOSK = Actor("anonymous", None)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.database = Database(tmp_path / "kiosk.sqlite3")
        self.vault = Vault.load_or_create(tmp_path / "secrets" / "key")
        self.audit = AuditLog(self.database)
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.clock = Clock()
        self.service = DisputeService(
            self.database,
            self.vault,
            self.audit,
            lambda _db, kind, payload: self.reports.append((kind, payload)),
            settings=DisputeSettings(retention_days=365),
            clock=self.clock,
        )
        self.service.migrate()

    def file(self, **overrides: Any) -> int:
        data: dict[str, Any] = {
            "category": "neighbour",
            "description": "邻居家的竹子长过了界，挡住了我家的田。",
            "parties": [PartyInput("张三丰", "13812345678"), PartyInput("李四", "")],
        }
        data.update(overrides)
        return self.service.file(DisputeInput(**data)).id

    def row(self, dispute_id: int) -> tuple[Any, ...]:
        with self.database.read() as db:
            return tuple(db.execute("SELECT * FROM disputes WHERE id = ?", [dispute_id]).fetchone())

    def changes(self, dispute_id: int) -> int:
        with self.database.read() as db:
            return int(
                db.execute(
                    "SELECT COUNT(*) FROM dispute_changes WHERE dispute_id = ?", [dispute_id]
                ).fetchone()[0]
            )

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


def _walk_to(setup: Setup, dispute_id: int, state: State, actor: Actor = ZHOU) -> None:
    """Take the dispute and bring it to ``state`` by the shortest legal path."""
    paths = {
        State.RECORDED: [],
        State.MEDIATING: [State.MEDIATING],
        State.CONTINUING: [State.MEDIATING, State.CONTINUING],
        State.RESOLVED: [State.MEDIATING, State.RESOLVED],
        State.JUDICIAL: [State.MEDIATING, State.JUDICIAL],
        State.TRANSFERRED: [State.MEDIATING, State.TRANSFERRED],
    }
    for step in paths[state]:
        department = "镇司法所" if step is State.TRANSFERRED else ""
        setup.service.change_state(dispute_id, step, actor=actor, department=department)


# -- the state machine -------------------------------------------------------------------------


def test_the_transition_table_is_the_agreed_one() -> None:
    assert TRANSITIONS[State.RECORDED] == {State.MEDIATING}
    outcomes = {State.RESOLVED, State.CONTINUING, State.JUDICIAL, State.TRANSFERRED}
    assert TRANSITIONS[State.MEDIATING] == outcomes
    assert TRANSITIONS[State.CONTINUING] == outcomes - {State.CONTINUING} | {State.MEDIATING}
    assert {State.RESOLVED, State.JUDICIAL, State.TRANSFERRED} == TERMINAL


ALL_PAIRS = list(itertools.product(State, State))
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if b not in TRANSITIONS[a]]


@pytest.mark.parametrize(("current", "wanted"), ILLEGAL, ids=lambda s: str(s))
def test_every_illegal_transition_is_refused_and_changes_nothing(
    setup: Setup, current: State, wanted: State
) -> None:
    dispute_id = setup.file()
    _walk_to(setup, dispute_id, current)
    before, changes, reports = setup.row(dispute_id), setup.changes(dispute_id), len(setup.reports)
    with pytest.raises(ValidationError) as refused:
        setup.service.change_state(dispute_id, wanted, actor=ZHOU, department="镇司法所")
    expected = (
        "disputes.already_closed" if current in TERMINAL else "disputes.transition_not_allowed"
    )
    assert refused.value.message == expected
    assert refused.value.field == "state"
    assert setup.row(dispute_id) == before
    assert setup.changes(dispute_id) == changes
    assert len(setup.reports) == reports


@pytest.mark.parametrize(
    ("current", "wanted"), [(a, b) for a, b in ALL_PAIRS if b in TRANSITIONS[a]], ids=str
)
def test_every_legal_transition_is_made_recorded_audited_and_reported(
    setup: Setup, current: State, wanted: State
) -> None:
    dispute_id = setup.file()
    _walk_to(setup, dispute_id, current)
    changes = setup.changes(dispute_id)
    setup.clock.now += timedelta(hours=1)
    department = "县自然资源局" if wanted is State.TRANSFERRED else ""
    record = setup.service.change_state(
        dispute_id, wanted, actor=ZHOU, department=department, note="双方到场"
    )
    assert record.state is wanted
    assert record.mediator == "zhou.staff"
    assert setup.changes(dispute_id) == changes + 1
    last = record.history[-1]
    assert (last.from_state, last.to_state, last.actor) == (current, wanted, "zhou.staff")
    assert last.at == setup.clock.now and last.note == "双方到场"
    assert (record.closed_at == setup.clock.now) is (wanted in TERMINAL)
    kind, payload = setup.reports[-1]
    assert kind == "dispute"
    assert payload["state"] == wanted.value and payload["from_state"] == current.value
    assert payload["reference"] == record.reference and payload["category"] == "neighbour"
    assert payload["department"] == department


def test_forged_state_names_are_refused() -> None:
    for forged in ("closed", "RESOLVED ", "resolved;drop", "", "化解成功"):
        if forged.strip() == "resolved":
            continue
        with pytest.raises(ValidationError) as refused:
            parse_state(forged)
        assert refused.value.message == "disputes.state_invalid"
    with pytest.raises(ValidationError):
        check_transition(State.RESOLVED, State.MEDIATING)


def test_only_the_mediator_or_an_admin_changes_a_taken_dispute(setup: Setup) -> None:
    dispute_id = setup.file()
    setup.service.change_state(dispute_id, State.MEDIATING, actor=ZHOU)
    before, reports = setup.row(dispute_id), len(setup.reports)
    for other in (WU, POLICE, FAMILY, KIOSK):
        with pytest.raises(NotAllowedError) as refused:
            setup.service.change_state(dispute_id, State.RESOLVED, actor=other)
        expected = "disputes.not_mediator" if other is WU else "disputes.not_staff"
        assert refused.value.code == expected
    assert setup.row(dispute_id) == before and len(setup.reports) == reports
    # Another mediator cannot take it over by "taking" it again either.
    with pytest.raises(NotAllowedError):
        setup.service.change_state(dispute_id, State.MEDIATING, actor=WU)
    # The admin may; the mediator stays who took it.
    record = setup.service.change_state(dispute_id, State.CONTINUING, actor=ADMIN)
    assert record.state is State.CONTINUING and record.mediator == "zhou.staff"
    assert record.history[-1].actor == "zhao.admin"
    record = setup.service.change_state(dispute_id, State.RESOLVED, actor=ZHOU)
    assert record.state is State.RESOLVED


def test_police_and_family_cannot_take_a_dispute(setup: Setup) -> None:
    dispute_id = setup.file()
    for actor in (POLICE, FAMILY, KIOSK):
        with pytest.raises(NotAllowedError):
            setup.service.change_state(dispute_id, State.MEDIATING, actor=actor)
    assert setup.service.get(dispute_id, actor=POLICE).state is State.RECORDED


def test_a_transfer_needs_the_department_and_bad_notes_change_nothing(setup: Setup) -> None:
    dispute_id = setup.file()
    setup.service.change_state(dispute_id, State.MEDIATING, actor=ZHOU)
    before = setup.row(dispute_id)
    for department, note, code in (
        ("  ", "", "disputes.department_required"),
        ("部" * 101, "", "disputes.department_too_long"),
        ("镇司法所", "记" * 501, "disputes.note_too_long"),
    ):
        with pytest.raises(ValidationError) as refused:
            setup.service.change_state(
                dispute_id, State.TRANSFERRED, actor=ZHOU, department=department, note=note
            )
        assert refused.value.message == code
    assert setup.row(dispute_id) == before
    record = setup.service.change_state(
        dispute_id, State.TRANSFERRED, actor=ZHOU, department=" 县 自然资源局 "
    )
    assert record.department == "县 自然资源局"


def test_an_unknown_dispute_is_not_found(setup: Setup) -> None:
    with pytest.raises(RecordNotFoundError):
        setup.service.change_state(999, State.MEDIATING, actor=ZHOU)
    with pytest.raises(RecordNotFoundError):
        setup.service.get(999, actor=ZHOU)


# -- filing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"description": "   "}, "description", "disputes.description_required"),
        ({"description": "字" * 10_000}, "description", "disputes.description_too_long"),
        ({"category": ""}, "category", "disputes.category_required"),
        ({"category": "murder"}, "category", "disputes.category_invalid"),
        ({"parties": [PartyInput("", "")]}, "parties[0].name", "disputes.name_required"),
        ({"parties": []}, "parties[0].name", "disputes.name_required"),
        ({"parties": [PartyInput("张" * 51)]}, "parties[0].name", "disputes.name_too_long"),
        ({"parties": [PartyInput("张三\x00")]}, "parties[0].name", "disputes.name_format"),
        ({"parties": [PartyInput("张三", "12345")]}, "parties[0].phone", "disputes.phone_format"),
        (
            {"parties": [PartyInput("张三"), PartyInput("", "13812345678")]},
            "parties[1].name",
            "disputes.phone_without_name",
        ),
        ({"parties": [PartyInput("张三")] * 7}, "parties", "disputes.too_many_parties"),
    ],
)
def test_bad_filings_name_the_field(
    setup: Setup, overrides: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        setup.file(**overrides)
    assert (refused.value.field, refused.value.message) == (field, code)
    with setup.database.read() as db:
        assert db.execute("SELECT COUNT(*) FROM disputes").fetchone()[0] == 0
    assert setup.reports == []


def test_a_filing_seals_phones_masks_for_police_and_reports_no_personal_data(
    setup: Setup,
) -> None:
    dispute_id = setup.file()
    with setup.database.read() as db:
        stored = json.dumps([list(r) for r in db.execute("SELECT * FROM dispute_parties")])
    assert "13812345678" not in stored and "张三丰" not in stored
    police = setup.service.get(dispute_id, actor=POLICE)
    assert [(p.name, p.phone) for p in police.parties] == [("张*丰", "138****5678"), ("李*", "")]
    assert not police.full_names
    staff = setup.service.get(dispute_id, actor=ZHOU)
    assert [(p.name, p.phone) for p in staff.parties] == [("张三丰", "138****5678"), ("李四", "")]
    assert setup.audits("dispute.view") == 1 and setup.audits("dispute.file") == 1
    assert all(p.name != "张三丰" for d in setup.service.list(actor=ZHOU) for p in d.parties)
    kind, payload = setup.reports[0]
    assert kind == "dispute" and payload["state"] == "recorded"
    text = json.dumps(payload, ensure_ascii=False)
    for secret in ("张", "李", "1381", "竹子"):
        assert secret not in text
    assert police.reference.startswith("JF-") and len(police.reference) == 9
    with pytest.raises(NotAllowedError):
        setup.service.list(actor=FAMILY)


# -- statistics --------------------------------------------------------------------------------


def test_statistics_count_each_dispute_once_by_its_last_outcome_in_the_period(
    setup: Setup,
) -> None:
    day = setup.clock.now.astimezone().date()
    ids = [setup.file() for _ in range(6)]
    _walk_to(setup, ids[0], State.RESOLVED)
    _walk_to(setup, ids[1], State.RESOLVED)
    _walk_to(setup, ids[2], State.JUDICIAL)
    _walk_to(setup, ids[3], State.TRANSFERRED)
    _walk_to(setup, ids[4], State.CONTINUING)
    setup.service.change_state(ids[4], State.MEDIATING, actor=ZHOU)  # still open, counts as
    _walk_to(setup, ids[5], State.MEDIATING)  # no outcome: not counted
    stats = setup.service.statistics(day, day, actor=POLICE)
    assert stats.filed == 6
    assert dict(stats.outcomes) == {
        State.RESOLVED: 2, State.CONTINUING: 1, State.JUDICIAL: 1, State.TRANSFERRED: 1,
    }  # fmt: skip
    assert stats.resolution_rate == pytest.approx(2 / 5)
    # A continuing dispute resolved later counts under its last outcome only.
    setup.service.change_state(ids[4], State.RESOLVED, actor=ZHOU)
    stats = setup.service.statistics(day, day, actor=ZHOU)
    assert stats.outcomes[State.RESOLVED] == 3 and stats.outcomes[State.CONTINUING] == 0
    assert stats.resolution_rate == pytest.approx(3 / 5)
    # Another period knows nothing of these.
    later = day + timedelta(days=10)
    empty = setup.service.statistics(later, later, actor=ADMIN)
    assert empty.filed == 0 and empty.resolution_rate is None


def test_a_reversed_period_is_refused(setup: Setup) -> None:
    with pytest.raises(ValidationError) as refused:
        setup.service.statistics(date(2026, 6, 10), date(2026, 6, 1), actor=ZHOU)
    assert (refused.value.field, refused.value.message) == ("date_to", "disputes.range_reversed")
    with pytest.raises(ValidationError):
        setup.service.statistics(date(1, 1, 1), date(9999, 12, 31), actor=ZHOU)
    with pytest.raises(NotAllowedError):
        setup.service.statistics(date(2026, 6, 1), date(2026, 6, 10), actor=FAMILY)


# -- purge -------------------------------------------------------------------------------------


def test_closed_disputes_go_after_the_retention_open_ones_stay(setup: Setup) -> None:
    closed, still_open = setup.file(), setup.file()
    _walk_to(setup, closed, State.RESOLVED)
    _walk_to(setup, still_open, State.CONTINUING)
    setup.clock.now += timedelta(days=364)
    assert setup.service.purge_expired() == 0
    setup.clock.now += timedelta(days=2)
    assert setup.service.purge_expired() == 1
    with pytest.raises(RecordNotFoundError):
        setup.service.get(closed, actor=POLICE)
    assert setup.service.get(still_open, actor=POLICE).state is State.CONTINUING
    assert setup.changes(closed) == 0
    assert setup.audits("dispute.purge") == 1
