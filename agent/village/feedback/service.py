"""The feedback service: villagers leave feedback, staff answer, the code reads the answer.

Who may do what:
- feedback is left on the kiosk's own screen (anyone, anonymous) or on a phone signed in with
  a family account; anywhere else it is refused;
- staff and administrators list, filter, read and answer it; each answer is audited;
- the reply is read with the code alone (kiosk screen or family phone). Wrong codes are counted
  per client address (kept as a keyed digest) *before* the code is checked, in a transaction of
  their own, like family invite codes: the ``code_max_failures``-th wrong code pauses that
  address for ``pause_minutes``; a right code gives one back.

What is kept: a phone number only sealed in the vault, with its masked form beside it; the code
only as a keyed digest (HMAC with a random key kept in the database), never in a log or audit
entry. Answered feedback is deleted ``answered_retention_days`` after the answer (the villager
has had time to read it, and a note about neighbours should not outlive its purpose);
unanswered feedback is kept until it is answered, but at most ``unanswered_retention_days``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field

from agent.accounts import Role
from agent.audit import AuditLog
from agent.errors import NotAllowedError, RecordNotFoundError, ValidationError
from agent.privacy import Vault, mask_phone
from agent.store.database import Database
from agent.village.feedback.records import (
    CODE_ALPHABET,
    CODE_LENGTH,
    MAX_REPLY,
    Actor,
    Category,
    Feedback,
    FeedbackInput,
    ReplyView,
    State,
    Submitted,
    normalize_code,
)
from agent.village.feedback.schema import AREA, MIGRATIONS
from agent.village.service import ServiceParts

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
STAFF = frozenset({Role.STAFF, Role.ADMIN})
LIST_LIMIT = 500
MAX_BACKOFF_ROWS = 10_000


class FeedbackSettings(BaseModel):
    """``[services.feedback]`` in the kiosk's config."""

    model_config = ConfigDict(extra="forbid")

    answered_retention_days: int = Field(default=90, ge=1, le=3650)
    unanswered_retention_days: int = Field(default=365, ge=30, le=3650)
    code_max_failures: int = Field(default=10, ge=3, le=100)
    pause_minutes: float = Field(default=15.0, gt=0, le=1440)


class CodePausedError(ValidationError):
    """Too many wrong codes from one client: answer 429 with ``retry_after_seconds``."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("code", "feedback.code_paused")
        self.retry_after_seconds = retry_after_seconds


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _moment(text: Any) -> datetime | None:
    return datetime.fromisoformat(str(text)) if text else None


class FeedbackService:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        audit: AuditLog,
        *,
        settings: FeedbackSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._database = database
        self._vault = vault
        self._audit = audit
        self._settings = settings or FeedbackSettings()
        self._clock = clock
        self._key = b""

    # -- the runtime's side --------------------------------------------------------------------

    def migrate(self) -> None:
        self._database.migrate(AREA, MIGRATIONS)
        with self._database.read() as db:
            self._key = bytes(db.execute("SELECT key FROM feedback_key WHERE id = 1").fetchone()[0])

    def tick(self) -> None:
        """Replies have no deadline the kiosk enforces."""

    def purge_expired(self) -> int:
        now = self._clock()
        answered = _stamp(now - timedelta(days=self._settings.answered_retention_days))
        unanswered = _stamp(now - timedelta(days=self._settings.unanswered_retention_days))
        with self._database.write() as db:
            cursor = db.execute(
                "DELETE FROM feedback WHERE (state = ? AND replied_at <= ?)"
                " OR (state = ? AND created_at <= ?)",
                [State.ANSWERED.value, answered, State.NEW.value, unanswered],
            )
            purged = max(0, cursor.rowcount)
            db.execute(
                "DELETE FROM feedback_backoff WHERE last_attempt <= ?"
                " AND COALESCE(paused_until, 0) <= ?",
                [now.timestamp() - self._pause_seconds, now.timestamp()],
            )
            if purged:
                self._audit.record(
                    SYSTEM_ACTOR, "feedback.purge", "feedback", f"rows={purged}", db=db
                )
        if purged:
            log.info("purged %d feedback notes past retention", purged)
        return purged

    # -- villagers -----------------------------------------------------------------------------

    def submit(self, feedback: FeedbackInput, *, actor: Actor) -> Submitted:
        """Keep a feedback; returns it with its code (shown once)."""
        self._require_villager(actor)
        checked = feedback.checked()
        now = self._clock()
        channel = "kiosk" if actor.at_kiosk else "phone"
        with self._database.write() as db:
            code, digest = self._new_code(db)
            inserted = (
                db.table("feedback")
                .insert(
                    {
                        "code_digest": digest,
                        "category": checked.category,
                        "text": checked.text,
                        "anonymous": int(checked.anonymous),
                        "name": checked.name,
                        "phone_sealed": self._vault.encrypt(checked.phone) if checked.phone else "",
                        "phone_masked": mask_phone(checked.phone) if checked.phone else "",
                        "channel": channel,
                        "submitted_by": actor.username,
                        "state": State.NEW.value,
                        "created_at": _stamp(now),
                    }
                )
                .last_rowid
            )
            assert inserted is not None
            feedback_id = int(inserted)
            self._audit.record(
                actor.username, "feedback.submit", f"feedback:{feedback_id}", channel, db=db
            )
            record = self._load(db, feedback_id)
        return Submitted(record, code)

    def read_reply(self, code: str, *, actor: Actor, address: str) -> ReplyView:
        """The feedback a code belongs to, with its reply once there is one.

        Raises ValidationError ``feedback.code_format``/``feedback.code_unknown`` or
        CodePausedError; a well-formed wrong code counts against ``address``.
        """
        self._require_villager(actor)
        normalized = normalize_code(code)
        address_key = self._digest("address", address)
        self._count(address_key)
        with self._database.write() as db:
            row = db.execute(
                "SELECT category, text, state, created_at, reply, replied_at FROM feedback"
                " WHERE code_digest = ?",
                [self._digest("code", normalized)],
            ).fetchone()
            if row is None:
                raise ValidationError("code", "feedback.code_unknown")
            db.execute(
                "UPDATE feedback_backoff SET failures = MAX(failures - 1, 0)"
                " WHERE address_key = ? AND paused_until IS NULL",
                [address_key],
            )
        created = _moment(row[3])
        assert created is not None
        return ReplyView(
            Category(row[0]), str(row[1]), State(row[2]), created, str(row[4]), _moment(row[5])
        )

    # -- staff ---------------------------------------------------------------------------------

    def list(
        self, *, actor: Actor, category: Category | None = None, state: State | None = None
    ) -> list[Feedback]:
        """Unanswered first, then newest first."""
        self._require_staff(actor)
        where, params = [], []
        if category is not None:
            where.append("category = ?")
            params.append(category.value)
        if state is not None:
            where.append("state = ?")
            params.append(state.value)
        sql = "SELECT id FROM feedback"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY state = 'answered', id DESC LIMIT {LIST_LIMIT}"
        with self._database.read() as db:
            ids = [int(r[0]) for r in db.execute(sql, params).fetchall()]
            return [self._load(db, i) for i in ids]

    def get(self, feedback_id: int, *, actor: Actor) -> Feedback:
        self._require_staff(actor)
        with self._database.read() as db:
            return self._load(db, feedback_id)

    def reply(self, feedback_id: int, text: str, *, actor: Actor) -> Feedback:
        """Answer (or correct the answer to) a feedback; audited in the same transaction."""
        self._require_staff(actor)
        reply = text.strip()
        if not reply:
            raise ValidationError("reply", "feedback.reply_required")
        if len(reply) > MAX_REPLY:
            raise ValidationError("reply", "feedback.reply_too_long")
        now = self._clock()
        with self._database.write() as db:
            previous = self._load(db, feedback_id)
            db.execute(
                "UPDATE feedback SET reply = ?, replied_by = ?, replied_at = ?, state = ?"
                " WHERE id = ?",
                [reply, actor.username, _stamp(now), State.ANSWERED.value, feedback_id],
            )
            action = "feedback.reply_edit" if previous.state is State.ANSWERED else "feedback.reply"
            self._audit.record(actor.username, action, f"feedback:{feedback_id}", db=db)
            return self._load(db, feedback_id)

    # -- internals -----------------------------------------------------------------------------

    @property
    def _pause_seconds(self) -> float:
        return self._settings.pause_minutes * 60.0

    @staticmethod
    def welcomes(actor: Actor) -> bool:
        """Whether ``actor`` may leave feedback and read replies here: the kiosk's own
        screen, or a phone signed in with a family account."""
        return actor.at_kiosk or actor.role is Role.FAMILY

    def _require_villager(self, actor: Actor) -> None:
        if not self.welcomes(actor):
            raise NotAllowedError("feedback.not_here")

    @staticmethod
    def _require_staff(actor: Actor) -> None:
        if actor.role not in STAFF:
            raise NotAllowedError("feedback.not_staff")

    def _digest(self, kind: str, value: str) -> str:
        message = f"{kind}\x00{value}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _new_code(self, db: sqlite_utils.Database) -> tuple[str, str]:
        while True:
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            digest = self._digest("code", code)
            if not db.execute("SELECT 1 FROM feedback WHERE code_digest = ?", [digest]).fetchone():
                return code, digest

    def _count(self, address_key: str) -> None:
        """Count one attempt before the code is checked, committed on its own so a wrong code
        stays counted; raises CodePausedError while the address is paused."""
        now = self._clock().timestamp()
        with self._database.write() as db:
            db.execute(
                "DELETE FROM feedback_backoff WHERE last_attempt <= ?"
                " AND COALESCE(paused_until, 0) <= ?",
                [now - self._pause_seconds, now],
            )
            row = db.execute(
                "SELECT failures, paused_until FROM feedback_backoff WHERE address_key = ?",
                [address_key],
            ).fetchone()
            if row is not None and row[1] is not None and row[1] > now:
                raise CodePausedError(max(1, int(row[1] - now) + 1))
            failures = 1 if row is None or row[1] is not None else int(row[0]) + 1
            paused = (
                now + self._pause_seconds if failures >= self._settings.code_max_failures else None
            )
            db.execute(
                "INSERT INTO feedback_backoff (address_key, failures, last_attempt, paused_until)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (address_key) DO UPDATE SET"
                " failures = excluded.failures, last_attempt = excluded.last_attempt,"
                " paused_until = excluded.paused_until",
                [address_key, failures, now, paused],
            )
            if row is None:
                count = int(db.execute("SELECT COUNT(*) FROM feedback_backoff").fetchone()[0])
                if count > MAX_BACKOFF_ROWS:
                    db.execute(
                        "DELETE FROM feedback_backoff WHERE rowid IN (SELECT rowid FROM"
                        " feedback_backoff ORDER BY last_attempt LIMIT ?)",
                        [count - MAX_BACKOFF_ROWS],
                    )

    @staticmethod
    def _load(db: sqlite_utils.Database, feedback_id: int) -> Feedback:
        row = db.execute(
            "SELECT id, category, text, anonymous, name, phone_masked, channel, state,"
            " created_at, reply, replied_by, replied_at FROM feedback WHERE id = ?",
            [feedback_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("feedback_id", "feedback.not_found")
        created = _moment(row[8])
        assert created is not None
        return Feedback(
            id=int(row[0]),
            category=Category(row[1]),
            text=str(row[2]),
            anonymous=bool(row[3]),
            name=str(row[4]),
            phone=str(row[5]),
            channel=str(row[6]),
            state=State(row[7]),
            created_at=created,
            reply=str(row[9]),
            replied_by=str(row[10]),
            replied_at=_moment(row[11]),
        )


def build(parts: ServiceParts) -> FeedbackService:
    return FeedbackService(
        parts.database,
        parts.vault,
        parts.audit,
        settings=parts.settings(AREA, FeedbackSettings),
        clock=parts.clock,
    )
