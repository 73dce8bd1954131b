"""The products' table."""

from __future__ import annotations

import sqlite_utils

from agent.store.database import Migration


def _create_tables(db: sqlite_utils.Database) -> None:
    # The phone is kept only inside ``contact_sealed`` (a vault token) with its mask beside.
    db["products"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "name": str,
            "category": str,
            "price_cents": int,
            "unit": str,
            "description": str,
            "seller": str,
            "contact": str,
            "contact_sealed": str,
            "phone_masked": str,
            "photo_id": str,
            "status": str,
            "created_at": str,
            "created_by": str,
            "withdrawn_at": str,
        },
        pk="id",
        not_null={
            "name",
            "category",
            "price_cents",
            "unit",
            "description",
            "seller",
            "contact",
            "contact_sealed",
            "phone_masked",
            "photo_id",
            "status",
            "created_at",
            "created_by",
        },
        if_not_exists=True,
    )
    db["products"].create_index(["status", "category", "price_cents"], if_not_exists=True)  # type: ignore[union-attr]


MIGRATIONS = (Migration(1, "products: listings with a sealed contact phone", _create_tables),)
