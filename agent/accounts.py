"""Accounts, roles, sign-in back-off and server-side sessions (migration area ``accounts``).

Passwords are stored as argon2id hashes only. A session cookie carries a random token whose
SHA-256 is what the table keeps, so a copy of the database does not hand out live sessions.
There are no default accounts: the first admin is created with ``village-kiosk user add``.

Wrong passwords pause sign-in for one (attempted username, client address) pair, never for the
account as a whole: a stranger guessing from one place cannot keep an officer out everywhere.
The pair is counted before its password is checked, in one write transaction, so parallel
guesses cannot outrun the count. Unknown usernames are counted, answered and timed exactly like
real ones (one argon2 verification each, against a dummy hash when there is no real one to
check), so neither the answer nor its speed tells which accounts exist. The attempted name and
the address are kept only as keyed digests: a password typed into the username box must not
be readable from the database.

Account changes, sign-ins and sign-outs are written to the audit log in the same transaction as
the change. Audit rows name only real accounts; passwords never reach a log or an audit row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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

from agent.audit import AuditLog
from agent.config import WebConfig
from agent.errors import KioskError, ValidationError
from agent.store.database import Database, Migration

log = logging.getLogger(__name__)

AREA = "accounts"
USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{2,31}$")
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256
_PASSWORD_MIN_DISTINCT = 5

# argon2id for a Raspberry Pi 4 (figures and reasons in docs/BENCHMARKS.md, "Password hashing"):
# OWASP's 19 MiB / 2 passes / 1 lane set. One lane leaves the other cores to the cameras; 19 MiB
# times web.login_concurrency is what sign-ins can ever hold. Hashes made with other parameters
# (argon2-cffi's 64 MiB defaults before) are rehashed at their owner's next sign-in.
HASH_TIME_COST = 2
HASH_MEMORY_KIB = 19 * 1024
HASH_PARALLELISM = 1

# A session's last-seen time is written at most this often: a page load must not cost a write
# for every picture and status poll, and the idle timeout is minutes long anyway.
TOUCH_SECONDS = 30.0
# Back-off rows kept at most; the oldest go first. One address adds at most a few per window
# (the per-address throttle in the web UI), so this is never reached in ordinary use.
MAX_BACKOFF_ROWS = 10_000
CLI_ACTOR = "cli"

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


def default_hasher() -> PasswordHasher:
    return PasswordHasher(
        time_cost=HASH_TIME_COST, memory_cost=HASH_MEMORY_KIB, parallelism=HASH_PARALLELISM
    )


class Role(StrEnum):
    ADMIN = "admin"
    POLICE = "police"
    HOST = "host"  # homestay operator
    FAMILY = "family"  # migrant worker watching the home camera
    STAFF = "staff"  # village committee staff: mediators, carers, replies, notices


@dataclass(frozen=True)
class Account:
    username: str
    role: Role
    created_at: float


@dataclass(frozen=True)
class AccountSummary:
    """One line of ``village-kiosk user list``."""

    account: Account
    sessions: int
    paused_addresses: int


@dataclass(frozen=True)
class Session:
    """A live session; ``csrf_token`` must accompany every state-changing request."""

    username: str
    role: Role
    csrf_token: str
    expires_at: float  # absolute end; the session also ends after the idle timeout
    kiosk: bool = False  # started on the kiosk's own screen


@dataclass(frozen=True)
class SessionGrant:
    """What a successful sign-in hands back; ``token`` goes into the cookie and nowhere else."""

    token: str
    session: Session


class LoginRefusedError(KioskError):
    """Wrong username or password, or sign-in paused for this name and address.

    Deliberately one error with nothing to tell the cases apart: whoever asks learns neither
    whether the account exists nor whether it is paused.
    """

    def __init__(self) -> None:
        super().__init__("wrong username or password")


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


def _backoff_and_idle_sessions(db: sqlite_utils.Database) -> None:
    # Sessions made under the old rules (12 h, persistent cookie, no idle end) stop here.
    db.execute("DELETE FROM sessions")
    db.execute("ALTER TABLE sessions ADD COLUMN last_seen REAL NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE sessions ADD COLUMN kiosk INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX sessions_user ON sessions(username)")
    # The account-wide lock is gone: it let anyone lock anyone out.
    db.execute("ALTER TABLE users DROP COLUMN failed_logins")
    db.execute("ALTER TABLE users DROP COLUMN locked_until")
    db.execute(
        "CREATE TABLE login_backoff ("
        " user_key TEXT NOT NULL, address_key TEXT NOT NULL,"
        " failures INTEGER NOT NULL, last_attempt REAL NOT NULL, paused_until REAL,"
        " PRIMARY KEY (user_key, address_key))"
    )
    db.execute("CREATE INDEX login_backoff_age ON login_backoff(last_attempt)")
    db.execute(
        "CREATE TABLE login_backoff_key (id INTEGER PRIMARY KEY CHECK (id = 1), key BLOB NOT NULL)"
    )
    db.execute("INSERT INTO login_backoff_key (id, key) VALUES (1, randomblob(32))")


MIGRATIONS = [
    Migration(1, "users and sessions", _create_tables),
    Migration(
        2,
        "sign-in back-off per name and address; idle and kiosk sessions",
        _backoff_and_idle_sessions,
    ),
]


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A well-formed hash with the hasher's parameters and a random digest: checking a password
    against it costs exactly one real verification, no password matches it, and making it costs
    nothing (a hashed dummy would make the first unknown name after a start the slow one)."""

    def b64(size: int) -> str:
        return base64.b64encode(secrets.token_bytes(size)).decode("ascii").rstrip("=")

    parameters = f"m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"
    kind = f"argon2{hasher.type.name.lower()}"
    return f"${kind}$v=19${parameters}${b64(hasher.salt_len)}${b64(hasher.hash_len)}"


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


@dataclass(frozen=True)
class _Attempt:
    """What the counting transaction decided before any password is checked."""

    username: str
    user_key: str
    address_key: str
    account: Account | None
    password_hash: str | None
    evaluated: bool  # False: paused, the dummy hash is checked instead


class AccountStore:
    """Users, their roles and sessions, in the kiosk database."""

    def __init__(
        self,
        database: Database,
        *,
        login_max_failures: int = 5,
        lockout_minutes: float = 15.0,
        session_hours: float = 12.0,
        idle_minutes: float = 15.0,
        kiosk_session_minutes: float = 10.0,
        hasher: PasswordHasher | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self._max_failures = login_max_failures
        self._lockout_seconds = lockout_minutes * 60.0
        self._session_seconds = session_hours * 3600.0
        self._idle_seconds = idle_minutes * 60.0
        self._kiosk_session_seconds = kiosk_session_minutes * 60.0
        self._hasher = hasher or default_hasher()
        self._clock = clock
        database.migrate(AREA, MIGRATIONS)
        self._audit = audit or AuditLog(database)
        with database.read() as db:
            self._backoff_key = bytes(
                db.execute("SELECT key FROM login_backoff_key WHERE id = 1").fetchone()[0]
            )
        self._dummy_hash = _dummy_hash(self._hasher)

    @classmethod
    def from_config(
        cls, database: Database, web: WebConfig, *, audit: AuditLog | None = None
    ) -> AccountStore:
        store = cls(database, audit=audit)
        store.apply_policy(web)
        return store

    def apply_policy(self, web: WebConfig) -> None:
        """Take back-off and session lengths from the web config (the web UI does this)."""
        self._max_failures = web.login_max_failures
        self._lockout_seconds = web.lockout_minutes * 60.0
        self._session_seconds = web.session_hours * 3600.0
        self._idle_seconds = web.idle_minutes * 60.0
        self._kiosk_session_seconds = web.kiosk_session_minutes * 60.0

    # -- users -------------------------------------------------------------------------

    def create_user(
        self, username: str, role: str, password: str, *, actor: str = CLI_ACTOR
    ) -> None:
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
            self._audit.record(actor, "user.add", f"user:{username}", parsed_role.value, db=db)
        log.info("account %s created with role %s", username, parsed_role.value)

    def set_password(
        self,
        username: str,
        password: str,
        *,
        actor: str = CLI_ACTOR,
        keep_session: str | None = None,
    ) -> int:
        """Replace a password; ends the user's sessions (but ``keep_session``, a cookie token)
        and lifts any sign-in pause. Returns how many sessions ended."""
        check_password(password, username=username)
        password_hash = self._hasher.hash(password)
        with self._database.write() as db:
            cursor = db.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", [password_hash, username]
            )
            if cursor.rowcount == 0:
                raise ValidationError("username", "username.unknown")
            ended = self._end_sessions(db, username, keep_session)
            db.execute("DELETE FROM login_backoff WHERE user_key = ?", [self._user_key(username)])
            detail = f"{ended} other sessions ended" if keep_session else f"{ended} sessions ended"
            self._audit.record(actor, "user.password", f"user:{username}", detail, db=db)
        log.info("password of %s changed", username)
        return ended

    def change_password(
        self, username: str, current: str, new: str, *, address: str, keep_session: str
    ) -> int:
        """A signed-in user replacing their own password.

        The current password is checked like a sign-in (counted against this name and address
        first), so a borrowed session cannot be used to guess it. Raises ValidationError for a
        weak new password and LoginRefusedError for a wrong current one. Returns how many other
        sessions ended.
        """
        check_password(new, username=username)
        attempt = self._count_attempt(username, address)
        if not self._check(attempt, current) or attempt.account is None:
            with self._database.write() as db:
                if attempt.account is not None:
                    detail = "" if attempt.evaluated else "paused"
                    self._audit.record(
                        username, "user.password_refused", f"user:{username}", detail, db=db
                    )
            raise LoginRefusedError()
        with self._database.write() as db:
            db.execute(
                "DELETE FROM login_backoff WHERE user_key = ? AND address_key = ?",
                [attempt.user_key, attempt.address_key],
            )
        return self.set_password(username, new, actor=username, keep_session=keep_session)

    def delete_user(self, username: str, *, actor: str = CLI_ACTOR) -> None:
        """Remove an account and its sessions; raises ValidationError when there is none."""
        with self._database.write() as db:
            self._end_sessions(db, username, None)
            cursor = db.execute("DELETE FROM users WHERE username = ?", [username])
            if cursor.rowcount == 0:
                raise ValidationError("username", "username.unknown")
            db.execute("DELETE FROM login_backoff WHERE user_key = ?", [self._user_key(username)])
            self._audit.record(actor, "user.delete", f"user:{username}", db=db)
        log.info("account %s deleted", username)

    def unlock(self, username: str, *, actor: str = CLI_ACTOR) -> int:
        """Lift every sign-in pause of an account (from any address); returns how many."""
        with self._database.write() as db:
            self._require_user(db, username)
            cursor = db.execute(
                "DELETE FROM login_backoff WHERE user_key = ? AND paused_until > ?",
                [self._user_key(username), self._clock()],
            )
            lifted = cursor.rowcount
            db.execute("DELETE FROM login_backoff WHERE user_key = ?", [self._user_key(username)])
            self._audit.record(
                actor, "user.unlock", f"user:{username}", f"{lifted} paused addresses", db=db
            )
        log.info("sign-in pauses of %s lifted", username)
        return int(lifted)

    def revoke(self, username: str, *, actor: str = CLI_ACTOR) -> int:
        """End every session of an account; returns how many ended."""
        with self._database.write() as db:
            self._require_user(db, username)
            ended = self._end_sessions(db, username, None)
            self._audit.record(
                actor, "user.revoke", f"user:{username}", f"{ended} sessions ended", db=db
            )
        log.info("sessions of %s ended", username)
        return ended

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

    def summaries(self, *, actor: str = CLI_ACTOR) -> list[AccountSummary]:
        """Every account with its live sessions and paused addresses (audited as a listing)."""
        now = self._clock()
        result: list[AccountSummary] = []
        with self._database.write() as db:
            rows = db.execute(
                "SELECT username, role, created_at FROM users ORDER BY username"
            ).fetchall()
            for username, role, created_at in rows:
                sessions = db.execute(
                    "SELECT COUNT(*) FROM sessions WHERE username = ? AND expires_at > ?"
                    " AND last_seen > ?",
                    [username, now, now - self._idle_seconds],
                ).fetchone()[0]
                paused = db.execute(
                    "SELECT COUNT(*) FROM login_backoff WHERE user_key = ? AND paused_until > ?",
                    [self._user_key(username), now],
                ).fetchone()[0]
                result.append(
                    AccountSummary(Account(username, Role(role), created_at), sessions, paused)
                )
            self._audit.record(actor, "user.list", "users", f"{len(result)} accounts", db=db)
        return result

    def paused_addresses(self, username: str) -> int:
        """How many client addresses may not sign in as ``username`` right now."""
        with self._database.read() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM login_backoff WHERE user_key = ? AND paused_until > ?",
                [self._user_key(username), self._clock()],
            ).fetchone()
        return int(row[0])

    # -- sign-in -----------------------------------------------------------------------

    def authenticate(self, username: str, password: str, *, address: str = "") -> Account:
        """Check a password from a client ``address``; raises LoginRefusedError.

        The ``login_max_failures``-th counted attempt for this name and address pauses the
        pair for ``lockout_minutes``; while paused even the right password is refused (and the
        dummy hash is checked instead, so the pause is not visible in the response time).
        """
        attempt = self._count_attempt(username, address)
        # Checked first, whatever the account: an unknown name must cost the same work.
        accepted = self._check(attempt, password) and attempt.account is not None
        new_hash: str | None = None
        if accepted and attempt.password_hash and self._needs_rehash(attempt.password_hash):
            new_hash = self._hasher.hash(password)
        with self._database.write() as db:
            if attempt.account is None:
                pass  # an unknown name is not audited: it may be a password typed in the box
            elif not accepted:
                detail = "" if attempt.evaluated else "paused"
                self._audit.record(username, "auth.login_failed", f"user:{username}", detail, db=db)
            else:
                db.execute(
                    "DELETE FROM login_backoff WHERE user_key = ? AND address_key = ?",
                    [attempt.user_key, attempt.address_key],
                )
                if new_hash is not None:
                    # Only if no one changed the password meanwhile.
                    db.execute(
                        "UPDATE users SET password_hash = ? WHERE username = ?"
                        " AND password_hash = ?",
                        [new_hash, username, attempt.password_hash],
                    )
                self._audit.record(username, "auth.login", f"user:{username}", db=db)
        if not accepted or attempt.account is None:
            raise LoginRefusedError()
        return attempt.account

    def _count_attempt(self, username: str, address: str) -> _Attempt:
        """Count one attempt for (username, address) before anything is verified."""
        user_key = self._user_key(username)
        address_key = self._digest("address", address)
        now = self._clock()
        with self._database.write() as db:
            db.execute(
                "DELETE FROM login_backoff WHERE last_attempt <= ?"
                " AND COALESCE(paused_until, 0) <= ?",
                [now - self._lockout_seconds, now],
            )
            user = db.execute(
                "SELECT role, password_hash, created_at FROM users WHERE username = ?",
                [username],
            ).fetchone()
            row = db.execute(
                "SELECT failures, last_attempt, paused_until FROM login_backoff"
                " WHERE user_key = ? AND address_key = ?",
                [user_key, address_key],
            ).fetchone()
            paused = row is not None and row[2] is not None and row[2] > now
            if not paused:
                fresh = row is None or row[2] is not None or row[1] <= now - self._lockout_seconds
                failures = 1 if fresh else int(row[0]) + 1
                paused_until = (
                    now + self._lockout_seconds if failures >= self._max_failures else None
                )
                db.execute(
                    "INSERT INTO login_backoff"
                    " (user_key, address_key, failures, last_attempt, paused_until)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_key, address_key) DO UPDATE SET"
                    " failures = excluded.failures, last_attempt = excluded.last_attempt,"
                    " paused_until = excluded.paused_until",
                    [user_key, address_key, failures, now, paused_until],
                )
                if row is None:
                    self._bound_backoff(db)
                if paused_until is not None and user is not None:
                    log.warning(
                        "sign-in as %s paused for one address after %d attempts",
                        username,
                        failures,
                    )
        account = Account(username, Role(user[0]), user[2]) if user is not None else None
        return _Attempt(
            username=username,
            user_key=user_key,
            address_key=address_key,
            account=account,
            password_hash=str(user[1]) if user is not None else None,
            evaluated=not paused,
        )

    def _bound_backoff(self, db: sqlite_utils.Database) -> None:
        count = db.execute("SELECT COUNT(*) FROM login_backoff").fetchone()[0]
        if count > MAX_BACKOFF_ROWS:
            db.execute(
                "DELETE FROM login_backoff WHERE rowid IN (SELECT rowid FROM login_backoff"
                " ORDER BY last_attempt LIMIT ?)",
                [count - MAX_BACKOFF_ROWS],
            )

    def _check(self, attempt: _Attempt, password: str) -> bool:
        """Exactly one argon2 verification whatever the case."""
        if attempt.evaluated and attempt.password_hash is not None:
            return self._verify(attempt.password_hash, password)
        self._verify(self._dummy_hash, password)
        return False

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            log.warning("a stored password hash could not be checked")
            return False

    def _needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False

    def _digest(self, kind: str, value: str) -> str:
        message = f"{kind}\x00{value}".encode("utf-8", "surrogatepass")
        return hmac.new(self._backoff_key, message, hashlib.sha256).hexdigest()

    def _user_key(self, username: str) -> str:
        return self._digest("username", username)

    def _require_user(self, db: sqlite_utils.Database, username: str) -> None:
        if not db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise ValidationError("username", "username.unknown")

    # -- sessions ----------------------------------------------------------------------

    def start_session(self, account: Account, *, kiosk: bool = False) -> SessionGrant:
        """A new session; ``kiosk`` (signed in on the kiosk's own screen) makes it short."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        lifetime = self._kiosk_session_seconds if kiosk else self._session_seconds
        session = Session(
            username=account.username,
            role=account.role,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + lifetime,
            kiosk=kiosk,
        )
        with self._database.write() as db:
            db.execute(
                "DELETE FROM sessions WHERE expires_at <= ? OR last_seen <= ?",
                [now, now - self._idle_seconds],
            )
            db.execute(
                "INSERT INTO sessions (token_sha256, username, csrf_token, created_at,"
                " expires_at, last_seen, kiosk) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    _token_digest(token),
                    account.username,
                    session.csrf_token,
                    now,
                    session.expires_at,
                    now,
                    int(kiosk),
                ],
            )
        return SessionGrant(token=token, session=session)

    def session(self, token: str) -> Session | None:
        """The live session for a cookie token, or None when unknown, expired or idle too long.

        Looking a session up counts as activity (written at most every TOUCH_SECONDS).
        """
        if not token or len(token) > 128:
            return None
        digest = _token_digest(token)
        with self._database.read() as db:
            row = db.execute(
                "SELECT s.username, u.role, s.csrf_token, s.expires_at, s.last_seen, s.kiosk"
                " FROM sessions s JOIN users u ON u.username = s.username"
                " WHERE s.token_sha256 = ?",
                [digest],
            ).fetchone()
        now = self._clock()
        if row is None or row[3] <= now or row[4] <= now - self._idle_seconds:
            return None
        if now - row[4] >= TOUCH_SECONDS:
            with self._database.write() as db:
                db.execute(
                    "UPDATE sessions SET last_seen = ? WHERE token_sha256 = ?", [now, digest]
                )
        return Session(
            username=row[0],
            role=Role(row[1]),
            csrf_token=row[2],
            expires_at=row[3],
            kiosk=bool(row[5]),
        )

    def end_session(self, token: str) -> None:
        """Sign out: the session ends and the sign-out is audited."""
        digest = _token_digest(token)
        with self._database.write() as db:
            row = db.execute(
                "SELECT username FROM sessions WHERE token_sha256 = ?", [digest]
            ).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM sessions WHERE token_sha256 = ?", [digest])
            self._audit.record(row[0], "auth.logout", f"user:{row[0]}", db=db)

    def _end_sessions(
        self, db: sqlite_utils.Database, username: str, keep_session: str | None
    ) -> int:
        keep = _token_digest(keep_session) if keep_session else ""
        cursor = db.execute(
            "DELETE FROM sessions WHERE username = ? AND token_sha256 != ?", [username, keep]
        )
        return int(cursor.rowcount)
