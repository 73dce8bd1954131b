"""The feedback tables: the notes, the back-off of wrong codes per client, the code key."""

from __future__ import annotations

import sqlite_utils

from agent.store.database import Migration

AREA = "feedback"


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE feedback ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, code_digest TEXT NOT NULL UNIQUE,"
        " category TEXT NOT NULL, text TEXT NOT NULL, anonymous INTEGER NOT NULL,"
        " name TEXT NOT NULL, phone_sealed TEXT NOT NULL, phone_masked TEXT NOT NULL,"
        " channel TEXT NOT NULL, submitted_by TEXT NOT NULL, state TEXT NOT NULL,"
        " created_at TEXT NOT NULL, reply TEXT NOT NULL DEFAULT '',"
        " replied_by TEXT NOT NULL DEFAULT '', replied_at TEXT)"
    )
    db.execute("CREATE INDEX feedback_state ON feedback (state, category, id)")
    db.execute("CREATE INDEX feedback_replied ON feedback (replied_at)")
    db.execute(
        "CREATE TABLE feedback_backoff ("
        " address_key TEXT PRIMARY KEY, failures INTEGER NOT NULL,"
        " last_attempt REAL NOT NULL, paused_until REAL)"
    )
    db.execute("CREATE INDEX feedback_backoff_age ON feedback_backoff (last_attempt)")
    db.execute(
        "CREATE TABLE feedback_key (id INTEGER PRIMARY KEY CHECK (id = 1), key BLOB NOT NULL)"
    )
    db.execute("INSERT INTO feedback_key (id, key) VALUES (1, randomblob(32))")


MIGRATIONS = (Migration(1, "feedback, wrong-code back-off and the code key", _create_tables),)
