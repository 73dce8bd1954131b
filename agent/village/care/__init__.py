"""Care for left-behind elders and children (留守人员关爱): a daily "I am fine" check-in at the
kiosk, and a care alert to the guardian, the carer and the county when one is missed."""

from agent.village.care.records import ERROR_MESSAGES, DayState, Kind, PersonInput, Source
from agent.village.care.schedule import CareSettings
from agent.village.care.service import AREA, REPORT_KIND, CareService
from agent.village.service import ServiceParts, ServiceSpec

__all__ = [
    "AREA",
    "REPORT_KIND",
    "SERVICE",
    "CareService",
    "CareSettings",
    "DayState",
    "Kind",
    "PersonInput",
    "Source",
    "build",
]


def build(parts: ServiceParts) -> CareService:
    return CareService(
        parts.database,
        parts.vault,
        parts.audit,
        parts.accounts,
        parts.report,
        settings=parts.settings(AREA, CareSettings),
        clock=parts.clock,
    )


SERVICE = ServiceSpec(AREA, build, ERROR_MESSAGES)
