"""The care service's tables."""

from __future__ import annotations

import sqlite_utils

from agent.store.database import Migration


def _create_tables(db: sqlite_utils.Database) -> None:
    # The name is kept only inside the vault token (``personal``): a stolen database file
    # must not list which children and elders live without their family. A deleted account
    # leaves the person in care with no guardian (or carer) until staff choose another.
    db.execute(
        "CREATE TABLE care_people ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, ref TEXT NOT NULL UNIQUE,"
        " personal TEXT NOT NULL, kind TEXT NOT NULL,"
        " guardian TEXT REFERENCES users (username) ON DELETE SET NULL,"
        " carer TEXT REFERENCES users (username) ON DELETE SET NULL,"
        " deadline TEXT NOT NULL, pin_hash TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX care_people_guardian ON care_people (guardian)")
    # ``day`` is the kiosk's local date, ``at`` UTC; ``note`` is a vault token for a visit's
    # note (what a carer saw at home) and empty for a kiosk check-in.
    db.execute(
        "CREATE TABLE care_checkins ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " person_id INTEGER NOT NULL REFERENCES care_people (id) ON DELETE CASCADE,"
        " day TEXT NOT NULL, at TEXT NOT NULL, source TEXT NOT NULL, actor TEXT NOT NULL,"
        " note TEXT NOT NULL DEFAULT '')"
    )
    db.execute("CREATE INDEX care_checkins_day ON care_checkins (person_id, day)")
    db.execute("CREATE INDEX care_checkins_age ON care_checkins (day)")
    db.execute(
        "CREATE TABLE care_alerts ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " person_id INTEGER NOT NULL REFERENCES care_people (id) ON DELETE CASCADE,"
        " day TEXT NOT NULL, deadline_at TEXT NOT NULL, raised_at TEXT NOT NULL,"
        " UNIQUE (person_id, day))"
    )
    db.execute("CREATE INDEX care_alerts_age ON care_alerts (day)")
    # Wrong PINs per person (the kiosk's screen is the only client, so no address is kept).
    db.execute(
        "CREATE TABLE care_pin_backoff ("
        " person_id INTEGER PRIMARY KEY REFERENCES care_people (id) ON DELETE CASCADE,"
        " failures INTEGER NOT NULL, last_attempt TEXT NOT NULL, paused_until TEXT)"
    )


MIGRATIONS = (Migration(1, "people in care, check-ins, alerts and PIN back-off", _create_tables),)
