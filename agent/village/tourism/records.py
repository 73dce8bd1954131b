"""What the tourism service hands out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Attraction:
    id: int
    name: str
    description: str
    opening_hours: str
    directions: str
    photo_ids: tuple[str, ...]
    updated_at: datetime


@dataclass(frozen=True)
class Room:
    """A room type of a homestay (标准间 × 3, ¥180 a night, 2 guests)."""

    id: int
    homestay_id: int
    name: str
    price_cents: int
    count: int
    max_guests: int

    @property
    def price(self) -> str:
        return f"{self.price_cents // 100}.{self.price_cents % 100:02d}"


@dataclass(frozen=True)
class Night:
    day: date
    free: int


@dataclass(frozen=True)
class RoomCalendar:
    room: Room
    nights: tuple[Night, ...]


@dataclass(frozen=True)
class Stay:
    """A homestay as tourists see it: its name, address and room types."""

    homestay_id: int
    name: str
    address: str
    rooms: tuple[Room, ...]

    @property
    def lowest_price(self) -> str:
        return min(self.rooms, key=lambda room: room.price_cents).price if self.rooms else ""


@dataclass(frozen=True)
class Booking:
    id: int
    reference: str
    homestay_id: int
    homestay_name: str
    room_id: int
    room_name: str
    check_in: date
    check_out: date
    guests: int
    name: str  # masked (张*丰) everywhere but the registration pre-fill
    phone: str  # masked (138****5678) likewise
    status: str  # pending, confirmed, declined, expired
    created_at: datetime

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days
