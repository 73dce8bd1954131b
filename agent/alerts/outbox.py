"""The durable outbox: every message for the command centre waits here until the broker acks it.

``enqueue`` runs inside the caller's open write transaction, so an alert is stored atomically
with the record it belongs to. Rows leave only when the broker acknowledged them (``delete``),
when the outbox is full (oldest snapshots first, then the oldest alerts and reports), or, for
reports, when they are older than the guest data may be kept (``expire``); every such drop is
counted in ``outbox_drops`` and logged.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Protocol

import sqlite_utils

from agent.store.database import Database, Migration

log = logging.getLogger(__name__)

AREA = "outbox"
ALERT_STREAM = "alerts"
_DELETE_CHUNK = 500


class MessageKind(StrEnum):
    ALERT = "alert"
    REPORT = "report"
    SNAPSHOT = "snapshot"


class Seal(IntEnum):
    """How a row's payload is protected; stored in the ``sealed`` column."""

    NONE = 0  # as published (events, snapshots; reports written before sealing existed)
    VAULT = 1  # sealed with the kiosk's own vault key while it waits; re-sealed on its way out
    CENTRE = 2  # sealed to the command centre's public key at enqueue: published as it is


@dataclass(frozen=True)
class OutboxLimits:
    max_rows: int
    max_bytes: int


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    message_id: str
    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str
    seal: Seal = Seal.NONE
    created_at: float = 0.0


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_age_seconds: float | None
    dropped: dict[str, int]


def _create_tables(db: sqlite_utils.Database) -> None:
    # One statement at a time: executescript would commit the migration's transaction.
    for statement in (
        "CREATE TABLE outbox ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " message_id TEXT NOT NULL UNIQUE,"
        " topic TEXT NOT NULL,"
        " payload BLOB NOT NULL,"
        " qos INTEGER NOT NULL,"
        " retain INTEGER NOT NULL,"
        " kind TEXT NOT NULL,"
        " size INTEGER NOT NULL,"
        " created_at REAL NOT NULL)",
        "CREATE INDEX outbox_kind_seq ON outbox (kind, seq)",
        # Counting 200k rows on every enqueue would be slow; triggers keep running totals.
        "CREATE TABLE outbox_totals ("
        " id INTEGER PRIMARY KEY CHECK (id = 1), rows INTEGER NOT NULL, bytes INTEGER NOT NULL)",
        "INSERT INTO outbox_totals (id, rows, bytes) VALUES (1, 0, 0)",
        "CREATE TRIGGER outbox_totals_insert AFTER INSERT ON outbox BEGIN"
        " UPDATE outbox_totals SET rows = rows + 1, bytes = bytes + NEW.size WHERE id = 1; END",
        "CREATE TRIGGER outbox_totals_delete AFTER DELETE ON outbox BEGIN"
        " UPDATE outbox_totals SET rows = rows - 1, bytes = bytes - OLD.size WHERE id = 1; END",
        "CREATE TABLE outbox_drops ("
        " kind TEXT PRIMARY KEY, count INTEGER NOT NULL, last_at REAL NOT NULL)",
        # Per-kiosk sequence numbers let the command centre see gaps (messages dropped when full).
        "CREATE TABLE outbox_sequence (stream TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    ):
        db.execute(statement)


def _add_sealed_flag(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE outbox ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0")


MIGRATIONS = (
    Migration(1, "outbox with totals, drop counters and sequences", _create_tables),
    Migration(2, "payloads with personal data sealed at rest", _add_sealed_flag),
)


class PayloadSealer(Protocol):
    """Encrypts payloads that carry personal data while they wait in the outbox."""

    def seal(self, data: bytes) -> bytes: ...

    def unseal(self, token: bytes) -> bytes: ...


def migrate(database: Database) -> int:
    return database.migrate(AREA, MIGRATIONS)


def new_message_id() -> str:
    return uuid.uuid4().hex


def next_sequence(db: sqlite_utils.Database, stream: str = ALERT_STREAM) -> int:
    """The next number of ``stream``; call inside the write transaction that uses it."""
    db.execute(
        "INSERT INTO outbox_sequence (stream, value) VALUES (?, 1)"
        " ON CONFLICT (stream) DO UPDATE SET value = value + 1",
        [stream],
    )
    row = db.execute("SELECT value FROM outbox_sequence WHERE stream = ?", [stream]).fetchone()
    return int(row[0])


def enqueue(
    db: sqlite_utils.Database,
    *,
    topic: str,
    payload: bytes,
    kind: MessageKind,
    limits: OutboxLimits,
    message_id: str | None = None,
    retain: bool = False,
    qos: int = 1,
    replace_pending: bool = False,
    seal: Seal = Seal.NONE,
    now: float | None = None,
) -> str:
    """Add one message inside the caller's write transaction; returns its message id.

    ``replace_pending`` drops older rows of the same kind and topic first: a retained topic
    (the latest snapshot) only ever shows its newest value, so older ones are dead weight.
    ``seal`` says how the caller protected the payload (the link prepares it accordingly).
    """
    message_id = message_id or new_message_id()
    if replace_pending:
        db.execute("DELETE FROM outbox WHERE kind = ? AND topic = ?", [str(kind), topic])
    db.execute(
        "INSERT INTO outbox"
        " (message_id, topic, payload, qos, retain, kind, size, created_at, sealed)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            message_id,
            topic,
            payload,
            qos,
            int(retain),
            str(kind),
            len(payload) + len(topic),
            time.time() if now is None else now,
            int(seal),
        ],
    )
    _enforce_limits(db, limits)
    return message_id


def _enforce_limits(db: sqlite_utils.Database, limits: OutboxLimits) -> None:
    while True:
        rows, size = db.execute("SELECT rows, bytes FROM outbox_totals WHERE id = 1").fetchone()
        if rows <= limits.max_rows and size <= limits.max_bytes:
            return
        victim = (
            db.execute(
                "SELECT seq, kind FROM outbox WHERE kind = ? ORDER BY seq LIMIT 1",
                [str(MessageKind.SNAPSHOT)],
            ).fetchone()
            or db.execute("SELECT seq, kind FROM outbox ORDER BY seq LIMIT 1").fetchone()
        )
        seq, kind = victim
        db.execute("DELETE FROM outbox WHERE seq = ?", [seq])
        count = _count_drops(db, kind, 1)
        # A long outage at the limit drops one row per new message: log the first and then
        # every thousandth, the exact count is in health.
        if count == 1 or count % 1000 == 0:
            log.warning(
                "outbox full (%d rows, %d bytes): dropped the oldest %s message (%d so far)",
                rows,
                size,
                kind,
                count,
            )


def _count_drops(db: sqlite_utils.Database, counter: str, dropped: int) -> int:
    """Add ``dropped`` to a drop counter; returns its new total."""
    db.execute(
        "INSERT INTO outbox_drops (kind, count, last_at) VALUES (?, ?, ?)"
        " ON CONFLICT (kind) DO UPDATE SET count = count + excluded.count,"
        " last_at = excluded.last_at",
        [counter, dropped, time.time()],
    )
    return int(db.execute("SELECT count FROM outbox_drops WHERE kind = ?", [counter]).fetchone()[0])


def expire(db: sqlite_utils.Database, kind: MessageKind, older_than: float) -> int:
    """Delete undelivered rows of ``kind`` created before ``older_than`` (epoch seconds).

    Counted under ``<kind>_expired`` in ``outbox_drops``, apart from drops of a full outbox, so
    health tells the two reasons apart. Returns how many rows went.
    """
    cursor = db.execute(
        "DELETE FROM outbox WHERE kind = ? AND created_at < ?", [str(kind), older_than]
    )
    expired = max(0, cursor.rowcount)
    if expired:
        _count_drops(db, f"{kind}_expired", expired)
    return expired


def fetch_after(db: sqlite_utils.Database, after_seq: int, limit: int) -> list[OutboxRow]:
    cursor = db.execute(
        "SELECT seq, message_id, topic, payload, qos, retain, kind, sealed, created_at"
        " FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
        [after_seq, limit],
    )
    return [
        OutboxRow(
            seq=row[0],
            message_id=row[1],
            topic=row[2],
            payload=bytes(row[3]),
            qos=int(row[4]),
            retain=bool(row[5]),
            kind=row[6],
            seal=_seal(row[7]),
            created_at=float(row[8]),
        )
        for row in cursor.fetchall()
    ]


def _seal(value: object) -> Seal:
    try:
        return Seal(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        # An unknown mark is treated as kiosk-sealed: the link then refuses to publish it as
        # it is, and a payload that may be personal never goes out in clear.
        return Seal.VAULT


def delete(db: sqlite_utils.Database, seqs: Iterable[int]) -> None:
    pending = list(seqs)
    for start in range(0, len(pending), _DELETE_CHUNK):
        chunk = pending[start : start + _DELETE_CHUNK]
        marks = ",".join("?" * len(chunk))
        db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk)  # noqa: S608


def stats(db: sqlite_utils.Database, now: float | None = None) -> OutboxStats:
    rows, size = db.execute("SELECT rows, bytes FROM outbox_totals WHERE id = 1").fetchone()
    oldest = db.execute("SELECT created_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
    now = time.time() if now is None else now
    dropped = {
        str(kind): int(count)
        for kind, count in db.execute("SELECT kind, count FROM outbox_drops").fetchall()
    }
    return OutboxStats(
        depth=int(rows),
        bytes=int(size),
        oldest_age_seconds=None if oldest is None else max(0.0, now - float(oldest[0])),
        dropped=dropped,
    )
