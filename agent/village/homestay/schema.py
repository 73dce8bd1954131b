"""The homestay tables and their migrations (the ones that need no key; the service adds the
ones that re-seal records with it)."""

from __future__ import annotations

import sqlite_utils

from agent.store.database import Migration

AREA = "homestay"


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE homestays ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, address TEXT NOT NULL,"
        " rooms INTEGER NOT NULL, host_username TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX homestays_host ON homestays (host_username)")
    # AUTOINCREMENT: a purged guest's id is never reused, so an id in an old police report
    # cannot come to mean somebody else.
    db.execute(
        "CREATE TABLE guests ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " homestay_id INTEGER NOT NULL REFERENCES homestays (id),"
        " personal TEXT NOT NULL, name_index TEXT NOT NULL, id_number_index TEXT NOT NULL,"
        " name_masked TEXT NOT NULL, id_number_masked TEXT NOT NULL,"
        " phone_masked TEXT NOT NULL, address_masked TEXT NOT NULL,"
        " sex TEXT NOT NULL, ethnicity TEXT NOT NULL, birth_date TEXT NOT NULL,"
        " id_type TEXT NOT NULL, nationality TEXT NOT NULL, foreign_guest INTEGER NOT NULL,"
        " room TEXT NOT NULL, check_in TEXT NOT NULL, check_in_date TEXT NOT NULL,"
        " expected_check_out TEXT NOT NULL, checked_out_at TEXT,"
        " registered_by TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX guests_id_number ON guests (id_number_index)")
    db.execute("CREATE INDEX guests_name ON guests (name_index)")
    db.execute("CREATE INDEX guests_homestay ON guests (homestay_id, check_in_date)")
    db.execute("CREATE INDEX guests_check_in_date ON guests (check_in_date)")
    db.execute("CREATE INDEX guests_checked_out ON guests (checked_out_at)")
    db.execute(
        "CREATE TABLE guest_companions ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " guest_id INTEGER NOT NULL REFERENCES guests (id) ON DELETE CASCADE,"
        " position INTEGER NOT NULL, personal TEXT NOT NULL,"
        " name_index TEXT NOT NULL, id_number_index TEXT NOT NULL,"
        " name_masked TEXT NOT NULL, id_number_masked TEXT NOT NULL,"
        " id_type TEXT NOT NULL, birth_date TEXT NOT NULL, nationality TEXT NOT NULL,"
        " foreign_guest INTEGER NOT NULL)"
    )
    db.execute("CREATE INDEX guest_companions_guest ON guest_companions (guest_id, position)")
    db.execute("CREATE INDEX guest_companions_id_number ON guest_companions (id_number_index)")
    db.execute("CREATE INDEX guest_companions_name ON guest_companions (name_index)")


def _create_key_check(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE homestay_vault_check (id INTEGER PRIMARY KEY, fingerprint TEXT)")


# Migrations that need no key; the service adds the one that re-seals records (see
# HomestayService._migrations).
MIGRATIONS = (
    Migration(1, "homestays, guests and companions", _create_tables),
    Migration(2, "fingerprint of the vault key the guest data is sealed with", _create_key_check),
)
SEAL_BIRTH_DATES = 3

GUEST_COLUMNS = (
    "g.id, g.homestay_id, h.name, g.personal, g.name_masked, g.id_number_masked, g.phone_masked,"
    " g.address_masked, g.sex, g.ethnicity, g.age_band, g.id_type, g.nationality,"
    " g.foreign_guest, g.room, g.check_in, g.expected_check_out, g.checked_out_at,"
    " g.registered_by"
)
COMPANION_COLUMNS = (
    "guest_id, personal, name_masked, id_number_masked, id_type, age_band, nationality,"
    " foreign_guest"
)


def create_tracking(db: sqlite_utils.Database) -> None:
    """Which outbox message carries each registration report (its delivery shows as the
    message leaving the outbox), and the one-time tokens that make a registration form's
    second submit return the first result instead of a second guest."""
    db.table("guest_reports").create(
        {"id": int, "guest_id": int, "action": str, "message_id": str, "created_at": str},
        pk="id",
        not_null={"guest_id", "action", "created_at"},
        if_not_exists=True,
    )
    db.table("guest_reports").create_index(["guest_id"], if_not_exists=True)
    db.table("homestay_form_tokens").create(
        {"token": str, "host_username": str, "guest_id": int, "created_at": str},
        pk="token",
        not_null={"host_username", "guest_id", "created_at"},
        if_not_exists=True,
    )
    db.table("homestay_form_tokens").create_index(["created_at"], if_not_exists=True)


TRACKING = Migration(4, "report delivery tracking and one-time form tokens", create_tracking)


def create_name_pairs(db: sqlite_utils.Database) -> None:
    """Blind indexes of each person's name pairs (see HomestayService.query)."""
    db.table("guest_name_pairs").create(
        {"guest_id": int, "person": int, "pair_index": str},
        not_null={"guest_id", "person", "pair_index"},
        if_not_exists=True,
    )
    db.table("guest_name_pairs").create_index(["pair_index"], if_not_exists=True)
    db.table("guest_name_pairs").create_index(["guest_id"], if_not_exists=True)


NAME_PAIRS = 5
