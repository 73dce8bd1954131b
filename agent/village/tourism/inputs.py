"""What staff type for an attraction, a host for a room type, a tourist for a booking request;
checked here so the page and JSON routes refuse the same things with the same codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from agent.errors import ValidationError
from agent.village import identity
from agent.village.products.inputs import clean_text, parse_price

MAX_NAME = 50
MAX_ROOM_NAME = 20  # it becomes the registration's room, which holds 20 characters
MAX_TEXT = 2000
MAX_HOURS = 200
MAX_ROOM_COUNT = 500
MAX_GUESTS = 20
MAX_NIGHTS = 30
BOOK_AHEAD_DAYS = 365
MAX_PRICE_CENTS = 10_000_000


def _line(fields: Mapping[str, object], name: str, maximum: int, *, required: bool) -> str:
    value = clean_text(fields.get(name, ""))
    if required and not value:
        raise ValidationError(name, f"tourism.{name}.required")
    if len(value) > maximum:
        raise ValidationError(name, f"tourism.{name}.too_long")
    if any(not ch.isprintable() for ch in value):
        raise ValidationError(name, f"tourism.{name}.format")
    return value


def _paragraphs(fields: Mapping[str, object], name: str, maximum: int) -> str:
    """Free text with its line breaks (descriptions, directions)."""
    lines = [" ".join(line.split()) for line in str(fields.get(name, "") or "").splitlines()]
    value = "\n".join(lines).strip()
    if len(value) > maximum:
        raise ValidationError(name, f"tourism.{name}.too_long")
    if any(not ch.isprintable() and ch != "\n" for ch in value):
        raise ValidationError(name, f"tourism.{name}.format")
    return value


def _whole(fields: Mapping[str, object], name: str, low: int, high: int) -> int:
    text = str(fields.get(name, "") or "").strip()
    if not text:
        raise ValidationError(name, f"tourism.{name}.required")
    if not text.isdecimal():
        raise ValidationError(name, f"tourism.{name}.invalid")
    value = int(text)
    if not low <= value <= high:
        raise ValidationError(name, f"tourism.{name}.range")
    return value


def _day(fields: Mapping[str, object], name: str) -> date:
    text = str(fields.get(name, "") or "").strip()
    if not text:
        raise ValidationError(name, f"tourism.{name}.required")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(name, f"tourism.{name}.invalid") from exc


@dataclass(frozen=True)
class AttractionInput:
    name: str
    description: str
    opening_hours: str
    directions: str

    @classmethod
    def from_fields(cls, fields: Mapping[str, object]) -> AttractionInput:
        return cls(
            name=_line(fields, "name", MAX_NAME, required=True),
            description=_paragraphs(fields, "description", MAX_TEXT),
            opening_hours=_line(fields, "opening_hours", MAX_HOURS, required=False),
            directions=_paragraphs(fields, "directions", MAX_TEXT),
        )


@dataclass(frozen=True)
class RoomInput:
    """A room type of a homestay: its name, price a night, how many rooms and guests each."""

    name: str
    price_cents: int
    count: int
    max_guests: int

    @classmethod
    def from_fields(cls, fields: Mapping[str, object]) -> RoomInput:
        name = _line(fields, "room_name", MAX_ROOM_NAME, required=True)
        try:
            price = parse_price(fields.get("price", ""))
        except ValidationError as exc:
            raise ValidationError("price", exc.message.replace("products.", "tourism.")) from None
        assert price is not None
        return cls(
            name=name,
            price_cents=price,
            count=_whole(fields, "count", 1, MAX_ROOM_COUNT),
            max_guests=_whole(fields, "max_guests", 1, MAX_GUESTS),
        )


@dataclass(frozen=True)
class BookingInput:
    """A tourist's booking request."""

    room_id: int
    check_in: date
    check_out: date
    guests: int
    name: str
    phone: str

    @classmethod
    def from_fields(cls, fields: Mapping[str, object], *, today: date) -> BookingInput:
        room = str(fields.get("room_id", "") or "").strip()
        if not room:
            raise ValidationError("room_id", "tourism.room_id.required")
        if not room.isdecimal() or len(room) > 15:
            raise ValidationError("room_id", "tourism.room_id.invalid")
        check_in = _day(fields, "check_in")
        check_out = _day(fields, "check_out")
        if check_in < today:
            raise ValidationError("check_in", "tourism.check_in.past")
        if check_in > today + timedelta(days=BOOK_AHEAD_DAYS):
            raise ValidationError("check_in", "tourism.check_in.too_far")
        if check_out <= check_in:
            raise ValidationError("check_out", "tourism.check_out.before_check_in")
        if (check_out - check_in).days > MAX_NIGHTS:
            raise ValidationError("check_out", "tourism.check_out.too_long")
        guests = _whole(fields, "guests", 1, MAX_GUESTS)
        name = _line(fields, "name", MAX_NAME, required=True)
        raw_phone = str(fields.get("phone", "") or "")
        if not raw_phone.strip():
            raise ValidationError("phone", "tourism.phone.required")
        try:
            phone = identity.validate_phone(raw_phone)
        except ValidationError as exc:
            raise ValidationError("phone", "tourism.phone.format") from exc
        return cls(int(room), check_in, check_out, guests, name, phone)

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days
