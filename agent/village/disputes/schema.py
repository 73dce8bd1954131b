"""The disputes tables. Parties sit in a table of their own: a name and phone number sealed in
one vault token per party, their masked forms beside it for lists."""

from __future__ import annotations

import sqlite_utils

from agent.store.database import Migration

AREA = "disputes"


def _create_tables(db: sqlite_utils.Database) -> None:
    # AUTOINCREMENT: a purged dispute's id never comes to mean another one.
    db.execute(
        "CREATE TABLE disputes ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, reference TEXT NOT NULL UNIQUE,"
        " category TEXT NOT NULL, description TEXT NOT NULL, state TEXT NOT NULL,"
        " mediator TEXT NOT NULL DEFAULT '', department TEXT NOT NULL DEFAULT '',"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, closed_at TEXT)"
    )
    db.table("disputes").create_index(["state", "updated_at"])
    db.table("disputes").create_index(["closed_at"])
    db.table("dispute_parties").create(
        {
            "id": int,
            "dispute_id": int,
            "position": int,
            "sealed": str,
            "name_masked": str,
            "phone_masked": str,
        },
        pk="id",
        foreign_keys=[("dispute_id", "disputes", "id")],
        not_null={"dispute_id", "position", "sealed", "name_masked", "phone_masked"},
    )
    db.table("dispute_parties").create_index(["dispute_id", "position"], unique=True)
    db.table("dispute_changes").create(
        {
            "id": int,
            "dispute_id": int,
            "from_state": str,
            "to_state": str,
            "actor": str,
            "at": str,
            "department": str,
            "note": str,
        },
        pk="id",
        foreign_keys=[("dispute_id", "disputes", "id")],
        not_null={"dispute_id", "to_state", "actor", "at", "department", "note"},
    )
    db.table("dispute_changes").create_index(["dispute_id", "id"])
    # The statistics read outcomes by time.
    db.table("dispute_changes").create_index(["at", "to_state"])


MIGRATIONS = (Migration(1, "disputes, their parties and history", _create_tables),)
