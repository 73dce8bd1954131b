"""The patrol tables. Times are UTC ISO 8601 text of one fixed format, so text order is time
order; ids are AUTOINCREMENT so an id in a report sent to the county never comes to mean
another round after a purge."""

from __future__ import annotations

import sqlite_utils

from agent.store.database import Migration

AREA = "patrol"


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE patrol_routes ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
        " cameras TEXT NOT NULL,"  # JSON list of camera ids, in walking order
        " min_look_seconds INTEGER NOT NULL, schedule TEXT NOT NULL,"
        " active INTEGER NOT NULL DEFAULT 1, created_by TEXT NOT NULL,"
        " created_at TEXT NOT NULL, schedule_from TEXT NOT NULL)"
    )
    # A round keeps its own copy of the points and the minimum look time it was walked with,
    # so a route changed later does not rewrite what was done.
    db.execute(
        "CREATE TABLE patrol_rounds ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " route_id INTEGER NOT NULL REFERENCES patrol_routes (id),"
        " officer TEXT, status TEXT NOT NULL,"
        " window_start TEXT, window_end TEXT, started_at TEXT, finished_at TEXT,"
        " min_look_seconds INTEGER NOT NULL, ended_by TEXT, recorded_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX patrol_rounds_route ON patrol_rounds (route_id, window_start)")
    db.execute("CREATE INDEX patrol_rounds_officer ON patrol_rounds (officer, status)")
    db.execute("CREATE INDEX patrol_rounds_recorded ON patrol_rounds (recorded_at)")
    # A window is reported missed once, whichever of two ticks gets there.
    db.execute(
        "CREATE UNIQUE INDEX patrol_rounds_missed_once ON patrol_rounds (route_id, window_start)"
        " WHERE status = 'missed'"
    )
    db.execute(
        "CREATE TABLE patrol_round_points ("
        " round_id INTEGER NOT NULL REFERENCES patrol_rounds (id) ON DELETE CASCADE,"
        " position INTEGER NOT NULL, camera_id TEXT NOT NULL,"
        " shown_at TEXT, completed_at TEXT, look_seconds REAL, note TEXT NOT NULL DEFAULT '',"
        " PRIMARY KEY (round_id, position))"
    )
    db.execute(
        "CREATE TABLE patrol_snapshots ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " round_id INTEGER NOT NULL REFERENCES patrol_rounds (id) ON DELETE CASCADE,"
        " position INTEGER NOT NULL, camera_id TEXT NOT NULL, taken_at TEXT NOT NULL,"
        " jpeg BLOB NOT NULL)"
    )
    db.execute("CREATE INDEX patrol_snapshots_round ON patrol_snapshots (round_id, position)")
    db.execute("CREATE INDEX patrol_snapshots_taken ON patrol_snapshots (taken_at)")


MIGRATIONS = (Migration(1, "patrol routes, rounds, points and snapshots", _create_tables),)
