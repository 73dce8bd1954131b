"""The append-only audit log: who looked at or exported personal data, and when.

Rows are never updated or deleted: there is no API for it and SQLite triggers refuse it, so a
mistake in another area cannot rewrite history. Details name records by id only; personal data
(names, ID numbers, phone numbers) never goes into an audit row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from agent.errors import ValidationError
from agent.store.database import Database, Migration

AREA = "audit"
MAX_PAGE = 1000
_MAX_TEXT = 2000
# A detail may list the record ids an export took (as ranges); callers that could exceed this
# continue on further entries rather than lose ids to truncation.
MAX_DETAIL = 16_000


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str  # ISO 8601, UTC
    actor: str
    action: str
    subject: str
    detail: str


def _create_audit_log(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE audit_log ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
        " subject TEXT NOT NULL, detail TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX audit_log_actor ON audit_log (actor, id)")
    db.execute("CREATE INDEX audit_log_action ON audit_log (action, id)")
    db.execute(
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
        " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
        " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )


MIGRATIONS = (Migration(1, "append-only audit log", _create_audit_log),)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._database = database
        self._clock = clock
        database.migrate(AREA, MIGRATIONS)

    def record(
        self,
        actor: str,
        action: str,
        subject: str,
        detail: str = "",
        *,
        db: sqlite_utils.Database | None = None,
    ) -> None:
        """Append one entry; with ``db`` it joins the caller's open write transaction, so the
        entry exists exactly when the audited operation commits."""
        for field, value in (("actor", actor), ("action", action)):
            if not value.strip():
                raise ValidationError(field, f"{field}.required")
        row = {
            "at": self._clock().astimezone(UTC).isoformat(timespec="milliseconds"),
            "actor": actor[:_MAX_TEXT],
            "action": action[:_MAX_TEXT],
            "subject": subject[:_MAX_TEXT],
            "detail": detail[:MAX_DETAIL],
        }
        if db is not None:
            _insert(db, row)
            return
        with self._database.write() as own:
            _insert(own, row)

    def count_recent(
        self,
        actor: str,
        action: str,
        window: timedelta,
        *,
        db: sqlite_utils.Database | None = None,
    ) -> tuple[int, datetime | None]:
        """How many ``action`` entries ``actor`` has within ``window`` of now, and when the
        oldest of them was written. With ``db`` it reads inside the caller's transaction, so a
        limit checked on the count and the entry that follows are one atomic step."""
        since = (self._clock().astimezone(UTC) - window).isoformat(timespec="milliseconds")
        sql = "SELECT COUNT(*), MIN(at) FROM audit_log WHERE actor = ? AND action = ? AND at >= ?"
        params = [actor, action, since]
        if db is not None:
            row = db.execute(sql, params).fetchone()
        else:
            with self._database.read() as own:
                row = own.execute(sql, params).fetchone()
        count, oldest = int(row[0]), row[1]
        return count, datetime.fromisoformat(oldest) if oldest else None

    def entries(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        actor: str | None = None,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if actor is not None:
            clauses.append("actor = ?")
            params.append(actor)
        if action is not None:
            clauses.append("action = ?")
            params.append(action)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        params += [max(1, min(limit, MAX_PAGE)), max(0, offset)]
        with self._database.read() as db:
            rows = db.execute(
                "SELECT id, at, actor, action, subject, detail FROM audit_log "  # noqa: S608
                f"{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                params,
            ).fetchall()
        return [AuditEntry(*row) for row in rows]


def _insert(db: sqlite_utils.Database, row: dict[str, str]) -> None:
    db.execute(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
        [row["at"], row["actor"], row["action"], row["subject"], row["detail"]],
    )


def id_ranges(ids: Iterable[int]) -> str:
    """Record ids as ascending ranges, ``3-17,20``: an export's audit entry says whose records
    left without listing thousands of numbers one by one."""
    return ",".join(_ranges(ids))


def id_range_chunks(ids: Iterable[int], width: int) -> list[str]:
    """``id_ranges`` cut at commas into pieces of at most ``width`` characters (at least one
    piece, empty for no ids), for details that must fit ``MAX_DETAIL``."""
    chunks: list[str] = []
    current = ""
    for part in _ranges(ids):
        candidate = f"{current},{part}" if current else part
        if current and len(candidate) > width:
            chunks.append(current)
            candidate = part
        current = candidate
    chunks.append(current)
    return chunks


def _ranges(ids: Iterable[int]) -> list[str]:
    parts: list[str] = []
    start = previous = None
    for value in sorted(set(ids)):
        if previous is not None and value == previous + 1:
            previous = value
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = value
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}-{previous}")
    return parts
