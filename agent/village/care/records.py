"""What the care service takes in and hands out: inputs, records and error codes."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from agent.errors import ValidationError

MAX_NAME = 50
MAX_NOTE = 500
PIN_MIN_LENGTH = 4
PIN_MAX_LENGTH = 6

ERROR_MESSAGES: dict[str, str] = {
    "care.name_required": "Enter the person's name.",
    "care.name_too_long": f"The name has at most {MAX_NAME} characters.",
    "care.name_format": "The name contains characters that are not allowed.",
    "care.kind_invalid": "Choose left-behind elder or left-behind child.",
    "care.guardian_invalid": "The guardian must be an existing family account.",
    "care.carer_invalid": "The carer must be an existing village staff account.",
    "care.deadline_format": "The check-in deadline is a time of day such as 10:00.",
    "care.pin_format": f"The PIN has {PIN_MIN_LENGTH} to {PIN_MAX_LENGTH} digits.",
    "care.pin_too_simple": "The PIN is too easy to guess (one digit repeated or a run like 1234).",
    "care.pin_mismatch": "The two PINs differ.",
    "care.pin_wrong": "Wrong PIN. After several wrong tries the check-in pauses for a while.",
    "care.pin_paused": "Too many wrong PINs. Please wait a few minutes or ask your carer.",
    "care.note_required": "Write a short note about the visit.",
    "care.note_too_long": f"The note has at most {MAX_NOTE} characters.",
    "care.person_not_found": "This person is not in the care list.",
    "care.too_many": "The care list is full.",
}


class Kind(StrEnum):
    ELDER = "elder"  # 留守老人
    CHILD = "child"  # 留守儿童


class DayState(StrEnum):
    """A person's check-in state for one day, as the carer's list shows it."""

    CHECKED_IN = "checked_in"
    DUE = "due"  # the deadline is still ahead
    MISSED = "missed"  # the deadline passed without a check-in
    NOT_DUE = "not_due"  # registered after the day's deadline: the first day is the next


class Source(StrEnum):
    KIOSK = "kiosk"  # "I am fine" with the PIN at the kiosk
    VISIT = "visit"  # a carer's visit note


def clean_text(value: str) -> str:
    return " ".join(value.split())


def check_name(value: str) -> str:
    name = clean_text(value)
    if not name:
        raise ValidationError("name", "care.name_required")
    if len(name) > MAX_NAME:
        raise ValidationError("name", "care.name_too_long")
    if any(not ch.isprintable() for ch in name):
        raise ValidationError("name", "care.name_format")
    return name


def check_kind(value: str) -> Kind:
    try:
        return Kind(value.strip())
    except ValueError:
        raise ValidationError("kind", "care.kind_invalid") from None


def parse_deadline(value: str) -> time:
    """``HH:MM`` (what a time form field sends) as a local time of day."""
    match = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])(?::00)?", value.strip())
    if match is None:
        raise ValidationError("deadline", "care.deadline_format")
    return time(int(match.group(1)), int(match.group(2)))


def check_pin(pin: str) -> None:
    """4 to 6 digits (an elder remembers a short one), not one digit repeated nor a run."""
    if not (PIN_MIN_LENGTH <= len(pin) <= PIN_MAX_LENGTH) or not re.fullmatch(r"[0-9]+", pin):
        raise ValidationError("pin", "care.pin_format")
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if len(steps) == 1 and steps <= {0, 1, 9}:
        raise ValidationError("pin", "care.pin_too_simple")


def check_note(value: str) -> str:
    note = value.strip()
    if not note:
        raise ValidationError("note", "care.note_required")
    if len(note) > MAX_NOTE:
        raise ValidationError("note", "care.note_too_long")
    return note


@dataclass(frozen=True)
class PersonInput:
    """A registration as typed by staff; ``deadline`` None takes the kiosk's default."""

    name: str
    kind: str
    guardian: str
    carer: str
    pin: str
    deadline: str = ""


@dataclass(frozen=True)
class Person:
    id: int
    # An opaque reference for the county's reports: it names nobody and is no row number.
    ref: str
    name: str
    kind: Kind
    guardian: str | None  # None when the guardian's account was deleted
    carer: str | None
    deadline: time
    created_at: datetime
    # A photo for the kiosk tile, made by the uploads service; None shows the name alone.
    photo_url: str | None = None


@dataclass(frozen=True)
class CheckIn:
    day: date
    at: datetime  # in the kiosk's time zone
    source: Source
    actor: str
    note: str  # a visit's note; empty for a kiosk check-in
    late: bool  # after the day's deadline


@dataclass(frozen=True)
class Alert:
    day: date
    deadline_at: datetime  # in the kiosk's time zone
    raised_at: datetime


@dataclass(frozen=True)
class Today:
    """One line of the carer's list: a person and their state today."""

    person: Person
    day: date
    deadline_at: datetime
    state: DayState
    checked_in_at: datetime | None
    alerted: bool


@dataclass(frozen=True)
class History:
    """A person's recent check-ins and alerts, newest first."""

    person: Person
    today: Today
    check_ins: tuple[CheckIn, ...]
    alerts: tuple[Alert, ...]
