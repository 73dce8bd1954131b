"""Households and the family link (亲情通): which family accounts may watch which home cameras.

A household (张家) has a name, the cameras linked to it (ids from the config's ``[[cameras]]``,
a kiosk camera included) and a household PIN that its members know. At the kiosk's own screen a
villager picks the household, types the PIN and gets a one-time invite code; on a phone the code
links a ``family`` account (new or existing) to the household. A family account may then watch
exactly the cameras of its households (``cameras_for``).

What is kept and what is not:
- The PIN is stored as an argon2id hash with the account passwords' parameters only; it never
  reaches a log or an audit row.
- An invite code is stored only as a keyed digest (HMAC with a random key kept in the database),
  is compared in constant time against every live invite, is valid ``invite_minutes`` (10) and
  is used once. Codes are 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L).
- Wrong PINs are counted per (household, client address) *before* the PIN is checked, in one
  write transaction, like sign-ins: the ``pin_max_failures``-th wrong PIN pauses the pair.
  Wrong invite codes are counted per address the same way. Addresses are kept as keyed digests.
- Every household change, invite, link, unlink and wrong PIN is written to the audit log in the
  same transaction as the change; the invite code never is.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from agent.accounts import AccountStore, Role, default_hasher
from agent.audit import AuditLog
from agent.errors import ValidationError
from agent.store.database import Database, Migration

log = logging.getLogger(__name__)

AREA = "family"
MAX_HOUSEHOLD_NAME = 50
MAX_HOUSEHOLDS = 500
PIN_MIN_LENGTH = 6
PIN_MAX_LENGTH = 8
# No look-alikes: a code read off the kiosk screen and typed on a phone must not be mistyped.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
# Live invites per household: the oldest is cancelled when another is made.
MAX_LIVE_INVITES = 3
MAX_BACKOFF_ROWS = 10_000
_PIN = "pin"
_CODE = "code"

# English text of this area's codes (the web UI has them in both catalogs).
ERROR_MESSAGES: dict[str, str] = {
    "household.name_required": "Enter the household's name.",
    "household.name_too_long": f"The name has at most {MAX_HOUSEHOLD_NAME} characters.",
    "household.name_format": "The name contains characters that are not allowed.",
    "household.name_taken": "A household with this name exists already.",
    "household.not_found": "This household does not exist.",
    "household.too_many": f"There are {MAX_HOUSEHOLDS} households already.",
    "household.camera_unknown": "This camera is not configured on this kiosk.",
    "pin.format": f"The PIN has {PIN_MIN_LENGTH} to {PIN_MAX_LENGTH} digits.",
    "pin.too_simple": "The PIN is too easy to guess (all the same digit or a run like 123456).",
    "pin.wrong": "Wrong PIN. After several wrong tries this household pauses for a few minutes.",
    "pin.paused": "Too many wrong PINs for this household. Please wait a few minutes.",
    "code.format": f"The invite code has {CODE_LENGTH} letters and digits.",
    "code.invalid": "This invite code is wrong, has been used or has expired.",
    "code.paused": "Too many wrong invite codes from this device. Please wait a few minutes.",
    "link.wrong_role": "Only family accounts can be linked to a household.",
    "link.already_member": "This account is linked to this household already.",
    "link.not_member": "This account is not linked to this household.",
}


class AttemptsPausedError(ValidationError):
    """Too many wrong PINs or codes: the caller should answer 429 with ``retry_after``."""

    def __init__(self, field: str, code: str, retry_after_seconds: int) -> None:
        super().__init__(field, code)
        self.retry_after_seconds = retry_after_seconds


class HouseholdNotFoundError(ValidationError):
    """A household id that does not exist (the UI answers 404)."""

    def __init__(self) -> None:
        super().__init__("household_id", "household.not_found")


@dataclass(frozen=True)
class Household:
    id: int
    name: str
    camera_ids: tuple[str, ...]
    members: tuple[str, ...]  # family usernames, sorted
    created_at: float


@dataclass(frozen=True)
class Invite:
    """A fresh invite; ``code`` is shown once on the kiosk screen and kept nowhere else."""

    code: str
    household_id: int
    household_name: str
    expires_at: float

    @property
    def display_code(self) -> str:
        """``ABCD-EFGH``: two groups are easier to read out and type."""
        half = len(self.code) // 2
        return f"{self.code[:half]}-{self.code[half:]}"


@dataclass(frozen=True)
class InvitePreview:
    """What a valid code shows before it is redeemed."""

    household_id: int
    household_name: str
    expires_at: float


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE households ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
        " name_key TEXT NOT NULL UNIQUE, pin_hash TEXT NOT NULL,"
        " created_at REAL NOT NULL, updated_at REAL NOT NULL)"
    )
    db.execute(
        "CREATE TABLE household_cameras ("
        " household_id INTEGER NOT NULL REFERENCES households (id) ON DELETE CASCADE,"
        " camera_id TEXT NOT NULL, PRIMARY KEY (household_id, camera_id))"
    )
    # A deleted account leaves its households with it.
    db.execute(
        "CREATE TABLE household_members ("
        " household_id INTEGER NOT NULL REFERENCES households (id) ON DELETE CASCADE,"
        " username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,"
        " linked_at REAL NOT NULL, PRIMARY KEY (household_id, username))"
    )
    db.execute("CREATE INDEX household_members_user ON household_members (username)")
    db.execute(
        "CREATE TABLE family_invites ("
        " code_digest TEXT PRIMARY KEY,"
        " household_id INTEGER NOT NULL REFERENCES households (id) ON DELETE CASCADE,"
        " created_at REAL NOT NULL, expires_at REAL NOT NULL, used_at REAL, used_by TEXT)"
    )
    db.execute("CREATE INDEX family_invites_live ON family_invites (expires_at)")
    db.execute(
        "CREATE TABLE family_backoff ("
        " kind TEXT NOT NULL, subject TEXT NOT NULL, address_key TEXT NOT NULL,"
        " failures INTEGER NOT NULL, last_attempt REAL NOT NULL, paused_until REAL,"
        " PRIMARY KEY (kind, subject, address_key))"
    )
    db.execute("CREATE INDEX family_backoff_age ON family_backoff (last_attempt)")
    db.execute("CREATE TABLE family_key (id INTEGER PRIMARY KEY CHECK (id = 1), key BLOB NOT NULL)")
    db.execute("INSERT INTO family_key (id, key) VALUES (1, randomblob(32))")


MIGRATIONS = (Migration(1, "households, members, invites and PIN back-off", _create_tables),)


def clean_name(value: str) -> str:
    return " ".join(value.split())


def check_pin(pin: str) -> None:
    """A household PIN: 6 to 8 digits, not one digit repeated nor a run such as 123456."""
    if not (PIN_MIN_LENGTH <= len(pin) <= PIN_MAX_LENGTH) or not re.fullmatch(r"[0-9]+", pin):
        raise ValidationError("pin", "pin.format")
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if len(steps) == 1 and steps <= {0, 1, 9}:
        raise ValidationError("pin", "pin.too_simple")


def normalize_code(value: str) -> str:
    """What a person typed (any case, spaces or a hyphen) as a code; raises ``code.format``."""
    code = re.sub(r"[\s\-]", "", value).upper()
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        raise ValidationError("code", "code.format")
    return code


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class FamilyService:
    """Households, their cameras and members, kiosk invites and their redemption."""

    def __init__(
        self,
        database: Database,
        audit: AuditLog,
        accounts: AccountStore,
        *,
        camera_ids: Iterable[str],
        hasher: PasswordHasher | None = None,
        invite_minutes: float = 10.0,
        pin_max_failures: int = 5,
        code_max_failures: int = 10,
        pause_minutes: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self._audit = audit
        self._accounts = accounts
        self._camera_ids = frozenset(camera_ids)
        self._hasher = hasher or default_hasher()
        self._invite_seconds = invite_minutes * 60.0
        self._pin_max_failures = pin_max_failures
        self._code_max_failures = code_max_failures
        self._pause_seconds = pause_minutes * 60.0
        self._clock = clock
        database.migrate(AREA, MIGRATIONS)
        with database.read() as db:
            self._key = bytes(db.execute("SELECT key FROM family_key WHERE id = 1").fetchone()[0])

    @property
    def camera_ids(self) -> frozenset[str]:
        """The cameras a household may be linked to (those of the config)."""
        return self._camera_ids

    # -- households (admin) --------------------------------------------------------------------

    def create_household(
        self, name: str, pin: str, camera_ids: Sequence[str], *, actor: str
    ) -> Household:
        name = self._check_name(name)
        cameras = self._check_cameras(camera_ids)
        check_pin(pin)
        pin_hash = self._hasher.hash(pin)
        now = self._clock()
        with self._database.write() as db:
            count = db.execute("SELECT COUNT(*) FROM households").fetchone()[0]
            if count >= MAX_HOUSEHOLDS:
                raise ValidationError("name", "household.too_many")
            self._require_free_name(db, name, None)
            cursor = db.execute(
                "INSERT INTO households (name, name_key, pin_hash, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [name, _name_key(name), pin_hash, now, now],
            )
            household_id = int(cursor.lastrowid or 0)
            self._set_cameras(db, household_id, cameras)
            self._audit.record(
                actor,
                "family.household_add",
                f"household:{household_id}",
                f"cameras: {','.join(cameras) or '-'}",
                db=db,
            )
            household = self._household_in(db, household_id)
        log.info("household %d created with %d cameras", household_id, len(cameras))
        return household

    def update_household(
        self, household_id: int, name: str, camera_ids: Sequence[str], *, actor: str
    ) -> Household:
        """Rename and choose the cameras; a linked camera no longer in the config may stay."""
        name = self._check_name(name)
        with self._database.write() as db:
            current = self._household_in(db, household_id)
            kept = set(current.camera_ids) - self._camera_ids
            cameras = tuple(sorted(set(self._check_cameras(set(camera_ids) - kept)) | kept))
            self._require_free_name(db, name, household_id)
            db.execute(
                "UPDATE households SET name = ?, name_key = ?, updated_at = ? WHERE id = ?",
                [name, _name_key(name), self._clock(), household_id],
            )
            self._set_cameras(db, household_id, cameras)
            changes = []
            if name != current.name:
                changes.append("renamed")
            if cameras != current.camera_ids:
                changes.append(f"cameras: {','.join(cameras) or '-'}")
            self._audit.record(
                actor,
                "family.household_edit",
                f"household:{household_id}",
                "; ".join(changes) or "unchanged",
                db=db,
            )
            household = self._household_in(db, household_id)
        log.info("household %d edited", household_id)
        return household

    def set_pin(self, household_id: int, pin: str, *, actor: str) -> None:
        """A new household PIN; lifts the household's PIN pauses and cancels its live invites."""
        check_pin(pin)
        pin_hash = self._hasher.hash(pin)
        with self._database.write() as db:
            self._household_in(db, household_id)
            db.execute(
                "UPDATE households SET pin_hash = ?, updated_at = ? WHERE id = ?",
                [pin_hash, self._clock(), household_id],
            )
            db.execute(
                "DELETE FROM family_backoff WHERE kind = ? AND subject = ?",
                [_PIN, str(household_id)],
            )
            db.execute(
                "DELETE FROM family_invites WHERE household_id = ? AND used_at IS NULL",
                [household_id],
            )
            self._audit.record(actor, "family.pin_set", f"household:{household_id}", db=db)
        log.info("PIN of household %d changed", household_id)

    def delete_household(self, household_id: int, *, actor: str) -> None:
        with self._database.write() as db:
            household = self._household_in(db, household_id)
            db.execute(
                "DELETE FROM family_backoff WHERE kind = ? AND subject = ?",
                [_PIN, str(household_id)],
            )
            db.execute("DELETE FROM households WHERE id = ?", [household_id])
            self._audit.record(
                actor,
                "family.household_delete",
                f"household:{household_id}",
                f"{len(household.members)} members unlinked",
                db=db,
            )
        log.info("household %d deleted", household_id)

    def list_households(self) -> list[Household]:
        with self._database.read() as db:
            ids = [row[0] for row in db.execute("SELECT id FROM households ORDER BY name, id")]
            return [self._household_in(db, household_id) for household_id in ids]

    def get_household(self, household_id: int) -> Household:
        with self._database.read() as db:
            return self._household_in(db, household_id)

    def pin_paused(self, household_id: int, address: str) -> int:
        """Seconds until ``address`` may try this household's PIN again; 0 when it may now."""
        with self._database.read() as db:
            return self._paused_for(db, _PIN, str(household_id), self._digest("address", address))

    # -- members -------------------------------------------------------------------------------

    def households_of(self, username: str) -> list[Household]:
        with self._database.read() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT h.id FROM households h JOIN household_members m"
                    " ON m.household_id = h.id WHERE m.username = ? ORDER BY h.name, h.id",
                    [username],
                )
            ]
            return [self._household_in(db, household_id) for household_id in ids]

    def members_of(self, household_id: int) -> list[str]:
        with self._database.read() as db:
            return list(self._household_in(db, household_id).members)

    def cameras_for(self, username: str) -> frozenset[str]:
        """The camera ids a family account may watch: those of its households that the config
        still has. Any other account, or none, gets nothing."""
        with self._database.read() as db:
            rows = db.execute(
                "SELECT DISTINCT c.camera_id FROM household_members m"
                " JOIN household_cameras c ON c.household_id = m.household_id"
                " WHERE m.username = ?",
                [username],
            ).fetchall()
        return frozenset(row[0] for row in rows) & self._camera_ids

    def unlink(self, household_id: int, username: str, *, actor: str) -> None:
        """An admin removes a member (``family.unlink``)."""
        self._remove_member(household_id, username, actor=actor, action="family.unlink")

    def leave(self, household_id: int, username: str) -> None:
        """A family member leaves a household from their phone (``family.leave``)."""
        self._remove_member(household_id, username, actor=username, action="family.leave")

    def _remove_member(self, household_id: int, username: str, *, actor: str, action: str) -> None:
        with self._database.write() as db:
            self._household_in(db, household_id)
            cursor = db.execute(
                "DELETE FROM household_members WHERE household_id = ? AND username = ?",
                [household_id, username],
            )
            if cursor.rowcount == 0:
                raise ValidationError("username", "link.not_member")
            self._audit.record(
                actor, action, f"household:{household_id}", f"user:{username}", db=db
            )
        log.info("a member left household %d (%s)", household_id, action)

    # -- invites (kiosk) -----------------------------------------------------------------------

    def create_invite(self, household_id: int, pin: str, *, address: str, actor: str) -> Invite:
        """Check the household PIN (counted first) and make a one-time invite code.

        Raises HouseholdNotFoundError, AttemptsPausedError (``pin.paused``) or
        ValidationError (``pin.wrong``).
        """
        address_key = self._digest("address", address)
        subject = str(household_id)
        with self._database.write() as db:
            household = self._household_in(db, household_id)
            pin_hash = str(
                db.execute(
                    "SELECT pin_hash FROM households WHERE id = ?", [household_id]
                ).fetchone()[0]
            )
            self._count(db, _PIN, subject, address_key, self._pin_max_failures, "pin")
        if not self._verify(pin_hash, pin):
            with self._database.write() as db:
                paused = self._paused_for(db, _PIN, subject, address_key)
                self._audit.record(
                    actor,
                    "family.pin_failed",
                    f"household:{household_id}",
                    "paused" if paused else "",
                    db=db,
                )
            if paused:
                log.warning("PIN entry of household %d paused for one address", household_id)
                raise AttemptsPausedError("pin", "pin.paused", paused)
            raise ValidationError("pin", "pin.wrong")
        now = self._clock()
        code = new_code()
        with self._database.write() as db:
            self._household_in(db, household_id)  # still there after the slow check
            db.execute(
                "DELETE FROM family_backoff WHERE kind = ? AND subject = ? AND address_key = ?",
                [_PIN, subject, address_key],
            )
            db.execute("DELETE FROM family_invites WHERE expires_at <= ?", [now])
            live = db.execute(
                "SELECT code_digest FROM family_invites WHERE household_id = ?"
                " AND used_at IS NULL ORDER BY created_at DESC, rowid DESC",
                [household_id],
            ).fetchall()
            for (digest,) in live[MAX_LIVE_INVITES - 1 :]:
                db.execute("DELETE FROM family_invites WHERE code_digest = ?", [digest])
            expires_at = now + self._invite_seconds
            db.execute(
                "INSERT INTO family_invites (code_digest, household_id, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                [self._code_digest(code), household_id, now, expires_at],
            )
            self._audit.record(
                actor,
                "family.invite",
                f"household:{household_id}",
                f"valid {round(self._invite_seconds / 60)} minutes",
                db=db,
            )
        log.info("invite made for household %d", household_id)
        return Invite(code, household_id, household.name, expires_at)

    # -- redeeming (phone) ---------------------------------------------------------------------

    def preview_invite(self, code: str, *, address: str) -> InvitePreview:
        """The household a code would link to, without using the code (counted like a use).

        Raises ValidationError ``code.format``/``code.invalid`` or AttemptsPausedError.
        """
        normalized = normalize_code(code)
        address_key = self._count_code(address)
        with self._database.write() as db:
            _, household_id, expires_at = self._match_invite(db, normalized, address_key)
            household = self._household_in(db, household_id)
        return InvitePreview(household.id, household.name, expires_at)

    def redeem(self, code: str, username: str, *, address: str, detail: str = "") -> Household:
        """Use a code: link the family account ``username`` to the code's household.

        The code is used up only when the link is made. Raises ValidationError
        (``code.format``, ``code.invalid``, ``link.wrong_role``, ``link.already_member``) or
        AttemptsPausedError.
        """
        normalized = normalize_code(code)
        account = self._accounts.get_user(username)
        if account is None or account.role is not Role.FAMILY:
            raise ValidationError("username", "link.wrong_role")
        address_key = self._count_code(address)
        now = self._clock()
        with self._database.write() as db:
            digest, household_id, _ = self._match_invite(db, normalized, address_key)
            member = db.execute(
                "SELECT 1 FROM household_members WHERE household_id = ? AND username = ?",
                [household_id, username],
            ).fetchone()
            if member:
                raise ValidationError("code", "link.already_member")
            cursor = db.execute(
                "UPDATE family_invites SET used_at = ?, used_by = ?"
                " WHERE code_digest = ? AND used_at IS NULL AND expires_at > ?",
                [now, username, digest, now],
            )
            if cursor.rowcount != 1:
                raise ValidationError("code", "code.invalid")
            db.execute(
                "INSERT INTO household_members (household_id, username, linked_at)"
                " VALUES (?, ?, ?)",
                [household_id, username, now],
            )
            self._audit.record(username, "family.link", f"household:{household_id}", detail, db=db)
            household = self._household_in(db, household_id)
        log.info("a family account was linked to household %d", household_id)
        return household

    # -- internals -----------------------------------------------------------------------------

    def _count_code(self, address: str) -> str:
        """Count a code attempt from ``address`` in a transaction of its own, so a wrong code
        stays counted; returns the address key."""
        address_key = self._digest("address", address)
        with self._database.write() as db:
            self._count(db, _CODE, "", address_key, self._code_max_failures, "code")
        return address_key

    def _match_invite(
        self, db: sqlite_utils.Database, code: str, address_key: str
    ) -> tuple[str, int, float]:
        """Compare the code's digest with every live invite's in constant time (no early
        exit); returns (digest, household id, expiry). A right code is taken off the count."""
        wanted = self._code_digest(code)
        found: tuple[str, int, float] | None = None
        for digest, household_id, expires_at in db.execute(
            "SELECT code_digest, household_id, expires_at FROM family_invites"
            " WHERE used_at IS NULL AND expires_at > ?",
            [self._clock()],
        ).fetchall():
            if hmac.compare_digest(str(digest), wanted) and found is None:
                found = (str(digest), int(household_id), float(expires_at))
        if found is None:
            raise ValidationError("code", "code.invalid")
        db.execute(
            "UPDATE family_backoff SET failures = MAX(failures - 1, 0)"
            " WHERE kind = ? AND subject = '' AND address_key = ? AND paused_until IS NULL",
            [_CODE, address_key],
        )
        return found

    def _count(
        self,
        db: sqlite_utils.Database,
        kind: str,
        subject: str,
        address_key: str,
        max_failures: int,
        field: str,
    ) -> None:
        """Count one attempt before anything is checked; raises AttemptsPausedError while the
        pair is paused. The ``max_failures``-th counted attempt pauses the pair if it fails."""
        now = self._clock()
        db.execute(
            "DELETE FROM family_backoff WHERE last_attempt <= ? AND COALESCE(paused_until, 0) <= ?",
            [now - self._pause_seconds, now],
        )
        row = db.execute(
            "SELECT failures, last_attempt, paused_until FROM family_backoff"
            " WHERE kind = ? AND subject = ? AND address_key = ?",
            [kind, subject, address_key],
        ).fetchone()
        if row is not None and row[2] is not None and row[2] > now:
            raise AttemptsPausedError(field, f"{field}.paused", max(1, int(row[2] - now) + 1))
        fresh = row is None or row[2] is not None
        failures = 1 if fresh else int(row[0]) + 1
        paused_until = now + self._pause_seconds if failures >= max_failures else None
        db.execute(
            "INSERT INTO family_backoff"
            " (kind, subject, address_key, failures, last_attempt, paused_until)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, subject, address_key) DO UPDATE SET"
            " failures = excluded.failures, last_attempt = excluded.last_attempt,"
            " paused_until = excluded.paused_until",
            [kind, subject, address_key, failures, now, paused_until],
        )
        if row is None:
            count = db.execute("SELECT COUNT(*) FROM family_backoff").fetchone()[0]
            if count > MAX_BACKOFF_ROWS:
                db.execute(
                    "DELETE FROM family_backoff WHERE rowid IN (SELECT rowid FROM"
                    " family_backoff ORDER BY last_attempt LIMIT ?)",
                    [count - MAX_BACKOFF_ROWS],
                )

    def _paused_for(
        self, db: sqlite_utils.Database, kind: str, subject: str, address_key: str
    ) -> int:
        now = self._clock()
        row = db.execute(
            "SELECT paused_until FROM family_backoff"
            " WHERE kind = ? AND subject = ? AND address_key = ?",
            [kind, subject, address_key],
        ).fetchone()
        if row is None or row[0] is None or row[0] <= now:
            return 0
        return max(1, int(row[0] - now) + 1)

    def _verify(self, pin_hash: str, pin: str) -> bool:
        try:
            return self._hasher.verify(pin_hash, pin)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            log.warning("a stored household PIN hash could not be checked")
            return False

    def _digest(self, kind: str, value: str) -> str:
        message = f"{kind}\x00{value}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _code_digest(self, code: str) -> str:
        return self._digest("invite", code)

    def _check_name(self, name: str) -> str:
        name = clean_name(name)
        if not name:
            raise ValidationError("name", "household.name_required")
        if len(name) > MAX_HOUSEHOLD_NAME:
            raise ValidationError("name", "household.name_too_long")
        if any(not ch.isprintable() for ch in name):
            raise ValidationError("name", "household.name_format")
        return name

    def _check_cameras(self, camera_ids: Iterable[str]) -> tuple[str, ...]:
        cameras = tuple(sorted({camera_id.strip() for camera_id in camera_ids}))
        for camera_id in cameras:
            if camera_id not in self._camera_ids:
                raise ValidationError("camera_ids", "household.camera_unknown")
        return cameras

    @staticmethod
    def _require_free_name(db: sqlite_utils.Database, name: str, household_id: int | None) -> None:
        row = db.execute("SELECT id FROM households WHERE name_key = ?", [_name_key(name)])
        existing = row.fetchone()
        if existing is not None and existing[0] != household_id:
            raise ValidationError("name", "household.name_taken")

    @staticmethod
    def _set_cameras(db: sqlite_utils.Database, household_id: int, cameras: Sequence[str]) -> None:
        db.execute("DELETE FROM household_cameras WHERE household_id = ?", [household_id])
        for camera_id in cameras:
            db.execute(
                "INSERT INTO household_cameras (household_id, camera_id) VALUES (?, ?)",
                [household_id, camera_id],
            )

    @staticmethod
    def _household_in(db: sqlite_utils.Database, household_id: int) -> Household:
        row = db.execute(
            "SELECT id, name, created_at FROM households WHERE id = ?", [household_id]
        ).fetchone()
        if row is None:
            raise HouseholdNotFoundError()
        cameras = _column(
            db,
            "SELECT camera_id FROM household_cameras WHERE household_id = ? ORDER BY camera_id",
            household_id,
        )
        members = _column(
            db,
            "SELECT username FROM household_members WHERE household_id = ? ORDER BY username",
            household_id,
        )
        return Household(int(row[0]), str(row[1]), cameras, members, float(row[2]))


def _column(db: sqlite_utils.Database, sql: str, *params: Any) -> tuple[str, ...]:
    return tuple(str(row[0]) for row in db.execute(sql, list(params)).fetchall())


def _name_key(name: str) -> str:
    return clean_name(name).casefold()
