"""The notices table and its migrations."""

from __future__ import annotations

import sqlite_utils

from agent.store.database import Migration


def _create_notices(db: sqlite_utils.Database) -> None:
    notices = db.table("notices")
    notices.create(
        {
            "id": int,
            "title": str,
            "text": str,
            "urgency": str,
            "created_at": str,  # ISO 8601 UTC, seconds: compared as text
            "expires_at": str,
            "created_by": str,
            "source": str,
            # A remote command's request id: a command redelivered after a restart (when the
            # processor's memory of replies is gone) finds its notice instead of a second one.
            "request_id": str,
            "acknowledged_at": str,
            "acknowledged_by": str,
        },
        pk="id",
        not_null={"title", "text", "urgency", "created_at", "expires_at", "created_by", "source"},
        if_not_exists=True,
    )
    notices.create_index(["expires_at"], if_not_exists=True)
    notices.create_index(["request_id"], unique=True, if_not_exists=True)


def _add_photo(db: sqlite_utils.Database) -> None:
    db.table("notices").add_column("photo_id", str)


MIGRATIONS = (
    Migration(1, "notices for the kiosk screen", _create_notices),
    Migration(2, "an optional photo per notice", _add_photo),
)
