"""Tourism (景点, 预订民宿): attractions that staff edit, homestay rooms that hosts keep, and
booking requests from tourists that the host confirms or declines.

The homestay service owns the homestays; this service keeps room types and bookings keyed by
the homestay id and asks that service (built earlier in the list) who hosts a homestay. Rules:
- only the host of a homestay manages its rooms and decides its bookings (``NotAllowedError``
  for a booking of another host's homestay); the room types' counts add up to at most the
  homestay's number of rooms;
- a request is accepted only for dates with a free room of its type, and confirming checks
  again inside the write transaction: a night is full when its confirmed bookings reach the
  room type's count, so the last room cannot be confirmed twice for overlapping nights.
  Pending requests hold nothing (an anonymous visitor cannot block a homestay), and each
  homestay keeps at most ``max_pending`` of them;
- a confirmed booking pre-fills the host's guest registration (``check_in_prefill``, the
  CheckInPrefill protocol); the registration remains the legal record.

Personal data: a tourist's name and phone are sealed in one vault token with masks beside it;
only the pre-fill opens it, for the host, and that is audited. A tourist follows a request by
its reference (16 random characters), which shows nothing but the masks.

Retention (``purge_expired``): a booking goes ``booking_days_after`` (30) days after its
check-out, and a declined or expired request 7 days after it was decided. ``tick`` marks a
request still pending on its check-in day as expired.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, BinaryIO

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field

from agent.audit import AuditLog
from agent.errors import NotAllowedError, RecordNotFoundError, ValidationError
from agent.privacy import Vault, mask_name, mask_phone
from agent.store.database import Database
from agent.village.homestay import Homestay, HomestayService
from agent.village.photos import PhotoLimits, PhotoStore, PreparedPhoto
from agent.village.service import ServiceParts
from agent.village.tourism.inputs import AttractionInput, BookingInput, RoomInput
from agent.village.tourism.records import (
    Attraction,
    Booking,
    Night,
    Room,
    RoomCalendar,
    Stay,
)
from agent.village.tourism.schema import MIGRATIONS

log = logging.getLogger(__name__)

AREA = "tourism"
PENDING, CONFIRMED, DECLINED, EXPIRED = "pending", "confirmed", "declined", "expired"
SYSTEM_ACTOR = "system"
MAX_ATTRACTION_PHOTOS = 6
MAX_ATTRACTIONS = 500
MAX_ROOM_TYPES = 20
CALENDAR_DAYS = 14
DECIDED_KEEP_DAYS = 7
# A booking's guests usually arrive in the afternoon: the pre-filled check-in time for a day
# other than today.
ARRIVAL_TIME = time(14, 0)

_BOOKING_COLUMNS = (
    "b.id, b.reference, b.homestay_id, b.room_id, r.name, b.check_in, b.check_out, b.guests,"
    " b.name_masked, b.phone_masked, b.status, b.created_at"
)


class TourismSettings(BaseModel):
    """``[services.tourism]``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    photos: PhotoLimits = PhotoLimits()
    max_pending: Annotated[int, Field(ge=1, le=10_000)] = 50
    booking_days_after: Annotated[float, Field(ge=0, le=3650)] = 30


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class TourismService:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        audit: AuditLog,
        homestays: HomestayService,
        photos: PhotoStore,
        *,
        settings: TourismSettings,
        clock: Callable[[], datetime],
    ) -> None:
        self._database = database
        self._vault = vault
        self._audit = audit
        self._homestays = homestays
        self.photos = photos
        self._settings = settings
        self._clock = clock

    def migrate(self) -> None:
        self._database.migrate(AREA, MIGRATIONS)
        self.photos.migrate()

    def today(self) -> date:
        """The kiosk's local date: bookings are in the village's days."""
        return self._clock().astimezone().date()

    # -- attractions ---------------------------------------------------------------------------

    def create_attraction(
        self, data: AttractionInput, photos: Sequence[BinaryIO | bytes], *, actor: str
    ) -> Attraction:
        prepared = self._prepare(photos, already=0)
        now = _timestamp(self._clock())
        with self._database.write() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM attractions").fetchone()
            if count >= MAX_ATTRACTIONS:
                raise ValidationError("name", "tourism.attraction.too_many")
            cursor = db.execute(
                "INSERT INTO attractions (name, description, opening_hours, directions,"
                " created_at, created_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [data.name, data.description, data.opening_hours, data.directions, now, actor,
                 now],
            )  # fmt: skip
            attraction_id = int(cursor.lastrowid or 0)
            self._add_photos(db, attraction_id, prepared, actor)
            self._audit.record(actor, "attraction.create", f"attraction:{attraction_id}", db=db)
            return self._attraction_in(db, attraction_id)

    def update_attraction(
        self,
        attraction_id: int,
        data: AttractionInput,
        photos: Sequence[BinaryIO | bytes] = (),
        *,
        remove_photos: Sequence[str] = (),
        actor: str,
    ) -> Attraction:
        current = self.attraction(attraction_id)
        removed = set(remove_photos) & set(current.photo_ids)
        prepared = self._prepare(photos, already=len(current.photo_ids) - len(removed))
        with self._database.write() as db:
            self._attraction_in(db, attraction_id)
            db.execute(
                "UPDATE attractions SET name = ?, description = ?, opening_hours = ?,"
                " directions = ?, updated_at = ? WHERE id = ?",
                [data.name, data.description, data.opening_hours, data.directions,
                 _timestamp(self._clock()), attraction_id],
            )  # fmt: skip
            for photo_id in removed:
                db.execute("DELETE FROM attraction_photos WHERE photo_id = ?", [photo_id])
                self.photos.remove(db, photo_id)
            self._add_photos(db, attraction_id, prepared, actor)
            self._audit.record(actor, "attraction.update", f"attraction:{attraction_id}", db=db)
            return self._attraction_in(db, attraction_id)

    def delete_attraction(self, attraction_id: int, *, actor: str) -> None:
        with self._database.write() as db:
            attraction = self._attraction_in(db, attraction_id)
            db.execute("DELETE FROM attraction_photos WHERE attraction_id = ?", [attraction_id])
            for photo_id in attraction.photo_ids:
                self.photos.remove(db, photo_id)
            db.execute("DELETE FROM attractions WHERE id = ?", [attraction_id])
            self._audit.record(actor, "attraction.delete", f"attraction:{attraction_id}", db=db)

    def attractions(self) -> list[Attraction]:
        with self._database.read() as db:
            ids = [row[0] for row in db.execute("SELECT id FROM attractions ORDER BY name, id")]
            return [self._attraction_in(db, attraction_id) for attraction_id in ids]

    def attraction(self, attraction_id: int) -> Attraction:
        with self._database.read() as db:
            return self._attraction_in(db, attraction_id)

    def attraction_photo(self, photo_id: str) -> bytes:
        """A photo of an attraction (nothing else this area stores is served)."""
        with self._database.read() as db:
            row = db.execute(
                "SELECT 1 FROM attraction_photos WHERE photo_id = ?", [photo_id]
            ).fetchone()
        if row is None:
            raise RecordNotFoundError("photo", "tourism.photo.not_found")
        return self.photos.read(photo_id)

    def _prepare(self, photos: Sequence[BinaryIO | bytes], *, already: int) -> list[PreparedPhoto]:
        if already + len(photos) > MAX_ATTRACTION_PHOTOS:
            raise ValidationError("photo", "tourism.photo.too_many")
        return [self.photos.prepare(photo) for photo in photos]

    def _add_photos(
        self,
        db: sqlite_utils.Database,
        attraction_id: int,
        prepared: Sequence[PreparedPhoto],
        actor: str,
    ) -> None:
        (position,) = db.execute(
            "SELECT COALESCE(MAX(position), 0) FROM attraction_photos WHERE attraction_id = ?",
            [attraction_id],
        ).fetchone()
        for offset, photo in enumerate(prepared, start=1):
            stored = self.photos.add(db, photo, owner=actor)
            db.execute(
                "INSERT INTO attraction_photos (attraction_id, photo_id, position)"
                " VALUES (?, ?, ?)",
                [attraction_id, stored.id, int(position) + offset],
            )

    @staticmethod
    def _attraction_in(db: sqlite_utils.Database, attraction_id: int) -> Attraction:
        row = db.execute(
            "SELECT id, name, description, opening_hours, directions, updated_at"
            " FROM attractions WHERE id = ?",
            [attraction_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("attraction_id", "tourism.attraction.not_found")
        photos = tuple(
            photo_id
            for (photo_id,) in db.execute(
                "SELECT photo_id FROM attraction_photos WHERE attraction_id = ? ORDER BY position",
                [attraction_id],
            )
        )
        return Attraction(
            id=int(row[0]),
            name=row[1],
            description=row[2],
            opening_hours=row[3],
            directions=row[4],
            photo_ids=photos,
            updated_at=datetime.fromisoformat(row[5]),
        )

    # -- rooms (the host of the homestay) ------------------------------------------------------

    def host_homestay(self, homestay_id: int, *, host_username: str) -> Homestay:
        """The homestay when ``host_username`` hosts it; RecordNotFoundError otherwise (its id
        is not confirmed to exist to another host)."""
        homestay = self._homestays.get_homestay(homestay_id)
        if homestay.host_username != host_username:
            raise RecordNotFoundError("homestay_id", "tourism.homestay.not_found")
        return homestay

    def add_room(self, homestay_id: int, data: RoomInput, *, host_username: str) -> Room:
        homestay = self.host_homestay(homestay_id, host_username=host_username)
        with self._database.write() as db:
            kinds, total = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(count), 0) FROM tourism_rooms WHERE homestay_id = ?",
                [homestay_id],
            ).fetchone()
            if kinds >= MAX_ROOM_TYPES:
                raise ValidationError("room_name", "tourism.room.too_many")
            if total + data.count > homestay.rooms:
                raise ValidationError("count", "tourism.count.over_homestay")
            if db.execute(
                "SELECT 1 FROM tourism_rooms WHERE homestay_id = ? AND name = ?",
                [homestay_id, data.name],
            ).fetchone():
                raise ValidationError("room_name", "tourism.room_name.taken")
            cursor = db.execute(
                "INSERT INTO tourism_rooms (homestay_id, name, price_cents, count, max_guests,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [homestay_id, data.name, data.price_cents, data.count, data.max_guests,
                 _timestamp(self._clock())],
            )  # fmt: skip
            self._audit.record(host_username, "room.create", f"homestay:{homestay_id}", db=db)
            return self._room_in(db, int(cursor.lastrowid or 0))

    def host_room(self, room_id: int, *, host_username: str) -> Room:
        """A room type of one of the host's homestays (RecordNotFoundError otherwise)."""
        with self._database.read() as db:
            room = self._room_in(db, room_id)
        self.host_homestay(room.homestay_id, host_username=host_username)
        return room

    def remove_room(self, room_id: int, *, host_username: str) -> None:
        """A room type without pending or confirmed bookings still to come."""
        with self._database.write() as db:
            room = self._room_in(db, room_id)
            self.host_homestay(room.homestay_id, host_username=host_username)
            if db.execute(
                "SELECT 1 FROM tourism_bookings WHERE room_id = ? AND status IN (?, ?)"
                " AND check_out > ?",
                [room_id, PENDING, CONFIRMED, self.today().isoformat()],
            ).fetchone():
                raise ValidationError("room_id", "tourism.room.has_bookings")
            db.execute("DELETE FROM tourism_bookings WHERE room_id = ?", [room_id])
            db.execute("DELETE FROM tourism_rooms WHERE id = ?", [room_id])
            self._audit.record(host_username, "room.delete", f"homestay:{room.homestay_id}", db=db)

    def rooms(self, homestay_id: int) -> list[Room]:
        with self._database.read() as db:
            return self._rooms_in(db, homestay_id)

    def host_rooms(self, homestay_id: int, *, host_username: str) -> tuple[Homestay, list[Room]]:
        homestay = self.host_homestay(homestay_id, host_username=host_username)
        return homestay, self.rooms(homestay_id)

    # -- tourists ------------------------------------------------------------------------------

    def stays(self) -> list[Stay]:
        """Homestays that have room types, for tourists."""
        homestays = self._homestays.list_homestays()
        with self._database.read() as db:
            stays = [self._stay(db, homestay) for homestay in homestays]
        return [stay for stay in stays if stay.rooms]

    def stay(self, homestay_id: int) -> Stay:
        homestay = self._homestays.get_homestay(homestay_id)
        with self._database.read() as db:
            stay = self._stay(db, homestay)
        if not stay.rooms:
            raise RecordNotFoundError("homestay_id", "tourism.homestay.not_found")
        return stay

    def calendar(
        self, homestay_id: int, start: date | None = None, days: int = CALENDAR_DAYS
    ) -> list[RoomCalendar]:
        """Free rooms of each type, night by night, from ``start`` (today)."""
        first = start or self.today()
        nights = [first + timedelta(days=offset) for offset in range(days)]
        with self._database.read() as db:
            return [
                RoomCalendar(
                    room,
                    tuple(
                        Night(day, room.count - taken)
                        for day, taken in zip(
                            nights, self._taken(db, room.id, nights[0], nights[-1]), strict=True
                        )
                    ),
                )
                for room in self._rooms_in(db, homestay_id)
            ]

    def request_booking(self, homestay_id: int, data: BookingInput) -> Booking:
        """A tourist's request for dates with a free room of the type; pending until the host
        decides. Holds nothing: only a confirmed booking takes a room."""
        self._homestays.get_homestay(homestay_id)
        with self._database.write() as db:
            room = self._room_in(db, data.room_id)
            if room.homestay_id != homestay_id:
                raise ValidationError("room_id", "tourism.room_id.invalid")
            if data.guests > room.max_guests:
                raise ValidationError("guests", "tourism.guests.too_many_for_room")
            self._check_free(db, room, data.check_in, data.check_out)
            (pending,) = db.execute(
                "SELECT COUNT(*) FROM tourism_bookings WHERE homestay_id = ? AND status = ?",
                [homestay_id, PENDING],
            ).fetchone()
            if pending >= self._settings.max_pending:
                raise ValidationError("room_id", "tourism.booking.too_many_pending")
            personal = self._vault.encrypt(
                json.dumps({"name": data.name, "phone": data.phone}, ensure_ascii=False)
            )
            cursor = db.execute(
                "INSERT INTO tourism_bookings (reference, homestay_id, room_id, check_in,"
                " check_out, guests, personal, name_masked, phone_masked, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [secrets.token_urlsafe(12), homestay_id, room.id, data.check_in.isoformat(),
                 data.check_out.isoformat(), data.guests, personal, mask_name(data.name),
                 mask_phone(data.phone), PENDING, _timestamp(self._clock())],
            )  # fmt: skip
            booking = self._booking_in(db, int(cursor.lastrowid or 0))
        log.info("booking request %d for homestay %d", booking.id, homestay_id)
        return booking

    def booking_by_reference(self, reference: str) -> Booking:
        """A request as its tourist follows it (masks only)."""
        if not 10 <= len(reference) <= 40:
            raise RecordNotFoundError("reference", "tourism.booking.not_found")
        with self._database.read() as db:
            row = db.execute(
                "SELECT id FROM tourism_bookings WHERE reference = ?", [reference]
            ).fetchone()
            if row is None:
                raise RecordNotFoundError("reference", "tourism.booking.not_found")
            return self._booking_in(db, int(row[0]))

    # -- the host's decisions ------------------------------------------------------------------

    def host_overview(self, *, host_username: str) -> tuple[list[Homestay], list[Booking]]:
        """The host's homestays and their bookings still to come (the host's booking page)."""
        homestays = self._homestays.list_homestays(host_username=host_username)
        return homestays, self.host_bookings(host_username=host_username)

    def host_bookings(self, *, host_username: str) -> list[Booking]:
        """Requests and bookings at the host's homestays still to come, soonest first."""
        ids = [h.id for h in self._homestays.list_homestays(host_username=host_username)]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._database.read() as db:
            rows = db.execute(
                f"SELECT {_BOOKING_COLUMNS} FROM tourism_bookings b"  # noqa: S608
                " JOIN tourism_rooms r ON r.id = b.room_id"
                f" WHERE b.homestay_id IN ({marks}) AND b.check_out >= ?"
                " ORDER BY b.check_in, b.id",
                [*ids, self.today().isoformat()],
            ).fetchall()
        names = {h.id: h.name for h in self._homestays.list_homestays(host_username=host_username)}
        return [self._booking(row, names) for row in rows]

    def confirm_booking(self, booking_id: int, *, host_username: str) -> Booking:
        """The host takes the booking: refused when any of its nights is full already."""
        with self._database.write() as db:
            booking = self._decidable(db, booking_id, host_username)
            self._check_free(db, self._room_in(db, booking.room_id), booking.check_in,
                             booking.check_out)  # fmt: skip
            self._decide(db, booking, CONFIRMED, host_username)
            return self._booking_in(db, booking_id)

    def decline_booking(self, booking_id: int, *, host_username: str) -> Booking:
        with self._database.write() as db:
            booking = self._decidable(db, booking_id, host_username)
            self._decide(db, booking, DECLINED, host_username)
            return self._booking_in(db, booking_id)

    def check_in_prefill(self, booking_id: int, *, host_username: str) -> Mapping[str, str]:
        """The registration form's fields from a confirmed booking at one of the host's
        homestays (CheckInPrefill). Opens the sealed name and phone, audited."""
        with self._database.write() as db:
            try:
                booking = self._booking_in(db, booking_id)
                homestay = self._homestays.get_homestay(booking.homestay_id)
            except RecordNotFoundError:
                raise RecordNotFoundError("booking", "tourism.booking.not_found") from None
            if booking.status != CONFIRMED or homestay.host_username != host_username:
                raise RecordNotFoundError("booking", "tourism.booking.not_found")
            (personal,) = db.execute(
                "SELECT personal FROM tourism_bookings WHERE id = ?", [booking_id]
            ).fetchone()
            opened = json.loads(self._vault.decrypt(personal))
            self._audit.record(host_username, "booking.prefill", f"booking:{booking_id}", db=db)
        now = self._clock().astimezone()
        arrival = (
            now.replace(second=0, microsecond=0, tzinfo=None)
            if booking.check_in == now.date()
            else datetime.combine(booking.check_in, ARRIVAL_TIME)
        )
        return {
            "name": str(opened["name"]),
            "phone": str(opened["phone"]),
            "room": booking.room_name,
            "check_in": arrival.isoformat(timespec="minutes"),
            "expected_check_out": booking.check_out.isoformat(),
        }

    def _decidable(self, db: sqlite_utils.Database, booking_id: int, host: str) -> Booking:
        booking = self._booking_in(db, booking_id)
        homestay = self._homestays.get_homestay(booking.homestay_id)
        if homestay.host_username != host:
            raise NotAllowedError("tourism.booking.not_host", "only the homestay's host decides")
        if booking.status != PENDING:
            raise ValidationError("booking", "tourism.booking.not_pending")
        return booking

    def _decide(self, db: sqlite_utils.Database, booking: Booking, status: str, host: str) -> None:
        db.execute(
            "UPDATE tourism_bookings SET status = ?, decided_at = ?, decided_by = ?"
            " WHERE id = ? AND status = ?",
            [status, _timestamp(self._clock()), host, booking.id, PENDING],
        )
        self._audit.record(host, f"booking.{status}", f"booking:{booking.id}", db=db)
        log.info("booking %d %s by its host", booking.id, status)

    # -- scheduled work and retention ----------------------------------------------------------

    def tick(self) -> None:
        """A request nobody decided by its check-in day expires."""
        with self._database.write() as db:
            cursor = db.execute(
                "UPDATE tourism_bookings SET status = ?, decided_at = ?, decided_by = ?"
                " WHERE status = ? AND check_in < ?",
                [EXPIRED, _timestamp(self._clock()), SYSTEM_ACTOR, PENDING,
                 self.today().isoformat()],
            )  # fmt: skip
        if cursor.rowcount:
            log.info("%d booking requests expired undecided", cursor.rowcount)

    def purge_expired(self) -> int:
        """Bookings ``booking_days_after`` days past their check-out, and declined or expired
        requests a week after the decision: the names and phones in them are not kept
        longer (the guest registration is the legal record of a stay)."""
        today = self.today()
        stay_cutoff = (today - timedelta(days=self._settings.booking_days_after)).isoformat()
        decided_cutoff = _timestamp(self._clock() - timedelta(days=DECIDED_KEEP_DAYS))
        with self._database.write() as db:
            cursor = db.execute(
                "DELETE FROM tourism_bookings WHERE check_out < ?"
                " OR (status IN (?, ?) AND decided_at < ?)",
                [stay_cutoff, DECLINED, EXPIRED, decided_cutoff],
            )
            purged = max(0, cursor.rowcount)
            if purged:
                self._audit.record(SYSTEM_ACTOR, "booking.purge", "tourism_bookings",
                                   f"rows={purged}", db=db)  # fmt: skip
        self.photos.purge_orphans()
        return purged

    # -- internals -----------------------------------------------------------------------------

    def _check_free(
        self, db: sqlite_utils.Database, room: Room, check_in: date, check_out: date
    ) -> None:
        last = check_out - timedelta(days=1)
        if any(taken >= room.count for taken in self._taken(db, room.id, check_in, last)):
            raise ValidationError("check_in", "tourism.booking.unavailable")

    @staticmethod
    def _taken(db: sqlite_utils.Database, room_id: int, first: date, last: date) -> list[int]:
        """Confirmed bookings of the room type on each night from ``first`` to ``last``."""
        days = (last - first).days + 1
        taken = [0] * days
        for check_in, check_out in db.execute(
            "SELECT check_in, check_out FROM tourism_bookings"
            " WHERE room_id = ? AND status = ? AND check_in <= ? AND check_out > ?",
            [room_id, CONFIRMED, last.isoformat(), first.isoformat()],
        ):
            start = max((date.fromisoformat(check_in) - first).days, 0)
            end = min((date.fromisoformat(check_out) - first).days, days)
            for index in range(start, end):
                taken[index] += 1
        return taken

    def _stay(self, db: sqlite_utils.Database, homestay: Homestay) -> Stay:
        return Stay(homestay.id, homestay.name, homestay.address,
                    tuple(self._rooms_in(db, homestay.id)))  # fmt: skip

    @staticmethod
    def _rooms_in(db: sqlite_utils.Database, homestay_id: int) -> list[Room]:
        rows = db.execute(
            "SELECT id, homestay_id, name, price_cents, count, max_guests FROM tourism_rooms"
            " WHERE homestay_id = ? ORDER BY price_cents, id",
            [homestay_id],
        ).fetchall()
        return [_room(row) for row in rows]

    @staticmethod
    def _room_in(db: sqlite_utils.Database, room_id: int) -> Room:
        row = db.execute(
            "SELECT id, homestay_id, name, price_cents, count, max_guests FROM tourism_rooms"
            " WHERE id = ?",
            [room_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("room_id", "tourism.room.not_found")
        return _room(row)

    def _booking_in(self, db: sqlite_utils.Database, booking_id: int) -> Booking:
        row = db.execute(
            f"SELECT {_BOOKING_COLUMNS} FROM tourism_bookings b"  # noqa: S608
            " JOIN tourism_rooms r ON r.id = b.room_id WHERE b.id = ?",
            [booking_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("booking", "tourism.booking.not_found")
        homestay = self._homestays.get_homestay(int(row[2]))
        return self._booking(row, {homestay.id: homestay.name})

    @staticmethod
    def _booking(row: Any, names: Mapping[int, str]) -> Booking:
        (booking_id, reference, homestay_id, room_id, room_name, check_in, check_out, guests,
         name, phone, status, created_at) = row  # fmt: skip
        return Booking(
            id=int(booking_id),
            reference=reference,
            homestay_id=int(homestay_id),
            homestay_name=names.get(int(homestay_id), ""),
            room_id=int(room_id),
            room_name=room_name,
            check_in=date.fromisoformat(check_in),
            check_out=date.fromisoformat(check_out),
            guests=int(guests),
            name=name,
            phone=phone,
            status=status,
            created_at=datetime.fromisoformat(created_at),
        )


def _room(row: Any) -> Room:
    return Room(int(row[0]), int(row[1]), row[2], int(row[3]), int(row[4]), int(row[5]))


def build(parts: ServiceParts) -> TourismService:
    settings = parts.settings(AREA, TourismSettings)
    photos = PhotoStore(
        parts.database,
        parts.config.device.data_dir / "photos",
        area=AREA,
        limits=settings.photos,
        clock=parts.clock,
    )
    return TourismService(
        parts.database,
        parts.vault,
        parts.audit,
        parts.service(HomestayService),
        photos,
        settings=settings,
        clock=parts.clock,
    )
