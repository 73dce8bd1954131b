"""Tourism's tables: attractions with their photos, room types and booking requests keyed by
the homestay service's homestay id (that service owns the homestays)."""

from __future__ import annotations

import sqlite_utils

from agent.store.database import Migration


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS attractions ("
        " id INTEGER PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,"
        " opening_hours TEXT NOT NULL, directions TEXT NOT NULL, created_at TEXT NOT NULL,"
        " created_by TEXT NOT NULL, updated_at TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS attraction_photos ("
        " attraction_id INTEGER NOT NULL REFERENCES attractions(id) ON DELETE CASCADE,"
        " photo_id TEXT NOT NULL UNIQUE, position INTEGER NOT NULL,"
        " PRIMARY KEY (attraction_id, position))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS tourism_rooms ("
        " id INTEGER PRIMARY KEY, homestay_id INTEGER NOT NULL, name TEXT NOT NULL,"
        " price_cents INTEGER NOT NULL, count INTEGER NOT NULL, max_guests INTEGER NOT NULL,"
        " created_at TEXT NOT NULL, UNIQUE (homestay_id, name))"
    )
    # The guest's name and phone only inside ``personal`` (a vault token), masks beside it.
    db.execute(
        "CREATE TABLE IF NOT EXISTS tourism_bookings ("
        " id INTEGER PRIMARY KEY, reference TEXT NOT NULL UNIQUE,"
        " homestay_id INTEGER NOT NULL,"
        " room_id INTEGER NOT NULL REFERENCES tourism_rooms(id),"
        " check_in TEXT NOT NULL, check_out TEXT NOT NULL, guests INTEGER NOT NULL,"
        " personal TEXT NOT NULL, name_masked TEXT NOT NULL, phone_masked TEXT NOT NULL,"
        " status TEXT NOT NULL, created_at TEXT NOT NULL, decided_at TEXT, decided_by TEXT)"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS tourism_bookings_room"
        " ON tourism_bookings (room_id, status, check_in)"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS tourism_bookings_homestay"
        " ON tourism_bookings (homestay_id, status)"
    )


MIGRATIONS = (
    Migration(1, "tourism: attractions, room types and booking requests", _create_tables),
)
