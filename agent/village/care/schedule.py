"""Days and deadlines in the kiosk's local time (pure: no clock, no storage).

A check-in belongs to the local calendar day on which it was made; a day's deadline is a
local time of that day. A kiosk whose zone is not configured uses the system's local zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CareSettings(BaseModel):
    """``[services.care]`` in the kiosk's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The deadline a new person gets unless staff choose another.
    default_deadline: time = time(10, 0)
    # IANA zone of the village ("Asia/Shanghai"); empty: the system's local zone.
    timezone: str = ""
    # Check-ins and alerts older than this are deleted: see CareService.purge_expired.
    history_days: int = Field(default=90, ge=7, le=3650)
    pin_max_failures: int = Field(default=5, ge=1, le=100)
    pause_minutes: float = Field(default=15.0, gt=0, le=24 * 60)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def zone(self) -> tzinfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None


def local(moment: datetime, zone: tzinfo | None) -> datetime:
    """``moment`` (aware) in the kiosk's zone; None is the system's local zone."""
    return moment.astimezone(zone) if zone is not None else moment.astimezone()


def local_day(moment: datetime, zone: tzinfo | None) -> date:
    return local(moment, zone).date()


def deadline_at(day: date, deadline: time, zone: tzinfo | None) -> datetime:
    """The moment (UTC) of ``day``'s deadline at the kiosk."""
    if zone is not None:
        moment = datetime.combine(day, deadline, tzinfo=zone)
    else:
        moment = datetime.combine(day, deadline).astimezone()
    return moment.astimezone(UTC)


def is_due(created_at: datetime, day: date, deadline: time, zone: tzinfo | None) -> bool:
    """Whether ``day`` counts for a person registered at ``created_at``: a person registered
    after a day's deadline cannot have missed that day."""
    return created_at < deadline_at(day, deadline, zone)
