"""Accounts, roles, login lockout and server-side sessions (migration area ``accounts``).

Passwords are stored as argon2id hashes only. A session cookie carries a random token whose
SHA-256 is what the table keeps, so a copy of the database does not hand out live sessions.
There are no default accounts: the first admin is created with ``village-kiosk user add``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from agent.config import WebConfig
from agent.errors import KioskError, ValidationError
from agent.store.database import Database, Migration

log = logging.getLogger(__name__)

AREA = "accounts"
USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{2,31}$")
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256
_PASSWORD_MIN_DISTINCT = 5

# English text of the codes this module raises, for the command line; the web UI has its own
# catalogs (zh-CN first).
ERROR_MESSAGES: dict[str, str] = {
    "username.format": "3 to 32 characters: a lowercase letter first, then a-z, 0-9, '_', '.', '-'",
    "username.taken": "an account with this username exists already",
    "username.unknown": "no account has this username",
    "password.too_short": f"at least {PASSWORD_MIN_LENGTH} characters",
    "password.too_long": f"at most {PASSWORD_MAX_LENGTH} characters",
    "password.too_simple": f"use at least {_PASSWORD_MIN_DISTINCT} different characters",
    "password.contains_username": "must not contain the username",
    "role.unknown": "must be admin, police, host or family",
}


class Role(StrEnum):
    ADMIN = "admin"
    POLICE = "police"
    HOST = "host"  # homestay operator
    FAMILY = "family"  # migrant worker watching the home camera


@dataclass(frozen=True)
class Account:
    username: str
    role: Role
    created_at: float


@dataclass(frozen=True)
class Session:
    """A live session; ``csrf_token`` must accompany every state-changing request."""

    username: str
    role: Role
    csrf_token: str
    expires_at: float


@dataclass(frozen=True)
class SessionGrant:
    """What a successful login hands back; ``token`` goes into the cookie and nowhere else."""

    token: str
    session: Session


class LoginRefusedError(KioskError):
    """Wrong username or password, or the account is locked (``locked_until`` is set)."""

    def __init__(self, *, locked_until: float | None = None) -> None:
        self.locked_until = locked_until
        super().__init__("account locked" if locked_until else "wrong username or password")


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE users ("
        " username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,"
        " failed_logins INTEGER NOT NULL DEFAULT 0, locked_until REAL,"
        " created_at REAL NOT NULL)"
    )
    db.execute(
        "CREATE TABLE sessions ("
        " token_sha256 TEXT PRIMARY KEY,"
        " username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,"
        " csrf_token TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL)"
    )
    db.execute("CREATE INDEX sessions_expiry ON sessions(expires_at)")


MIGRATIONS = [Migration(1, "users and sessions", _create_tables)]


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_username(username: str) -> None:
    if not USERNAME_PATTERN.match(username):
        raise ValidationError("username", "username.format")


def check_password(password: str, *, username: str = "") -> None:
    """Reject passwords a neighbour could guess; raises ValidationError(field="password")."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValidationError("password", "password.too_short")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValidationError("password", "password.too_long")
    if len(set(password)) < _PASSWORD_MIN_DISTINCT:
        raise ValidationError("password", "password.too_simple")
    if username and username.lower() in password.lower():
        raise ValidationError("password", "password.contains_username")


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError as exc:
        raise ValidationError("role", "role.unknown") from exc


class AccountStore:
    """Users, their roles and sessions, in the kiosk database."""

    def __init__(
        self,
        database: Database,
        *,
        login_max_failures: int = 5,
        lockout_minutes: float = 15.0,
        session_hours: float = 12.0,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self._max_failures = login_max_failures
        self._lockout_seconds = lockout_minutes * 60.0
        self._session_seconds = session_hours * 3600.0
        self._hasher = hasher or PasswordHasher()
        self._clock = clock
        # Verified when the username is unknown, so a wrong name costs as long as a wrong
        # password and response time does not reveal which accounts exist.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        database.migrate(AREA, MIGRATIONS)

    @classmethod
    def from_config(cls, database: Database, web: WebConfig) -> AccountStore:
        store = cls(database)
        store.apply_policy(web)
        return store

    def apply_policy(self, web: WebConfig) -> None:
        """Take lockout and session lengths from the web config (the web UI does this)."""
        self._max_failures = web.login_max_failures
        self._lockout_seconds = web.lockout_minutes * 60.0
        self._session_seconds = web.session_hours * 3600.0

    # -- users -------------------------------------------------------------------------

    def create_user(self, username: str, role: str, password: str) -> None:
        """Add an account; raises ValidationError for a bad or taken username, role or password."""
        check_username(username)
        parsed_role = parse_role(role)
        check_password(password, username=username)
        password_hash = self._hasher.hash(password)
        with self._database.write() as db:
            exists = db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone()
            if exists:
                raise ValidationError("username", "username.taken")
            db.execute(
                "INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                [username, parsed_role.value, password_hash, self._clock()],
            )
        log.info("account %s created with role %s", username, parsed_role.value)

    def set_password(self, username: str, password: str) -> None:
        """Replace a password; ends the user's sessions and clears any lockout."""
        check_password(password, username=username)
        password_hash = self._hasher.hash(password)
        with self._database.write() as db:
            cursor = db.execute(
                "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL"
                " WHERE username = ?",
                [password_hash, username],
            )
            if cursor.rowcount == 0:
                raise ValidationError("username", "username.unknown")
            db.execute("DELETE FROM sessions WHERE username = ?", [username])
        log.info("password of %s changed", username)

    def delete_user(self, username: str) -> None:
        with self._database.write() as db:
            db.execute("DELETE FROM sessions WHERE username = ?", [username])
            db.execute("DELETE FROM users WHERE username = ?", [username])
        log.info("account %s deleted", username)

    def get_user(self, username: str) -> Account | None:
        with self._database.read() as db:
            row = db.execute(
                "SELECT username, role, created_at FROM users WHERE username = ?", [username]
            ).fetchone()
        return Account(row[0], Role(row[1]), row[2]) if row else None

    def list_users(self, *, role: Role | None = None) -> list[Account]:
        sql = "SELECT username, role, created_at FROM users"
        params: list[Any] = []
        if role is not None:
            sql += " WHERE role = ?"
            params.append(role.value)
        with self._database.read() as db:
            rows = db.execute(sql + " ORDER BY username", params).fetchall()
        return [Account(row[0], Role(row[1]), row[2]) for row in rows]

    def locked_until(self, username: str) -> float | None:
        with self._database.read() as db:
            row = db.execute(
                "SELECT locked_until FROM users WHERE username = ?", [username]
            ).fetchone()
        if row is None or row[0] is None or row[0] <= self._clock():
            return None
        return float(row[0])

    # -- login -------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> Account:
        """Check a password; the ``login_max_failures``-th wrong one locks the account.

        Raises LoginRefusedError; while locked even the right password is refused.
        """
        with self._database.read() as db:
            row = db.execute(
                "SELECT role, password_hash, locked_until, created_at FROM users"
                " WHERE username = ?",
                [username],
            ).fetchone()
        if row is None:
            self._verify(self._dummy_hash, password)
            raise LoginRefusedError()
        role, password_hash, locked_until, created_at = row
        now = self._clock()
        if locked_until is not None and locked_until > now:
            raise LoginRefusedError(locked_until=float(locked_until))
        if not self._verify(password_hash, password):
            self._record_failure(username, now)
            raise LoginRefusedError(locked_until=self.locked_until(username))
        with self._database.write() as db:
            db.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = ?",
                [username],
            )
            if self._hasher.check_needs_rehash(password_hash):
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?",
                    [self._hasher.hash(password), username],
                )
        return Account(username, Role(role), created_at)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            log.warning("a stored password hash could not be checked")
            return False

    def _record_failure(self, username: str, now: float) -> None:
        with self._database.write() as db:
            db.execute(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE username = ?",
                [username],
            )
            failures = db.execute(
                "SELECT failed_logins FROM users WHERE username = ?", [username]
            ).fetchone()[0]
            if failures >= self._max_failures:
                db.execute(
                    "UPDATE users SET failed_logins = 0, locked_until = ? WHERE username = ?",
                    [now + self._lockout_seconds, username],
                )
                log.warning("account %s locked after %d failed logins", username, failures)

    # -- sessions ----------------------------------------------------------------------

    def start_session(self, account: Account) -> SessionGrant:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(
            username=account.username,
            role=account.role,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + self._session_seconds,
        )
        with self._database.write() as db:
            db.execute("DELETE FROM sessions WHERE expires_at <= ?", [now])
            db.execute(
                "INSERT INTO sessions (token_sha256, username, csrf_token, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?)",
                [
                    _token_digest(token),
                    account.username,
                    session.csrf_token,
                    now,
                    session.expires_at,
                ],
            )
        return SessionGrant(token=token, session=session)

    def session(self, token: str) -> Session | None:
        """The live session for a cookie token, or None when unknown or expired."""
        if not token or len(token) > 128:
            return None
        with self._database.read() as db:
            row = db.execute(
                "SELECT s.username, u.role, s.csrf_token, s.expires_at FROM sessions s"
                " JOIN users u ON u.username = s.username WHERE s.token_sha256 = ?",
                [_token_digest(token)],
            ).fetchone()
        if row is None or row[3] <= self._clock():
            return None
        return Session(username=row[0], role=Role(row[1]), csrf_token=row[2], expires_at=row[3])

    def end_session(self, token: str) -> None:
        with self._database.write() as db:
            db.execute("DELETE FROM sessions WHERE token_sha256 = ?", [_token_digest(token)])
