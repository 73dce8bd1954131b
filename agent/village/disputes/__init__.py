"""Dispute mediation (矛盾纠纷化解): filed at the kiosk, mediated by village staff, counted
for the police and the county. See ``service`` for who may do what, ``records`` for the
state machine."""

from agent.village.disputes.records import (
    ERROR_MESSAGES,
    Actor,
    Category,
    Dispute,
    DisputeInput,
    PartyInput,
    State,
    Statistics,
)
from agent.village.disputes.schema import AREA
from agent.village.disputes.service import DisputeService, DisputeSettings, build
from agent.village.service import ServiceSpec

SERVICE = ServiceSpec(AREA, build, ERROR_MESSAGES)

__all__ = [
    "SERVICE",
    "Actor",
    "Category",
    "Dispute",
    "DisputeInput",
    "DisputeService",
    "DisputeSettings",
    "PartyInput",
    "State",
    "Statistics",
]
