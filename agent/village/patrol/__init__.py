"""Video patrol rounds (视频巡逻): must-patrol routes (必巡线) of cameras and the rounds walked
along them, with missed windows reported to the county."""

from agent.village.patrol.records import (
    ReportRow,
    Round,
    RoundFilter,
    RoundPoint,
    RoundStatus,
    Route,
    RouteInput,
    Snapshot,
    WeeklyReport,
)
from agent.village.patrol.schema import AREA
from agent.village.patrol.service import (
    ERROR_MESSAGES,
    MISSED_REPORT,
    ROUND_REPORT,
    PatrolService,
    PatrolSettings,
    build,
)
from agent.village.service import ServiceSpec

SERVICE = ServiceSpec(AREA, build, ERROR_MESSAGES)

__all__ = [
    "ERROR_MESSAGES",
    "MISSED_REPORT",
    "ROUND_REPORT",
    "SERVICE",
    "PatrolService",
    "PatrolSettings",
    "ReportRow",
    "Round",
    "RoundFilter",
    "RoundPoint",
    "RoundStatus",
    "Route",
    "RouteInput",
    "Snapshot",
    "WeeklyReport",
]
