"""The agent's one SQLite database (sqlite-utils, WAL) and its per-area schema migrations.

Each area (events, outbox, accounts, homestays …) owns its tables and registers its own ordered
list of migrations under its own name, so areas evolve independently. Every write goes through
``Database.write`` which serialises writers on one lock: SQLite allows one writer at a time and
the capture threads, the MQTT thread and the event loop all write.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from agent.errors import StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sqlite_utils.Database], None]


class Database:
    """A thread-safe handle on the kiosk database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # SQLite gives the -wal and -shm files the mode of the database file: made 0600
            # here, all three stay private whatever the caller's umask (the CLI's, say).
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if os.fstat(descriptor).st_mode & 0o077:  # made by an older version
                    os.fchmod(descriptor, 0o600)
            finally:
                os.close(descriptor)
            connection = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None, timeout=30
            )
            connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process crash; a power cut may lose the last
            # transactions but never corrupts the file.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            # Purged guests and delivered reports must not linger in free pages of the file.
            connection.execute("PRAGMA secure_delete=ON")
            connection.execute("PRAGMA busy_timeout=30000")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        self._lock = threading.RLock()
        self.db = sqlite_utils.Database(connection)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " area TEXT NOT NULL, version INTEGER NOT NULL, description TEXT NOT NULL,"
            " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
            " PRIMARY KEY (area, version))"
        )

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction; commits on success, rolls back on any exception."""
        with self._lock:
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite_utils.Database]:
        """Reads share the writer's connection, so they take the same lock."""
        with self._lock:
            yield self.db

    def migrate(self, area: str, migrations: Sequence[Migration]) -> int:
        """Apply the migrations of ``area`` not applied yet; returns the schema version."""
        versions = [m.version for m in migrations]
        if versions != sorted(set(versions)):
            raise StoreError(f"migrations of {area} must have strictly increasing versions")
        with self.write() as db:
            row = db.execute(
                "SELECT MAX(version) FROM schema_migrations WHERE area = ?", [area]
            ).fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            for migration in migrations:
                if migration.version <= current:
                    continue
                log.info(
                    "applying %s migration %d: %s", area, migration.version, migration.description
                )
                migration.apply(db)
                db.execute(
                    "INSERT INTO schema_migrations (area, version, description) VALUES (?, ?, ?)",
                    [area, migration.version, migration.description],
                )
                current = migration.version
        return current

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()
