"""Dispute mediation (矛盾纠纷化解): the states, the legal transitions, inputs and records.

The state machine is the one place that says which change is legal::

    recorded ──▶ mediating ──▶ resolved | continuing | judicial | transferred
                     ▲              │
                     └── continuing ┴──▶ resolved | judicial | transferred

``resolved`` (化解成功), ``judicial`` (引导进入司法程序) and ``transferred`` (移送其他部门)
are terminal: a dispute that reached one of them stays there; a new disagreement is a new
dispute. ``continuing`` (继续调解) is an outcome of one mediation session that leaves the
dispute open, so it may go back to ``mediating`` or straight to a final outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from agent.accounts import Role
from agent.errors import ValidationError
from agent.village import identity

MAX_NAME = 50
MAX_PARTIES = 6
MAX_DESCRIPTION = 2000
MAX_DEPARTMENT = 100
MAX_NOTE = 500
# A statistics period longer than this is refused: the page is for months and years, and an
# absurd range (year 1 to 9999) must not become an overflow.
MAX_PERIOD_DAYS = 3660


class State(StrEnum):
    RECORDED = "recorded"  # 已登记
    MEDIATING = "mediating"  # 调解中
    RESOLVED = "resolved"  # 化解成功
    CONTINUING = "continuing"  # 继续调解
    JUDICIAL = "judicial"  # 引导进入司法程序
    TRANSFERRED = "transferred"  # 移送其他部门


class Category(StrEnum):
    NEIGHBOUR = "neighbour"  # 邻里纠纷
    LAND = "land"  # 土地山林纠纷
    FAMILY = "family"  # 婚姻家庭纠纷
    DEBT = "debt"  # 债务纠纷
    OTHER = "other"  # 其他


# What each state may become; a state absent from the keys or mapped to nothing is terminal.
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.RECORDED: frozenset({State.MEDIATING}),
    State.MEDIATING: frozenset(
        {State.RESOLVED, State.CONTINUING, State.JUDICIAL, State.TRANSFERRED}
    ),
    State.CONTINUING: frozenset(
        {State.MEDIATING, State.RESOLVED, State.JUDICIAL, State.TRANSFERRED}
    ),
    State.RESOLVED: frozenset(),
    State.JUDICIAL: frozenset(),
    State.TRANSFERRED: frozenset(),
}
TERMINAL: frozenset[State] = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)
# The outcomes the statistics count (a mediation session ended with one of these).
OUTCOMES: tuple[State, ...] = (
    State.RESOLVED,
    State.CONTINUING,
    State.JUDICIAL,
    State.TRANSFERRED,
)

ERROR_MESSAGES: dict[str, str] = {
    "disputes.category_required": "Choose what the dispute is about.",
    "disputes.category_invalid": "This kind of dispute is not on the list.",
    "disputes.description_required": "Describe what happened.",
    "disputes.description_too_long": f"The description has at most {MAX_DESCRIPTION} characters.",
    "disputes.name_required": "Enter the name of the person filing (the first party).",
    "disputes.name_too_long": f"A name has at most {MAX_NAME} characters.",
    "disputes.name_format": "The name contains characters that are not allowed.",
    "disputes.phone_format": "The phone number is not a valid mobile or international number.",
    "disputes.phone_without_name": "A phone number needs the name of its party.",
    "disputes.too_many_parties": f"At most {MAX_PARTIES} parties per dispute.",
    "disputes.state_invalid": "This is not a state a dispute can have.",
    "disputes.transition_not_allowed": "This change of state is not allowed from the "
    "dispute's current state.",
    "disputes.already_closed": "This dispute is closed; its outcome cannot change.",
    "disputes.department_required": "Name the department the dispute is transferred to.",
    "disputes.department_too_long": f"The department has at most {MAX_DEPARTMENT} characters.",
    "disputes.note_too_long": f"The note has at most {MAX_NOTE} characters.",
    "disputes.not_mediator": "Only the mediator who took this dispute (or an administrator) "
    "may change its state.",
    "disputes.not_staff": "Only village staff and administrators mediate disputes.",
    "disputes.not_found": "This dispute does not exist.",
    "disputes.date_invalid": "The date is not a valid date (YYYY-MM-DD).",
    "disputes.range_reversed": "The end of the period is before its start.",
    "disputes.range_too_long": f"A period has at most {MAX_PERIOD_DAYS} days.",
}


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: the service decides what this account may do."""

    username: str
    role: Role | None


@dataclass(frozen=True)
class PartyInput:
    name: str
    phone: str = ""


@dataclass(frozen=True)
class DisputeInput:
    """A dispute as typed at the kiosk; ``checked()`` validates and normalises it."""

    category: str
    description: str
    parties: Sequence[PartyInput]

    def checked(self) -> DisputeInput:
        category = self.category.strip()
        if not category:
            raise ValidationError("category", "disputes.category_required")
        if category not in set(Category):
            raise ValidationError("category", "disputes.category_invalid")
        description = self.description.strip()
        if not description:
            raise ValidationError("description", "disputes.description_required")
        if len(description) > MAX_DESCRIPTION:
            raise ValidationError("description", "disputes.description_too_long")
        if len(self.parties) > MAX_PARTIES:
            raise ValidationError("parties", "disputes.too_many_parties")
        parties = []
        for index, party in enumerate(self.parties):
            name = " ".join(party.name.split())
            phone = identity.normalize_phone(party.phone)
            if not name:
                if phone:
                    raise ValidationError(f"parties[{index}].name", "disputes.phone_without_name")
                if index == 0:
                    raise ValidationError("parties[0].name", "disputes.name_required")
                continue  # an empty optional row of the form
            if len(name) > MAX_NAME:
                raise ValidationError(f"parties[{index}].name", "disputes.name_too_long")
            if any(not ch.isprintable() for ch in name):
                raise ValidationError(f"parties[{index}].name", "disputes.name_format")
            if phone:
                try:
                    phone = identity.validate_phone(phone)
                except ValidationError:
                    raise ValidationError(
                        f"parties[{index}].phone", "disputes.phone_format"
                    ) from None
            parties.append(PartyInput(name, phone))
        if not parties:
            raise ValidationError("parties[0].name", "disputes.name_required")
        return DisputeInput(category, description, tuple(parties))


def parse_state(value: str) -> State:
    """A state named by a form or the API; anything else (a forged name) is refused."""
    try:
        return State(value.strip())
    except ValueError:
        raise ValidationError("state", "disputes.state_invalid") from None


def check_transition(current: State, wanted: State) -> None:
    """Raises ValidationError unless ``current`` may become ``wanted``."""
    if current in TERMINAL:
        raise ValidationError("state", "disputes.already_closed")
    if wanted not in TRANSITIONS[current]:
        raise ValidationError("state", "disputes.transition_not_allowed")


@dataclass(frozen=True)
class Party:
    name: str  # masked unless the record was read in full
    phone: str  # always masked ('' when none was given)


@dataclass(frozen=True)
class Change:
    """One step of a dispute's history."""

    from_state: State | None
    to_state: State
    actor: str
    at: datetime
    department: str
    note: str


@dataclass(frozen=True)
class Dispute:
    id: int
    reference: str
    category: Category
    description: str
    state: State
    mediator: str  # '' until someone takes it
    department: str  # the department of a transferred dispute
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    parties: tuple[Party, ...]
    history: tuple[Change, ...]
    full_names: bool  # the parties' names are in full (staff and admins)

    @property
    def next_states(self) -> tuple[State, ...]:
        return tuple(s for s in State if s in TRANSITIONS[self.state])

    @property
    def closed(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive


@dataclass(frozen=True)
class Statistics:
    """Disputes of one period. Each dispute that had an outcome in the period counts once,
    under the last outcome it had in the period; 化解率 = resolved / those disputes."""

    period: Period
    filed: int
    outcomes: Mapping[State, int]

    @property
    def with_outcome(self) -> int:
        return sum(self.outcomes.values())

    @property
    def resolution_rate(self) -> float | None:
        """None when no dispute reached an outcome in the period (no rate, not 0 %)."""
        total = self.with_outcome
        return self.outcomes.get(State.RESOLVED, 0) / total if total else None
