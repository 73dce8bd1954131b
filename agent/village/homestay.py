"""Homestays and their guest registrations (民宿登记), reported to the police through the outbox.

Storage of personal data:
- A guest's name, ID number, phone number, home address and birth date (and a companion's name,
  ID number and birth date) are stored only inside one vault token per person (``personal``
  column). The name is encrypted too: name plus check-in dates is enough to track a person.
- Exact-match search on ID number and on full name goes through blind-index columns (keyed
  HMAC), so no row is decrypted to search. A name search is therefore exact (whole name, case
  and spaces ignored); there is no substring search on names by design. A search by name or ID
  number from the web is audited with the blind index as subject and limited per account and
  hour (``search_audited``): an exact match is an oracle for whether somebody stayed here.
- Masked forms (``张*丰``, ``33****************``, ``138****5678``, the province of the
  address) are stored beside the token, so lists and searches never decrypt anything. Only
  ``get_guest(unmasked=True)`` and ``export_csv`` decrypt, and both write an audit entry in the
  same transaction.
- Sex, ethnicity, an age band at check-in (``30-39``), nationality, document type, room and
  dates of stay stay in the clear for filtering and counts. What the masks and these columns
  leave of an ID number is worked out in ``agent.privacy``: at least 10^6 candidates per person
  even for someone who knows the area code, which tests/unit/test_id_reconstruction.py checks.
- Retention counts from the later of the end of the stay and the day the record was made, and
  a check-in may be dated at most ``CHECK_IN_LATE`` back, so a back-dated registration cannot
  slip out of the records (or the police's view) at the next purge.

Every check-in and check-out hands a ``registration`` report to the outbox inside the same write
transaction, so a registration and its report exist together or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import sqlite_utils
from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from agent.audit import MAX_DETAIL, AuditLog, id_range_chunks
from agent.errors import KioskError, RecordNotFoundError, ValidationError, field_path
from agent.privacy import (
    Vault,
    VaultError,
    age_band,
    mask_address,
    mask_document,
    mask_name,
    mask_phone,
)
from agent.store.database import Database, Migration
from agent.village import identity
from agent.village.identity import IdType
from agent.village.service import ReportSink, ServiceParts, ServiceSpec

log = logging.getLogger(__name__)

AREA = "homestay"
REPORT_KIND = "registration"
FOREIGN_REPORT_HOURS = 24
MAX_COMPANIONS = 20
MAX_NAME = 50
MAX_ETHNICITY = 20
MAX_ADDRESS = 200
MAX_ROOM = 20
MAX_ROOMS = 500
MAX_STAY_DAYS = 366
MAX_SEARCH = 1000
MAX_EXPORT = 100_000
# A registration may be entered ahead of an arrival later the same day, not further ahead.
CHECK_IN_LEAD = timedelta(days=1)
# A late registration (a guest who arrived at the weekend) is legitimate, a back-dated one is not.
CHECK_IN_LATE = timedelta(days=7)
SEARCH_ACTION = "guest.search"
SEARCH_WINDOW = timedelta(hours=1)
SYSTEM_ACTOR = "system"

Sex = Literal["male", "female"]

# Guest-form codes; ``identity.ERROR_MESSAGES`` (merged in) holds the document and phone codes.
ERROR_MESSAGES: dict[str, str] = {
    **identity.ERROR_MESSAGES,
    "guest.invalid": "The registration form could not be read.",
    "field.unknown": "The form contains a field that does not belong to it.",
    "name.required": "Enter the name.",
    "name.too_long": "The name is too long.",
    "name.format": "The name contains characters that are not allowed.",
    "name.invalid": "The name could not be read.",
    "sex.required": "Choose the sex.",
    "sex.invalid": "Sex must be male or female.",
    "ethnicity.required": "Enter the ethnic group (民族) of a resident ID holder.",
    "ethnicity.too_long": "The ethnic group is too long.",
    "ethnicity.invalid": "The ethnic group could not be read.",
    "birth_date.required": "Enter the birth date.",
    "birth_date.format": "The birth date is not a valid date.",
    "birth_date.invalid": "The birth date is not a valid date.",
    "birth_date.future": "The birth date is in the future.",
    "birth_date.too_early": "The birth date is before 1900.",
    "id_number.invalid": "The document number could not be read.",
    "id_number.duplicate": "The same document number appears twice in this registration.",
    "phone.invalid": "The phone number could not be read.",
    "address.required": "Enter the address.",
    "address.too_long": "The address is too long.",
    "address.invalid": "The address could not be read.",
    "room.required": "Enter the room.",
    "room.too_long": "The room name is too long.",
    "room.invalid": "The room could not be read.",
    "check_in.required": "Enter the check-in time.",
    "check_in.format": "The check-in time is not a valid date and time.",
    "check_in.invalid": "The check-in time is not a valid date and time.",
    "check_in.future": "The check-in time is more than a day in the future.",
    "check_in.past": "The check-in time is more than 7 days ago; a registration must be entered "
    "within a week of the arrival.",
    "expected_check_out.required": "Enter the expected check-out date.",
    "expected_check_out.format": "The expected check-out date is not a valid date.",
    "expected_check_out.invalid": "The expected check-out date is not a valid date.",
    "check_out.before_check_in": "Check-out cannot be before check-in.",
    "check_out.too_far": "The expected check-out is more than a year after check-in.",
    "nationality.invalid": "The nationality could not be read.",
    "companions.invalid": "The list of companions could not be read.",
    "companions.too_many": "Too many companions in one registration.",
    "rooms.required": "Enter the number of rooms.",
    "rooms.invalid": "The number of rooms must be a whole number.",
    "rooms.range": "The number of rooms must be between 1 and 500.",
    "host_username.required": "Choose the host account.",
    "homestay.not_found": "This homestay does not exist.",
    "guest.not_found": "This guest registration does not exist (it may have been purged).",
    "guest.already_checked_out": "This guest has already checked out.",
}


class SearchLimitError(KioskError):
    """An account made its allowed number of searches by name or ID number this hour."""

    def __init__(self, limit: int, retry_after_seconds: int) -> None:
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"at most {limit} searches by name or ID number per hour")


# -- input -------------------------------------------------------------------------------------


def _clean_text(value: str) -> str:
    """Surrounding and repeated whitespace removed, so '张三 ' and '张三' are one person."""
    return " ".join(value.split())


class CompanionInput(BaseModel):
    """A person staying with the registering guest (children included, each with a document)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    id_type: IdType
    id_number: str
    birth_date: date
    # None means: CHN for a resident ID, otherwise the registering guest's nationality.
    nationality: str | None = None

    @field_validator("name")
    @classmethod
    def _clean(cls, value: str) -> str:
        return _clean_text(value)

    @field_validator("id_number")
    @classmethod
    def _normalize_number(cls, value: str) -> str:
        return identity.normalize_id_number(value)

    def effective_nationality(self, guest_nationality: str) -> str:
        if self.nationality is not None:
            return identity.normalize_nationality(self.nationality)
        if self.id_type is IdType.RESIDENT_ID:
            return identity.HOME_NATIONALITY
        return guest_nationality


class GuestInput(BaseModel):
    """One registration as typed at the kiosk. Constructing it validates everything and raises
    ``agent.errors.ValidationError(field, code)`` for the first problem found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    sex: Sex
    ethnicity: str = ""
    birth_date: date
    id_type: IdType
    id_number: str
    phone: str
    address: str
    room: str
    check_in: datetime  # naive means the kiosk's local time
    expected_check_out: date
    nationality: str = identity.HOME_NATIONALITY
    companions: tuple[CompanionInput, ...] = ()

    @field_validator("name", "ethnicity", "address", "room")
    @classmethod
    def _clean(cls, value: str) -> str:
        return _clean_text(value)

    @field_validator("id_number")
    @classmethod
    def _normalize_number(cls, value: str) -> str:
        return identity.normalize_id_number(value)

    @field_validator("phone")
    @classmethod
    def _normalize_phone(cls, value: str) -> str:
        return identity.normalize_phone(value)

    @field_validator("nationality")
    @classmethod
    def _normalize_nationality(cls, value: str) -> str:
        return identity.normalize_nationality(value)

    @model_validator(mode="wrap")
    @classmethod
    def _validate_registration(
        cls, data: Any, handler: ModelWrapValidatorHandler[GuestInput]
    ) -> GuestInput:
        try:
            guest = handler(data)
        except PydanticValidationError as exc:
            raise _translate(exc) from exc
        _check_guest(guest, identity.latest_today())
        return guest

    @property
    def foreign(self) -> bool:
        """True when the guest or any companion is a 境外人员 (report within 24 hours)."""
        if identity.is_foreign(self.id_type, self.nationality):
            return True
        return any(
            identity.is_foreign(c.id_type, c.effective_nationality(self.nationality))
            for c in self.companions
        )


def _translate(exc: PydanticValidationError) -> ValidationError:
    """The first pydantic error as our (field path, code) pair."""
    error = exc.errors()[0]
    loc = error["loc"]
    names = [part for part in loc if isinstance(part, str)]
    if not names:
        return ValidationError("guest", "guest.invalid")
    leaf = names[-1]
    kind = error["type"]
    if kind == "extra_forbidden":
        code = "field.unknown"
    elif kind == "missing":
        code = f"{leaf}.required"
    elif kind in {"date_parsing", "date_from_datetime_parsing", "datetime_parsing",
                  "datetime_from_date_parsing", "date_from_datetime_inexact",
                  "datetime_object_invalid"}:  # fmt: skip
        code = f"{leaf}.format"
    else:
        code = f"{leaf}.invalid"
    if code not in ERROR_MESSAGES:
        code = "guest.invalid"
    return ValidationError(field_path(loc), code)


def _check_text(field: str, value: str, maximum: int, *, required: bool = True) -> None:
    leaf = field.rsplit(".", 1)[-1]
    if required and not value:
        raise ValidationError(field, f"{leaf}.required")
    if len(value) > maximum:
        raise ValidationError(field, f"{leaf}.too_long")


def _check_name(field: str, value: str) -> None:
    _check_text(field, value, MAX_NAME)
    if any(not ch.isprintable() for ch in value):
        raise ValidationError(field, "name.format")


def _check_birth_date(field: str, value: date, today: date) -> None:
    if value > today:
        raise ValidationError(field, "birth_date.future")
    if value < identity.EARLIEST_BIRTH_DATE:
        raise ValidationError(field, "birth_date.too_early")


def _check_document(
    prefix: str, id_type: IdType, number: str, birth_date: date, nationality: str, today: date
) -> None:
    try:
        identity.validate_nationality(nationality, id_type)
        identity.validate_id_number(
            id_type, number, birth_date=birth_date, nationality=nationality, today=today
        )
    except ValidationError as exc:
        raise ValidationError(prefix + exc.field, exc.message) from None


def _check_guest(guest: GuestInput, today: date) -> None:
    _check_name("name", guest.name)
    if guest.id_type is IdType.RESIDENT_ID and not guest.ethnicity:
        raise ValidationError("ethnicity", "ethnicity.required")
    _check_text("ethnicity", guest.ethnicity, MAX_ETHNICITY, required=False)
    _check_birth_date("birth_date", guest.birth_date, today)
    _check_document("", guest.id_type, guest.id_number, guest.birth_date, guest.nationality, today)
    identity.validate_phone(guest.phone)
    _check_text("address", guest.address, MAX_ADDRESS)
    _check_text("room", guest.room, MAX_ROOM)
    arrival = guest.check_in.date()
    if guest.expected_check_out < arrival:
        raise ValidationError("expected_check_out", "check_out.before_check_in")
    if guest.expected_check_out > arrival + timedelta(days=MAX_STAY_DAYS):
        raise ValidationError("expected_check_out", "check_out.too_far")
    if len(guest.companions) > MAX_COMPANIONS:
        raise ValidationError("companions", "companions.too_many")
    seen = {guest.id_number}
    for index, companion in enumerate(guest.companions):
        prefix = f"companions[{index}]."
        _check_name(prefix + "name", companion.name)
        _check_birth_date(prefix + "birth_date", companion.birth_date, today)
        nationality = companion.effective_nationality(guest.nationality)
        _check_document(
            prefix, companion.id_type, companion.id_number, companion.birth_date, nationality, today
        )
        if companion.id_number in seen:
            raise ValidationError(prefix + "id_number", "id_number.duplicate")
        seen.add(companion.id_number)


# -- records -----------------------------------------------------------------------------------


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

    @property
    def active(self) -> bool:
        return self.checked_out_at is None

    @property
    def report_deadline(self) -> datetime | None:
        """When the police must have a foreign guest's registration."""
        return self.check_in + timedelta(hours=FOREIGN_REPORT_HOURS) if self.foreign else None


# -- schema ------------------------------------------------------------------------------------


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE homestays ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, address TEXT NOT NULL,"
        " rooms INTEGER NOT NULL, host_username TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX homestays_host ON homestays (host_username)")
    # AUTOINCREMENT: a purged guest's id is never reused, so an id in an old police report
    # cannot come to mean somebody else.
    db.execute(
        "CREATE TABLE guests ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " homestay_id INTEGER NOT NULL REFERENCES homestays (id),"
        " personal TEXT NOT NULL, name_index TEXT NOT NULL, id_number_index TEXT NOT NULL,"
        " name_masked TEXT NOT NULL, id_number_masked TEXT NOT NULL,"
        " phone_masked TEXT NOT NULL, address_masked TEXT NOT NULL,"
        " sex TEXT NOT NULL, ethnicity TEXT NOT NULL, birth_date TEXT NOT NULL,"
        " id_type TEXT NOT NULL, nationality TEXT NOT NULL, foreign_guest INTEGER NOT NULL,"
        " room TEXT NOT NULL, check_in TEXT NOT NULL, check_in_date TEXT NOT NULL,"
        " expected_check_out TEXT NOT NULL, checked_out_at TEXT,"
        " registered_by TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX guests_id_number ON guests (id_number_index)")
    db.execute("CREATE INDEX guests_name ON guests (name_index)")
    db.execute("CREATE INDEX guests_homestay ON guests (homestay_id, check_in_date)")
    db.execute("CREATE INDEX guests_check_in_date ON guests (check_in_date)")
    db.execute("CREATE INDEX guests_checked_out ON guests (checked_out_at)")
    db.execute(
        "CREATE TABLE guest_companions ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " guest_id INTEGER NOT NULL REFERENCES guests (id) ON DELETE CASCADE,"
        " position INTEGER NOT NULL, personal TEXT NOT NULL,"
        " name_index TEXT NOT NULL, id_number_index TEXT NOT NULL,"
        " name_masked TEXT NOT NULL, id_number_masked TEXT NOT NULL,"
        " id_type TEXT NOT NULL, birth_date TEXT NOT NULL, nationality TEXT NOT NULL,"
        " foreign_guest INTEGER NOT NULL)"
    )
    db.execute("CREATE INDEX guest_companions_guest ON guest_companions (guest_id, position)")
    db.execute("CREATE INDEX guest_companions_id_number ON guest_companions (id_number_index)")
    db.execute("CREATE INDEX guest_companions_name ON guest_companions (name_index)")


def _create_key_check(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE homestay_vault_check (id INTEGER PRIMARY KEY, fingerprint TEXT)")


# Migrations that need no key; the service adds the one that re-seals records (see
# HomestayService._migrations).
MIGRATIONS = (
    Migration(1, "homestays, guests and companions", _create_tables),
    Migration(2, "fingerprint of the vault key the guest data is sealed with", _create_key_check),
)
_SEAL_BIRTH_DATES = 3

_GUEST_COLUMNS = (
    "g.id, g.homestay_id, h.name, g.personal, g.name_masked, g.id_number_masked, g.phone_masked,"
    " g.address_masked, g.sex, g.ethnicity, g.age_band, g.id_type, g.nationality,"
    " g.foreign_guest, g.room, g.check_in, g.expected_check_out, g.checked_out_at,"
    " g.registered_by"
)
_COMPANION_COLUMNS = (
    "guest_id, personal, name_masked, id_number_masked, id_type, age_band, nationality,"
    " foreign_guest"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    """Naive times are the kiosk's local time (what a datetime-local form field sends)."""
    return moment.astimezone(UTC)


def _timestamp(moment: datetime) -> str:
    # One fixed format for every stored time, so text comparison orders them correctly.
    return _as_utc(moment).isoformat(timespec="seconds")


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

    @property
    def identifying(self) -> bool:
        """Whether it looks for a person (by name or ID number), not just lists registrations."""
        return self.name_index is not None or self.id_number_index is not None

    def used(self) -> list[str]:
        """Names of the filters in use, for the audit trail (never their values)."""
        return [
            key.removesuffix("_index")
            for key, value in vars(self).items()
            if value not in (None, False)
        ]

    def subject(self) -> str:
        """The audit subject of a search: the blind indexes searched for, never the values."""
        parts = [
            f"{kind}:{value}"
            for kind, value in (("id_number", self.id_number_index), ("name", self.name_index))
            if value is not None
        ]
        return " ".join(parts) or "guests"


class HomestayService:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        audit: AuditLog,
        report: ReportSink,
        *,
        guest_retention_days: float,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._database = database
        self._vault = vault
        self._audit = audit
        self._report = report
        self._retention = timedelta(days=guest_retention_days)
        self._clock = clock
        self._resealed = False

    def migrated(self) -> HomestayService:
        """The service with its tables ready (for a kiosk built without the service list)."""
        self.migrate()
        return self

    def tick(self) -> None:
        """Registration has no deadline of its own to watch (reports wait in the outbox)."""

    def migrate(self) -> None:
        # The key is checked before any migration that decrypts: a wrong key must fail with
        # the message that says what to do, not halfway through re-sealing.
        self._database.migrate(AREA, MIGRATIONS)
        self._check_vault_key()
        self._database.migrate(AREA, self._migrations())
        if self._resealed:
            self._drop_old_pages()

    # -- schema migrations that need the key -----------------------------------------------------

    def _migrations(self) -> tuple[Migration, ...]:
        return (
            *MIGRATIONS,
            Migration(
                _SEAL_BIRTH_DATES,
                "birth dates sealed, age band in clear, ID numbers and addresses masked further",
                self._seal_birth_dates,
            ),
        )

    def _record_with_sealed_birth(
        self, personal: str, birth: str, check_in_date: str, id_type: str
    ) -> tuple[dict[str, str], list[str]]:
        """A pre-3 record opened, with its birth date moved inside: the opened fields, and the
        new sealed token, age band and masked number."""
        opened = self._open(personal)
        opened["birth_date"] = birth
        band = age_band(date.fromisoformat(birth), date.fromisoformat(check_in_date))
        return opened, [self._seal(**opened), band, mask_document(id_type, opened["id_number"])]

    def _seal_birth_dates(self, db: sqlite_utils.Database) -> None:
        """Move every birth date into its sealed record and recompute the masks from the
        decrypted values: the old ones (first 3 and last 4 characters, county in the address)
        and a clear birth date gave the whole ID number away."""
        for table in ("guests", "guest_companions"):
            db.execute(f"ALTER TABLE {table} ADD COLUMN age_band TEXT NOT NULL DEFAULT ''")
        guests = db.execute(
            "SELECT id, personal, birth_date, check_in_date, id_type FROM guests"
        ).fetchall()
        for guest_id, personal, birth, check_in_date, id_type in guests:
            opened, row = self._record_with_sealed_birth(personal, birth, check_in_date, id_type)
            db.execute(
                "UPDATE guests SET personal = ?, age_band = ?, id_number_masked = ?,"
                " address_masked = ? WHERE id = ?",
                [*row, mask_address(opened["address"]), guest_id],
            )
        companions = db.execute(
            "SELECT c.id, c.personal, c.birth_date, g.check_in_date, c.id_type"
            " FROM guest_companions c JOIN guests g ON g.id = c.guest_id"
        ).fetchall()
        for companion_id, personal, birth, check_in_date, id_type in companions:
            _, row = self._record_with_sealed_birth(personal, birth, check_in_date, id_type)
            db.execute(
                "UPDATE guest_companions SET personal = ?, age_band = ?, id_number_masked = ?"
                " WHERE id = ?",
                [*row, companion_id],
            )
        # The database runs with secure_delete, so the rewritten rows leave zeros behind.
        for table in ("guests", "guest_companions"):
            db.execute(f"ALTER TABLE {table} DROP COLUMN birth_date")
        self._resealed = True
        log.info(
            "sealed the birth dates of %d guests and %d companions", len(guests), len(companions)
        )

    def _drop_old_pages(self) -> None:
        """Copy the migrated pages into the database file and empty the WAL, whose older
        frames still hold the clear birth dates. Runs after the migration has committed: a
        checkpoint cannot run inside a transaction."""
        with self._database.read() as db:
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning(
                "the write-ahead log could not be emptied after sealing birth dates (another"
                " process is reading the database); it empties at the next checkpoint"
            )

    # -- homestays -----------------------------------------------------------------------------

    def create_homestay(self, name: str, address: str, rooms: int, host_username: str) -> Homestay:
        name, address, host_username = (
            _clean_text(name),
            _clean_text(address),
            host_username.strip(),
        )
        _check_text("name", name, MAX_NAME * 2)
        _check_text("address", address, MAX_ADDRESS)
        if isinstance(rooms, bool) or not isinstance(rooms, int):
            raise ValidationError("rooms", "rooms.invalid")
        if not 1 <= rooms <= MAX_ROOMS:
            raise ValidationError("rooms", "rooms.range")
        if not host_username:
            raise ValidationError("host_username", "host_username.required")
        created_at = _timestamp(self._clock())
        with self._database.write() as db:
            cursor = db.execute(
                "INSERT INTO homestays (name, address, rooms, host_username, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [name, address, rooms, host_username, created_at],
            )
            homestay_id = int(cursor.lastrowid or 0)
        log.info("homestay %d created for host %s", homestay_id, host_username)
        return Homestay(
            homestay_id, name, address, rooms, host_username, datetime.fromisoformat(created_at)
        )

    def list_homestays(self, *, host_username: str | None = None) -> list[Homestay]:
        sql = "SELECT id, name, address, rooms, host_username, created_at FROM homestays"
        params: list[Any] = []
        if host_username is not None:
            sql += " WHERE host_username = ?"
            params.append(host_username)
        with self._database.read() as db:
            rows = db.execute(sql + " ORDER BY name, id", params).fetchall()
        return [_homestay(row) for row in rows]

    def get_homestay(self, homestay_id: int) -> Homestay:
        with self._database.read() as db:
            return self._homestay_in(db, homestay_id)

    # -- registration --------------------------------------------------------------------------

    def check_in(self, homestay_id: int, guest: GuestInput, *, actor: str) -> GuestRecord:
        """Register a guest and queue the police report in the same transaction."""
        now = self._clock()
        check_in = _as_utc(guest.check_in)
        if check_in > _as_utc(now) + CHECK_IN_LEAD:
            raise ValidationError("check_in", "check_in.future")
        if check_in < _as_utc(now) - CHECK_IN_LATE:
            raise ValidationError("check_in", "check_in.past")
        foreign = guest.foreign
        arrival = guest.check_in.date()
        with self._database.write() as db:
            homestay = self._homestay_in(db, homestay_id)
            cursor = db.execute(
                "INSERT INTO guests (homestay_id, personal, name_index, id_number_index,"
                " name_masked, id_number_masked, phone_masked, address_masked, sex, ethnicity,"
                " age_band, id_type, nationality, foreign_guest, room, check_in, check_in_date,"
                " expected_check_out, checked_out_at, registered_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                [
                    homestay.id,
                    self._seal(
                        name=guest.name,
                        id_number=guest.id_number,
                        phone=guest.phone,
                        address=guest.address,
                        birth_date=guest.birth_date.isoformat(),
                    ),
                    self._vault.blind_index("name", guest.name),
                    self._vault.blind_index("id_number", guest.id_number),
                    mask_name(guest.name),
                    mask_document(guest.id_type, guest.id_number),
                    mask_phone(guest.phone),
                    mask_address(guest.address),
                    guest.sex,
                    guest.ethnicity,
                    age_band(guest.birth_date, arrival),
                    str(guest.id_type),
                    guest.nationality,
                    int(foreign),
                    guest.room,
                    _timestamp(check_in),
                    arrival.isoformat(),
                    guest.expected_check_out.isoformat(),
                    actor,
                    _timestamp(now),
                ],
            )
            guest_id = int(cursor.lastrowid or 0)
            for position, companion in enumerate(guest.companions):
                nationality = companion.effective_nationality(guest.nationality)
                db.execute(
                    "INSERT INTO guest_companions (guest_id, position, personal, name_index,"
                    " id_number_index, name_masked, id_number_masked, id_type, age_band,"
                    " nationality, foreign_guest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        guest_id,
                        position,
                        self._seal(
                            name=companion.name,
                            id_number=companion.id_number,
                            birth_date=companion.birth_date.isoformat(),
                        ),
                        self._vault.blind_index("name", companion.name),
                        self._vault.blind_index("id_number", companion.id_number),
                        mask_name(companion.name),
                        mask_document(companion.id_type, companion.id_number),
                        str(companion.id_type),
                        age_band(companion.birth_date, arrival),
                        nationality,
                        int(identity.is_foreign(companion.id_type, nationality)),
                    ],
                )
            record = self._load(db, guest_id, unmasked=True)
            self._report(db, REPORT_KIND, self._payload("check_in", record, homestay, now))
        log.info(
            "guest %d checked in at homestay %d (%d companions, foreign=%s)",
            guest_id,
            homestay.id,
            len(guest.companions),
            foreign,
        )
        return _masked(record)

    def check_out(self, guest_id: int, *, actor: str, at: datetime | None = None) -> GuestRecord:
        now = self._clock()
        moment = _as_utc(at or now)
        with self._database.write() as db:
            record = self._load(db, guest_id, unmasked=True)
            if record.checked_out_at is not None:
                raise ValidationError("guest_id", "guest.already_checked_out")
            if moment < record.check_in:
                raise ValidationError("checked_out_at", "check_out.before_check_in")
            db.execute(
                "UPDATE guests SET checked_out_at = ? WHERE id = ?", [_timestamp(moment), guest_id]
            )
            record = self._load(db, guest_id, unmasked=True)
            homestay = self._homestay_in(db, record.homestay_id)
            self._report(db, REPORT_KIND, self._payload("check_out", record, homestay, now))
        log.info("guest %d checked out of homestay %d by %s", guest_id, record.homestay_id, actor)
        return _masked(record)

    # -- reading -------------------------------------------------------------------------------

    def query(
        self,
        *,
        name: str | None = None,
        id_number: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        homestay_id: int | None = None,
        host_username: str | None = None,
        active_only: bool = False,
    ) -> GuestQuery:
        """Filters as a GuestQuery; a name or ID number becomes its blind index (blank: none)."""
        name = _clean_text(name) if name else ""
        number = identity.normalize_id_number(id_number) if id_number else ""
        return GuestQuery(
            name_index=self._vault.blind_index("name", name) if name else None,
            id_number_index=self._vault.blind_index("id_number", number) if number else None,
            date_from=date_from,
            date_to=date_to,
            homestay_id=homestay_id,
            host_username=host_username,
            active_only=active_only,
        )

    def search(
        self,
        *,
        name: str | None = None,
        id_number: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        homestay_id: int | None = None,
        host_username: str | None = None,
        active_only: bool = False,
        limit: int = 200,
    ) -> list[GuestRecord]:
        """Masked records, newest check-in first. ``name`` and ``id_number`` match a guest or
        any companion exactly (through the blind index); dates bound the check-in date.

        Not audited: for the agent itself. A person's search by name or ID number goes through
        ``search_audited``.
        """
        filters = self.query(
            name=name,
            id_number=id_number,
            date_from=date_from,
            date_to=date_to,
            homestay_id=homestay_id,
            host_username=host_username,
            active_only=active_only,
        )
        return self.find(filters, limit=limit)

    def find(self, query: GuestQuery, *, limit: int = 200) -> list[GuestRecord]:
        """Masked records matching ``query``, newest check-in first (not audited)."""
        with self._database.read() as db:
            return self._select(db, query, max(1, min(limit, MAX_SEARCH)), unmasked=False)

    def record_search(self, query: GuestQuery, *, actor: str, per_hour: int) -> None:
        """Audit a search by name or ID number, or raise SearchLimitError when ``actor`` has
        made ``per_hour`` of them in the last hour. A query without either is not recorded."""
        if not query.identifying:
            return
        with self._database.write() as db:
            self._count_search(db, query, actor, per_hour)

    def search_audited(
        self, query: GuestQuery, *, actor: str, per_hour: int, limit: int = 200
    ) -> list[GuestRecord]:
        """``find`` for a person: a search by name or ID number is audited and limited (see
        ``record_search``) in the same transaction that reads the results."""
        if not query.identifying:
            return self.find(query, limit=limit)
        with self._database.write() as db:
            self._count_search(db, query, actor, per_hour)
            return self._select(db, query, max(1, min(limit, MAX_SEARCH)), unmasked=False)

    def get_guest(self, guest_id: int, *, actor: str, unmasked: bool = False) -> GuestRecord:
        """Masked by default; ``unmasked`` decrypts and leaves an audit entry first."""
        if not unmasked:
            with self._database.read() as db:
                return self._load(db, guest_id, unmasked=False)
        with self._database.write() as db:
            record = self._load(db, guest_id, unmasked=True)
            self._audit.record(actor, "guest.view_unmasked", f"guest:{guest_id}", db=db)
        return record

    def export_csv(
        self,
        *,
        actor: str,
        name: str | None = None,
        id_number: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        homestay_id: int | None = None,
        host_username: str | None = None,
        active_only: bool = False,
        query: GuestQuery | None = None,
        searches_per_hour: int | None = None,
        limit: int = MAX_EXPORT,
    ) -> str:
        """Unmasked CSV for the police, one row per person (companions follow their guest).

        ``query`` replaces the keyword filters. With ``searches_per_hour``, an export by name or
        ID number also counts (and is audited) as a search. The audit entry names every record
        that left, as id ranges. Starts with a UTF-8 byte-order mark so spreadsheet programs
        show Chinese correctly.
        """
        if query is None:
            query = self.query(
                name=name,
                id_number=id_number,
                date_from=date_from,
                date_to=date_to,
                homestay_id=homestay_id,
                host_username=host_username,
                active_only=active_only,
            )
        with self._database.write() as db:
            if searches_per_hour is not None and query.identifying:
                self._count_search(db, query, actor, searches_per_hour)
            records = self._select(db, query, max(1, min(limit, MAX_EXPORT)), unmasked=True)
            head = f"rows={len(records)} filters={','.join(query.used()) or 'none'}"
            # Room is left for the head and a part number, so no id is ever cut off.
            chunks = id_range_chunks((r.id for r in records), MAX_DETAIL - len(head) - 40)
            for number, chunk in enumerate(chunks, start=1):
                part = f" part={number}/{len(chunks)}" if len(chunks) > 1 else ""
                detail = f"{head}{part} ids={chunk}"
                self._audit.record(actor, "guest.export", "guests", detail, db=db)
        log.info("guest export of %d registrations by %s", len(records), actor)
        return "\ufeff" + _to_csv(records)

    # -- retention -----------------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete registrations that ended, and were entered, more than
        ``guest_retention_days`` ago.

        A guest never checked out counts as ended on the expected check-out date, so a forgotten
        check-out does not keep personal data forever. Counting from the entry as well means a
        stay dated in the past is kept for the whole period all the same.
        """
        cutoff = _as_utc(self._clock()) - self._retention
        with self._database.write() as db:
            cursor = db.execute(
                "DELETE FROM guests WHERE created_at < ? AND ("
                " (checked_out_at IS NOT NULL AND checked_out_at < ?)"
                " OR (checked_out_at IS NULL AND expected_check_out < ?))",
                [_timestamp(cutoff), _timestamp(cutoff), cutoff.date().isoformat()],
            )
            purged = max(0, cursor.rowcount)
            if purged:
                self._audit.record(SYSTEM_ACTOR, "guest.purge", "guests", f"rows={purged}", db=db)
        if purged:
            log.info("purged %d guest registrations past retention", purged)
        return purged

    # -- internals -----------------------------------------------------------------------------

    def _check_vault_key(self) -> None:
        """Refuse to run with a key other than the one the stored guests were sealed with.

        A restored database without its key file (or a wiped secrets directory) would otherwise
        start a fresh key silently: old registrations become unreadable and unsearchable, and
        new ones are sealed with a key that does not match them.
        """
        fingerprint = self._vault.blind_index("vault-key-check", "homestay")
        with self._database.write() as db:
            row = db.execute("SELECT fingerprint FROM homestay_vault_check WHERE id = 1").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO homestay_vault_check (id, fingerprint) VALUES (1, ?)",
                    [fingerprint],
                )
                return
        if row[0] != fingerprint:
            raise VaultError(
                "the personal-data key does not match the one the guest registrations were "
                "sealed with; restore the original key file (see the backup of the secrets "
                "directory) before starting the kiosk"
            )

    def _seal(self, **fields: str) -> str:
        return self._vault.encrypt(json.dumps(fields, ensure_ascii=False, sort_keys=True))

    def _open(self, token: str) -> dict[str, str]:
        opened: dict[str, str] = json.loads(self._vault.decrypt(token))
        return opened

    @staticmethod
    def _homestay_in(db: sqlite_utils.Database, homestay_id: int) -> Homestay:
        row = db.execute(
            "SELECT id, name, address, rooms, host_username, created_at FROM homestays"
            " WHERE id = ?",
            [homestay_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("homestay_id", "homestay.not_found")
        return _homestay(row)

    def _load(self, db: sqlite_utils.Database, guest_id: int, *, unmasked: bool) -> GuestRecord:
        row = db.execute(
            f"SELECT {_GUEST_COLUMNS} FROM guests g JOIN homestays h ON h.id = g.homestay_id"  # noqa: S608
            " WHERE g.id = ?",
            [guest_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("guest_id", "guest.not_found")
        return self._records(db, [row], unmasked=unmasked)[0]

    def _count_search(
        self, db: sqlite_utils.Database, query: GuestQuery, actor: str, per_hour: int
    ) -> None:
        """Inside the caller's write transaction, so two searches at once cannot both take the
        last one allowed, and the count survives a restart."""
        made, oldest = self._audit.count_recent(actor, SEARCH_ACTION, SEARCH_WINDOW, db=db)
        if made >= per_hour:
            now = _as_utc(self._clock())
            wait = (oldest + SEARCH_WINDOW - now) if oldest else SEARCH_WINDOW
            log.warning("%s reached the limit of %d searches per hour", actor, per_hour)
            raise SearchLimitError(per_hour, max(1, math.ceil(wait.total_seconds())))
        detail = f"filters={','.join(query.used())}"
        self._audit.record(actor, SEARCH_ACTION, query.subject(), detail, db=db)

    def _select(
        self, db: sqlite_utils.Database, filters: GuestQuery, limit: int, *, unmasked: bool
    ) -> list[GuestRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        for kind, index in (("name", filters.name_index), ("id_number", filters.id_number_index)):
            if index is None:
                continue
            clauses.append(
                f"(g.{kind}_index = ? OR g.id IN"  # noqa: S608 - kind is one of two literals
                f" (SELECT guest_id FROM guest_companions WHERE {kind}_index = ?))"
            )
            params += [index, index]
        if filters.date_from is not None:
            clauses.append("g.check_in_date >= ?")
            params.append(filters.date_from.isoformat())
        if filters.date_to is not None:
            clauses.append("g.check_in_date <= ?")
            params.append(filters.date_to.isoformat())
        if filters.homestay_id is not None:
            clauses.append("g.homestay_id = ?")
            params.append(filters.homestay_id)
        if filters.host_username is not None:
            clauses.append("h.host_username = ?")
            params.append(filters.host_username)
        if filters.active_only:
            clauses.append("g.checked_out_at IS NULL")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = db.execute(
            f"SELECT {_GUEST_COLUMNS} FROM guests g JOIN homestays h ON h.id = g.homestay_id"  # noqa: S608
            f"{where} ORDER BY g.check_in DESC, g.id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        return self._records(db, rows, unmasked=unmasked)

    def _records(
        self, db: sqlite_utils.Database, rows: Sequence[Sequence[Any]], *, unmasked: bool
    ) -> list[GuestRecord]:
        companions: dict[int, list[CompanionRecord]] = {}
        ids = [int(row[0]) for row in rows]
        # Chunked to stay under SQLite's bound-parameter limit on large exports.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in db.execute(
                f"SELECT {_COMPANION_COLUMNS} FROM guest_companions"  # noqa: S608
                f" WHERE guest_id IN ({marks}) ORDER BY guest_id, position",
                chunk,
            ).fetchall():
                companions.setdefault(int(row[0]), []).append(self._companion(row, unmasked))
        return [self._guest(row, tuple(companions.get(int(row[0]), ())), unmasked) for row in rows]

    def _companion(self, row: Sequence[Any], unmasked: bool) -> CompanionRecord:
        _, personal, name_masked, number_masked, id_type, band, nationality, foreign = row
        birth: date | None = None
        if unmasked:
            opened = self._open(personal)
            name, number = opened["name"], opened["id_number"]
            birth = date.fromisoformat(opened["birth_date"])
        else:
            name, number = name_masked, number_masked
        return CompanionRecord(
            name=name,
            id_type=IdType(id_type),
            id_number=number,
            birth_date=birth,
            age_band=band,
            nationality=nationality,
            foreign=bool(foreign),
        )

    def _guest(
        self, row: Sequence[Any], companions: tuple[CompanionRecord, ...], unmasked: bool
    ) -> GuestRecord:
        (guest_id, homestay_id, homestay_name, personal, name, number, phone, address, sex,
         ethnicity, band, id_type, nationality, foreign, room, check_in, check_out,
         checked_out_at, registered_by) = row  # fmt: skip
        birth: date | None = None
        if unmasked:
            opened = self._open(personal)
            name, number = opened["name"], opened["id_number"]
            phone, address = opened["phone"], opened["address"]
            birth = date.fromisoformat(opened["birth_date"])
        return GuestRecord(
            id=int(guest_id),
            homestay_id=int(homestay_id),
            homestay_name=homestay_name,
            name=name,
            sex=sex,
            ethnicity=ethnicity,
            birth_date=birth,
            age_band=band,
            id_type=IdType(id_type),
            id_number=number,
            phone=phone,
            address=address,
            room=room,
            check_in=datetime.fromisoformat(check_in),
            expected_check_out=date.fromisoformat(check_out),
            checked_out_at=datetime.fromisoformat(checked_out_at) if checked_out_at else None,
            nationality=nationality,
            foreign=bool(foreign) or any(c.foreign for c in companions),
            companions=companions,
            masked=not unmasked,
            registered_by=registered_by,
        )

    @staticmethod
    def _payload(
        action: str, record: GuestRecord, homestay: Homestay, now: datetime
    ) -> dict[str, Any]:
        """The police report: full identity, plus the 24-hour deadline for foreign guests so
        the command centre can see late reports. Built from an unmasked record only."""
        deadline = record.report_deadline
        return {
            "action": action,
            "record_id": record.id,
            "reported_at": _timestamp(now),
            "foreign": record.foreign,
            "report_deadline": _timestamp(deadline) if deadline else None,
            "homestay": {
                "id": homestay.id,
                "name": homestay.name,
                "address": homestay.address,
                "host": homestay.host_username,
            },
            "guest": {
                "name": record.name,
                "sex": record.sex,
                "ethnicity": record.ethnicity,
                "birth_date": _iso(record.birth_date),
                "id_type": str(record.id_type),
                "id_number": record.id_number,
                "nationality": record.nationality,
                "phone": record.phone,
                "address": record.address,
            },
            "companions": [
                {
                    "name": c.name,
                    "id_type": str(c.id_type),
                    "id_number": c.id_number,
                    "birth_date": _iso(c.birth_date),
                    "nationality": c.nationality,
                    "foreign": c.foreign,
                }
                for c in record.companions
            ],
            "room": record.room,
            "check_in": _timestamp(record.check_in),
            "expected_check_out": record.expected_check_out.isoformat(),
            "checked_out_at": _timestamp(record.checked_out_at) if record.checked_out_at else None,
        }


def _homestay(row: Sequence[Any]) -> Homestay:
    homestay_id, name, address, rooms, host, created_at = row
    return Homestay(
        int(homestay_id), name, address, int(rooms), host, datetime.fromisoformat(created_at)
    )


def _iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def _masked(record: GuestRecord) -> GuestRecord:
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


_CSV_HEADER = (
    "record_id", "role", "homestay", "room", "name", "sex", "ethnicity", "birth_date", "id_type",
    "id_number", "nationality", "foreign", "phone", "address", "check_in", "expected_check_out",
    "checked_out_at",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    """Free text that a spreadsheet would run as a formula is quoted (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _to_csv(records: Sequence[GuestRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_CSV_HEADER)
    for r in records:
        stay = (
            _timestamp(r.check_in),
            r.expected_check_out.isoformat(),
            _timestamp(r.checked_out_at) if r.checked_out_at else "",
        )
        writer.writerow(
            [
                r.id, "guest", _cell(r.homestay_name), _cell(r.room), _cell(r.name), r.sex,
                _cell(r.ethnicity), _iso(r.birth_date), r.id_type, r.id_number,
                r.nationality, int(r.foreign), r.phone, _cell(r.address), *stay,
            ]
        )  # fmt: skip
        for c in r.companions:
            writer.writerow(
                [
                    r.id, "companion", _cell(r.homestay_name), _cell(r.room), _cell(c.name), "",
                    "", _iso(c.birth_date), c.id_type, c.id_number, c.nationality,
                    int(c.foreign), "", "", *stay,
                ]
            )  # fmt: skip
    return buffer.getvalue()


def build(parts: ServiceParts) -> HomestayService:
    return HomestayService(
        parts.database,
        parts.vault,
        parts.audit,
        parts.report,
        guest_retention_days=parts.config.storage.guest_retention_days,
        clock=parts.clock,
    )


SERVICE = ServiceSpec(AREA, build, ERROR_MESSAGES)
