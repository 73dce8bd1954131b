"""The homestay service: every rule about homestays and their guest registrations."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import sqlite_utils

from agent.accounts import AccountStore, Role
from agent.audit import MAX_DETAIL, AuditLog, id_range_chunks
from agent.errors import KioskError, RecordNotFoundError, ValidationError
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
from agent.village.homestay.export import CsvLabels, to_csv, to_spreadsheet_csv
from agent.village.homestay.inputs import (
    MAX_ADDRESS,
    MAX_NAME,
    MAX_ROOMS,
    GuestInput,
    check_text,
    clean_text,
)
from agent.village.homestay.records import (
    CompanionRecord,
    GuestQuery,
    GuestRecord,
    Homestay,
    as_utc,
    homestay_of,
    iso_day,
    masked_view,
    name_pairs,
    timestamp,
    utc_now,
)
from agent.village.homestay.schema import (
    AREA,
    COMPANION_COLUMNS,
    GUEST_COLUMNS,
    MIGRATIONS,
    NAME_PAIRS,
    SEAL_BIRTH_DATES,
    TRACKING,
    create_name_pairs,
)
from agent.village.identity import IdType
from agent.village.service import ReportSink

log = logging.getLogger(__name__)

REPORT_KIND = "registration"
MAX_SEARCH = 1000
MAX_EXPORT = 100_000
# A registration may be entered ahead of an arrival later the same day, not further ahead.
CHECK_IN_LEAD = timedelta(days=1)
# A late registration (a guest who arrived at the weekend) is legitimate, a back-dated one is not.
CHECK_IN_LATE = timedelta(days=7)
SEARCH_ACTION = "guest.search"
SEARCH_WINDOW = timedelta(hours=1)
SYSTEM_ACTOR = "system"
# A registration form's one-time token answers a repeated submit for this long.
FORM_TOKEN_LIFETIME = timedelta(days=1)
MAX_FORM_TOKEN = 64


class SearchLimitError(KioskError):
    """An account made its allowed number of searches by name or ID number this hour."""

    def __init__(self, limit: int, retry_after_seconds: int) -> None:
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"at most {limit} searches by name or ID number per hour")


class HomestayService:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        audit: AuditLog,
        report: ReportSink,
        *,
        guest_retention_days: float,
        clock: Callable[[], datetime] = utc_now,
        accounts: AccountStore | None = None,
    ) -> None:
        self._database = database
        # Who is a host account; without it (a service built for one test) any name is taken.
        self._accounts = accounts
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
                SEAL_BIRTH_DATES,
                "birth dates sealed, age band in clear, ID numbers and addresses masked further",
                self._seal_birth_dates,
            ),
            TRACKING,
            Migration(NAME_PAIRS, "blind indexes of name pairs", self._index_name_pairs),
        )

    def _index_name_pairs(self, db: sqlite_utils.Database) -> None:
        """Pair indexes for the registrations made before partial name search existed."""
        create_name_pairs(db)
        for guest_id, personal in db.execute("SELECT id, personal FROM guests").fetchall():
            self._store_pairs(db, int(guest_id), 0, self._open(personal)["name"])
        for guest_id, position, personal in db.execute(
            "SELECT guest_id, position, personal FROM guest_companions"
        ).fetchall():
            self._store_pairs(db, int(guest_id), int(position) + 1, self._open(personal)["name"])

    def _store_pairs(
        self, db: sqlite_utils.Database, guest_id: int, person: int, name: str
    ) -> None:
        db.table("guest_name_pairs").insert_all(
            {
                "guest_id": guest_id,
                "person": person,
                "pair_index": self._vault.blind_index("name_pair", pair),
            }
            for pair in sorted(name_pairs(name))
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
            clean_text(name),
            clean_text(address),
            host_username.strip(),
        )
        check_text("name", name, MAX_NAME * 2)
        check_text("address", address, MAX_ADDRESS)
        if isinstance(rooms, bool) or not isinstance(rooms, int):
            raise ValidationError("rooms", "rooms.invalid")
        if not 1 <= rooms <= MAX_ROOMS:
            raise ValidationError("rooms", "rooms.range")
        if not host_username:
            raise ValidationError("host_username", "host_username.required")
        created_at = timestamp(self._clock())
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

    def add_homestay(
        self, name: str, address: str, rooms: int | str, host_username: str, *, actor: str
    ) -> Homestay:
        """An admin creates a homestay: its host must be an existing host account, and
        ``rooms`` may come as typed (text) or as a number."""
        host_username = host_username.strip()
        if host_username and self._accounts is not None:
            host = self._accounts.get_user(host_username)
            if host is None or host.role is not Role.HOST:
                raise ValidationError("host_username", "host_username.unknown")
        if isinstance(rooms, str):
            if not rooms.strip():
                raise ValidationError("rooms", "rooms.required")
            try:
                rooms = int(rooms)
            except ValueError as exc:
                raise ValidationError("rooms", "rooms.invalid") from exc
        homestay = self.create_homestay(name, address, rooms, host_username)
        self._audit.record(actor, "homestay.create", f"homestay:{homestay.id}")
        return homestay

    def host_homestay(self, homestay_id: int, *, host_username: str) -> Homestay:
        """One of the host's own homestays; another host's answers as not found, so its id is
        not confirmed to exist."""
        homestay = self.get_homestay(homestay_id)
        if homestay.host_username != host_username:
            raise RecordNotFoundError("homestay_id", "homestay.not_found")
        return homestay

    def list_homestays(self, *, host_username: str | None = None) -> list[Homestay]:
        sql = "SELECT id, name, address, rooms, host_username, created_at FROM homestays"
        params: list[Any] = []
        if host_username is not None:
            sql += " WHERE host_username = ?"
            params.append(host_username)
        with self._database.read() as db:
            rows = db.execute(sql + " ORDER BY name, id", params).fetchall()
        return [homestay_of(row) for row in rows]

    def get_homestay(self, homestay_id: int) -> Homestay:
        with self._database.read() as db:
            return self._homestay_in(db, homestay_id)

    # -- registration --------------------------------------------------------------------------

    def check_in(
        self,
        homestay_id: int,
        guest: GuestInput,
        *,
        actor: str,
        host_username: str | None = None,
        form_token: str | None = None,
    ) -> GuestRecord:
        """Register a guest and queue the police report in the same transaction. With
        ``host_username`` (a host at the kiosk) the homestay must be one of theirs.

        ``form_token`` (one per rendered form) makes the submit idempotent: a second submit
        with the same token (a double tap over a slow link) returns the registration the
        first one made instead of storing the guest twice."""
        token = (form_token or "").strip()[:MAX_FORM_TOKEN]
        now = self._clock()
        check_in = as_utc(guest.check_in)
        if check_in > as_utc(now) + CHECK_IN_LEAD:
            raise ValidationError("check_in", "check_in.future")
        if check_in < as_utc(now) - CHECK_IN_LATE:
            raise ValidationError("check_in", "check_in.past")
        foreign = guest.foreign
        arrival = guest.check_in.date()
        with self._database.write() as db:
            homestay = self._homestay_in(db, homestay_id)
            if host_username is not None and homestay.host_username != host_username:
                raise RecordNotFoundError("homestay_id", "homestay.not_found")
            if token:
                earlier = self._form_result(db, token, host_username or actor)
                if earlier is not None:
                    log.info("repeated submit of the form that registered guest %d", earlier.id)
                    return masked_view(earlier)
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
                    timestamp(check_in),
                    arrival.isoformat(),
                    guest.expected_check_out.isoformat(),
                    actor,
                    timestamp(now),
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
            if token:
                db.table("homestay_form_tokens").insert(
                    {
                        "token": token,
                        "host_username": host_username or actor,
                        "guest_id": guest_id,
                        "created_at": timestamp(now),
                    }
                )
            self._store_pairs(db, guest_id, 0, guest.name)
            for position, companion in enumerate(guest.companions):
                self._store_pairs(db, guest_id, position + 1, companion.name)
            record = self._load(db, guest_id, unmasked=True)
            self._send_report(db, "check_in", record, homestay, now)
            record = self._load(db, guest_id, unmasked=True)
        log.info(
            "guest %d checked in at homestay %d (%d companions, foreign=%s)",
            guest_id,
            homestay.id,
            len(guest.companions),
            foreign,
        )
        return masked_view(record)

    def check_out(
        self,
        guest_id: int,
        *,
        actor: str,
        at: datetime | None = None,
        host_username: str | None = None,
    ) -> GuestRecord:
        """End a stay and report it. With ``host_username`` (a host at the kiosk) the guest
        must stay at one of that host's homestays; any other answers as not found."""
        now = self._clock()
        moment = as_utc(at or now)
        with self._database.write() as db:
            record = self._load(db, guest_id, unmasked=True)
            self._check_owner(db, record, host_username)
            if record.checked_out_at is not None:
                raise ValidationError("guest_id", "guest.already_checked_out")
            if moment < record.check_in:
                raise ValidationError("checked_out_at", "check_out.before_check_in")
            db.execute(
                "UPDATE guests SET checked_out_at = ? WHERE id = ?", [timestamp(moment), guest_id]
            )
            record = self._load(db, guest_id, unmasked=True)
            homestay = self._homestay_in(db, record.homestay_id)
            self._send_report(db, "check_out", record, homestay, now)
            record = self._load(db, guest_id, unmasked=True)
        log.info("guest %d checked out of homestay %d by %s", guest_id, record.homestay_id, actor)
        return masked_view(record)

    def host_guest(self, guest_id: int, *, host_username: str) -> GuestRecord:
        """A guest (masked) of one of the host's homestays, for a page that asks the host to
        confirm a check-out or a deletion; any other guest answers as not found."""
        with self._database.read() as db:
            record = self._load(db, guest_id, unmasked=False)
            self._check_owner(db, record, host_username)
        return record

    def delete_registration(self, guest_id: int, *, host_username: str) -> GuestRecord:
        """A host removes a registration of their own homestay that was wrong (a guest
        entered twice, the wrong person). The police get a ``delete`` report carrying the
        removed record in the same transaction, so their copy is corrected, not silently
        lost; the deletion is audited with the record's id."""
        now = self._clock()
        with self._database.write() as db:
            record = self._load(db, guest_id, unmasked=True)
            self._check_owner(db, record, host_username)
            homestay = self._homestay_in(db, record.homestay_id)
            self._report(db, REPORT_KIND, self._payload("delete", record, homestay, now))
            db.execute("DELETE FROM homestay_form_tokens WHERE guest_id = ?", [guest_id])
            db.execute("DELETE FROM guest_reports WHERE guest_id = ?", [guest_id])
            db.execute("DELETE FROM guest_name_pairs WHERE guest_id = ?", [guest_id])
            db.execute("DELETE FROM guests WHERE id = ?", [guest_id])
            self._audit.record(
                host_username,
                "guest.delete",
                f"guest:{guest_id}",
                f"homestay={record.homestay_id}",
                db=db,
            )
        log.info("guest %d deleted from homestay %d by its host", guest_id, record.homestay_id)
        return masked_view(record)

    def _form_result(self, db: sqlite_utils.Database, token: str, owner: str) -> GuestRecord | None:
        row = db.execute(
            "SELECT guest_id FROM homestay_form_tokens WHERE token = ? AND host_username = ?",
            [token, owner],
        ).fetchone()
        if row is None:
            return None
        try:
            return self._load(db, int(row[0]), unmasked=True)
        except RecordNotFoundError:
            return None

    def _send_report(
        self,
        db: sqlite_utils.Database,
        action: str,
        record: GuestRecord,
        homestay: Homestay,
        now: datetime,
    ) -> None:
        """Queue the report and remember which outbox message carries it: the outbox keeps a
        message until the broker acknowledged it, so its leaving is the delivery."""
        has_outbox = db["outbox"].exists()
        before = _last_outbox_seq(db) if has_outbox else 0
        self._report(db, REPORT_KIND, self._payload(action, record, homestay, now))
        message_id = None
        if has_outbox:
            row = db.execute(
                "SELECT message_id FROM outbox WHERE seq > ? AND kind = 'report'"
                " ORDER BY seq DESC LIMIT 1",
                [before],
            ).fetchone()
            message_id = row[0] if row else None
        db.table("guest_reports").insert(
            {
                "guest_id": record.id,
                "action": action,
                "message_id": message_id,
                "created_at": timestamp(now),
            }
        )

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
        """Filters as a GuestQuery; a name or ID number becomes its blind index (blank: none).

        A name matches a person whose whole name it is, or (two characters or more) whose
        name holds every character pair of it: 三丰 finds 张三丰. Only keyed indexes of the
        pairs are stored, never the name; single characters are not indexed, since a surname
        alone would find too many people and one-character indexes repeat often enough to
        be counted. An ID number matches whole numbers only: a partial number search would
        need indexes of its parts, and those (area code, birth date) are what the masks hide.
        A date range that ends before it starts is refused rather than finding nothing."""
        if date_from is not None and date_to is not None and date_from > date_to:
            raise ValidationError("date_to", "homestay.date_range_reversed")
        name = clean_text(name) if name else ""
        number = identity.normalize_id_number(id_number) if id_number else ""
        return GuestQuery(
            name_grams=tuple(
                sorted(self._vault.blind_index("name_pair", pair) for pair in name_pairs(name))
            ),
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
        labels: CsvLabels | None = None,
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
        body = to_csv(records) if labels is None else to_spreadsheet_csv(records, labels)
        return "\ufeff" + body

    # -- retention -----------------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete registrations that ended, and were entered, more than
        ``guest_retention_days`` ago.

        A guest never checked out counts as ended on the expected check-out date, so a forgotten
        check-out does not keep personal data forever. Counting from the entry as well means a
        stay dated in the past is kept for the whole period all the same.
        """
        cutoff = as_utc(self._clock()) - self._retention
        with self._database.write() as db:
            cursor = db.execute(
                "DELETE FROM guests WHERE created_at < ? AND ("
                " (checked_out_at IS NOT NULL AND checked_out_at < ?)"
                " OR (checked_out_at IS NULL AND expected_check_out < ?))",
                [timestamp(cutoff), timestamp(cutoff), cutoff.date().isoformat()],
            )
            purged = max(0, cursor.rowcount)
            # What pointed at the purged registrations goes with them; a form token is only
            # needed while a repeated submit of its form may still arrive.
            db.execute("DELETE FROM guest_reports WHERE guest_id NOT IN (SELECT id FROM guests)")
            db.execute("DELETE FROM guest_name_pairs WHERE guest_id NOT IN (SELECT id FROM guests)")
            db.execute(
                "DELETE FROM homestay_form_tokens WHERE created_at < ?"
                " OR guest_id NOT IN (SELECT id FROM guests)",
                [timestamp(as_utc(self._clock()) - FORM_TOKEN_LIFETIME)],
            )
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

    def _check_owner(
        self, db: sqlite_utils.Database, record: GuestRecord, host_username: str | None
    ) -> None:
        if host_username is None:
            return
        if self._homestay_in(db, record.homestay_id).host_username != host_username:
            raise RecordNotFoundError("guest_id", "guest.not_found")

    @staticmethod
    def _homestay_in(db: sqlite_utils.Database, homestay_id: int) -> Homestay:
        row = db.execute(
            "SELECT id, name, address, rooms, host_username, created_at FROM homestays"
            " WHERE id = ?",
            [homestay_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("homestay_id", "homestay.not_found")
        return homestay_of(row)

    def _load(self, db: sqlite_utils.Database, guest_id: int, *, unmasked: bool) -> GuestRecord:
        row = db.execute(
            f"SELECT {GUEST_COLUMNS} FROM guests g JOIN homestays h ON h.id = g.homestay_id"  # noqa: S608
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
            now = as_utc(self._clock())
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
            if kind == "name" and filters.name_grams:
                marks = ",".join("?" * len(filters.name_grams))
                clauses.append(
                    "(g.name_index = ? OR g.id IN (SELECT guest_id FROM guest_companions"  # noqa: S608 - marks are only question marks
                    " WHERE name_index = ?) OR g.id IN (SELECT guest_id FROM guest_name_pairs"
                    f" WHERE pair_index IN ({marks}) GROUP BY guest_id, person"
                    " HAVING COUNT(DISTINCT pair_index) = ?))"
                )
                params += [index, index, *filters.name_grams, len(filters.name_grams)]
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
            f"SELECT {GUEST_COLUMNS} FROM guests g JOIN homestays h ON h.id = g.homestay_id"  # noqa: S608
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
                f"SELECT {COMPANION_COLUMNS} FROM guest_companions"  # noqa: S608
                f" WHERE guest_id IN ({marks}) ORDER BY guest_id, position",
                chunk,
            ).fetchall():
                companions.setdefault(int(row[0]), []).append(self._companion(row, unmasked))
        states = _report_states(db, ids)
        return [
            replace(
                self._guest(row, tuple(companions.get(int(row[0]), ())), unmasked),
                report_state=states.get(int(row[0]), ""),
            )
            for row in rows
        ]

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
            "reported_at": timestamp(now),
            "foreign": record.foreign,
            "report_deadline": timestamp(deadline) if deadline else None,
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
                "birth_date": iso_day(record.birth_date),
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
                    "birth_date": iso_day(c.birth_date),
                    "nationality": c.nationality,
                    "foreign": c.foreign,
                }
                for c in record.companions
            ],
            "room": record.room,
            "check_in": timestamp(record.check_in),
            "expected_check_out": record.expected_check_out.isoformat(),
            "checked_out_at": timestamp(record.checked_out_at) if record.checked_out_at else None,
        }


def _last_outbox_seq(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
    return int(row[0])


def _report_states(db: sqlite_utils.Database, ids: Sequence[int]) -> dict[int, str]:
    """The state of each guest's latest report (see ``GuestRecord.report_state``)."""
    if not ids or not db["guest_reports"].exists():
        return {}
    has_outbox = db["outbox"].exists()
    pending = (
        "EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = r.message_id)" if has_outbox else "0"
    )
    states: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for guest_id, message_id, queued in db.execute(
            f"SELECT r.guest_id, r.message_id, {pending} FROM guest_reports r"  # noqa: S608
            f" WHERE r.id IN (SELECT MAX(id) FROM guest_reports WHERE guest_id IN ({marks})"
            " GROUP BY guest_id)",
            chunk,
        ).fetchall():
            if message_id is None:
                states[int(guest_id)] = "not_sent"
            else:
                states[int(guest_id)] = "queued" if queued else "delivered"
    return states
