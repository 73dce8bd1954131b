"""What the service hands out: homestays, guest records (masked unless asked otherwise) and
search filters, plus the one stored time format."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from agent.privacy import mask_address, mask_document, mask_name, mask_phone
from agent.village.identity import IdType

FOREIGN_REPORT_HOURS = 24


@dataclass(frozen=True)
class Homestay:
    id: int
    name: str
    address: str
    rooms: int
    host_username: str
    created_at: datetime


@dataclass(frozen=True)
class CompanionRecord:
    name: str
    id_type: IdType
    id_number: str
    birth_date: date | None  # None in a masked record: the age band stands in for it
    age_band: str
    nationality: str
    foreign: bool


@dataclass(frozen=True)
class GuestRecord:
    id: int
    homestay_id: int
    homestay_name: str
    name: str
    sex: str
    ethnicity: str
    birth_date: date | None  # None in a masked record: the age band stands in for it
    age_band: str
    id_type: IdType
    id_number: str
    phone: str
    address: str
    room: str
    check_in: datetime
    expected_check_out: date
    checked_out_at: datetime | None
    nationality: str
    foreign: bool  # the guest or any companion is a 境外人员
    companions: tuple[CompanionRecord, ...]
    masked: bool
    registered_by: str = ""
    # The latest police report of this record: "queued" (waiting in the outbox), "delivered"
    # (the broker took it), "not_sent" (no alert service on this kiosk) or "" (made before
    # reports were tracked).
    report_state: str = ""

    @property
    def active(self) -> bool:
        return self.checked_out_at is None

    @property
    def report_deadline(self) -> datetime | None:
        """When the police must have a foreign guest's registration."""
        return self.check_in + timedelta(hours=FOREIGN_REPORT_HOURS) if self.foreign else None


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Naive times are the kiosk's local time (what a datetime-local form field sends)."""
    return moment.astimezone(UTC)


def timestamp(moment: datetime) -> str:
    # One fixed format for every stored time, so text comparison orders them correctly.
    return as_utc(moment).isoformat(timespec="seconds")


@dataclass(frozen=True)
class GuestQuery:
    """Search filters. A name or ID number is held only as its blind index, so a query kept
    for a while (a results page, an export of it) holds no personal data."""

    name_index: str | None = None
    id_number_index: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    homestay_id: int | None = None
    host_username: str | None = None
    active_only: bool = False
    # Blind indexes of the searched name's character pairs, for a partial name match (see
    # HomestayService.query); empty for a name of one character.
    name_grams: tuple[str, ...] = ()

    @property
    def identifying(self) -> bool:
        """Whether it looks for a person (by name or ID number), not just lists registrations."""
        return self.name_index is not None or self.id_number_index is not None

    def used(self) -> list[str]:
        """Names of the filters in use, for the audit trail (never their values)."""
        return [
            key.removesuffix("_index")
            for key, value in vars(self).items()
            # The pairs are the name's: "name" is listed once, for name_index.
            if value not in (None, False, ()) and key != "name_grams"
        ]

    def subject(self) -> str:
        """The audit subject of a search: the blind indexes searched for, never the values."""
        parts = [
            f"{kind}:{value}"
            for kind, value in (("id_number", self.id_number_index), ("name", self.name_index))
            if value is not None
        ]
        return " ".join(parts) or "guests"


def homestay_of(row: Sequence[Any]) -> Homestay:
    homestay_id, name, address, rooms, host, created_at = row
    return Homestay(
        int(homestay_id), name, address, int(rooms), host, datetime.fromisoformat(created_at)
    )


def iso_day(day: date | None) -> str:
    return day.isoformat() if day else ""


def masked_view(record: GuestRecord) -> GuestRecord:
    """The masked view of a record already decrypted inside a transaction."""
    return GuestRecord(
        **{
            **vars(record),
            "name": mask_name(record.name),
            "id_number": mask_document(record.id_type, record.id_number),
            "phone": mask_phone(record.phone),
            "address": mask_address(record.address),
            "birth_date": None,
            "companions": tuple(
                CompanionRecord(
                    **{
                        **vars(c),
                        "name": mask_name(c.name),
                        "id_number": mask_document(c.id_type, c.id_number),
                        "birth_date": None,
                    }
                )
                for c in record.companions
            ),
            "masked": True,
        }
    )


def name_pairs(name: str) -> set[str]:
    """The overlapping character pairs of a name, case and spaces ignored: what a partial
    name search can find (张三丰 -> 张三, 三丰)."""
    folded = "".join(name.casefold().split())
    return {folded[i : i + 2] for i in range(len(folded) - 1)}
