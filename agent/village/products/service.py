"""Local products (特产推介): village staff list a villager's produce or craft, tourists browse.

Who lists: a member of the village staff (Role.STAFF), for the villager, at any screen. A
listing is public at once: the staff member is the one who checks it with the seller, and the
audit log names who listed and who withdrew it. (Listing by the villager alone at the kiosk
screen would need a staff approval queue in front of the same public page; it is not offered.)

The seller's contact phone: a listing's contact is public by nature when the seller wants
calls, but the table is not a list of villagers' numbers. The number is stored only sealed
(vault token) with a mask beside it; it is opened for one listing at a time, on that listing's
own page, and only when the seller chose ``contact="phone"``. Lists, filters and the JSON list
carry no number; staff lists show the mask. With ``contact="committee"`` the listing says to
ask the village committee, and the number never leaves the staff.

Retention: a withdrawn listing is kept ``withdrawn_days`` (30) for questions about it, then
its row, sealed number and photo are deleted by ``purge_expired``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, BinaryIO

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field

from agent.audit import AuditLog
from agent.errors import RecordNotFoundError, ValidationError
from agent.privacy import Vault, mask_phone
from agent.store.database import Database
from agent.village.photos import PhotoLimits, PhotoStore
from agent.village.products.inputs import ProductInput, ProductQuery
from agent.village.products.records import Product
from agent.village.products.schema import MIGRATIONS
from agent.village.service import ServiceParts

log = logging.getLogger(__name__)

AREA = "products"
LISTED, WITHDRAWN = "listed", "withdrawn"
SYSTEM_ACTOR = "system"

_COLUMNS = (
    "id, name, category, price_cents, unit, description, seller, contact, contact_sealed,"
    " phone_masked, photo_id, status, created_at, created_by"
)


class ProductSettings(BaseModel):
    """``[services.products]``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    photos: PhotoLimits = PhotoLimits()
    withdrawn_days: Annotated[float, Field(ge=0, le=3650)] = 30
    max_listed: Annotated[int, Field(ge=1, le=100_000)] = 2000
    page_size: Annotated[int, Field(ge=10, le=500)] = 100


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ProductService:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        audit: AuditLog,
        photos: PhotoStore,
        *,
        settings: ProductSettings,
        clock: Callable[[], datetime],
    ) -> None:
        self._database = database
        self._vault = vault
        self._audit = audit
        self.photos = photos
        self._settings = settings
        self._clock = clock

    def migrate(self) -> None:
        self._database.migrate(AREA, MIGRATIONS)
        self.photos.migrate()

    def tick(self) -> None:
        """Listings have no deadline of their own."""

    # -- staff ---------------------------------------------------------------------------------

    def create_product(
        self, data: ProductInput, photo: BinaryIO | bytes | None, *, actor: str
    ) -> Product:
        """List a product with its photo; public at once (staff list for the villager)."""
        # The photo is checked and re-encoded before the write lock is taken: it is the slow
        # part, and a refused photo must not cost a transaction.
        prepared = self.photos.prepare(photo)
        now = self._clock()
        with self._database.write() as db:
            listed = db.execute(
                "SELECT COUNT(*) FROM products WHERE status = ?", [LISTED]
            ).fetchone()[0]
            if listed >= self._settings.max_listed:
                raise ValidationError("name", "products.too_many")
            stored = self.photos.add(db, prepared, owner=actor)
            cursor = db.execute(
                "INSERT INTO products (name, category, price_cents, unit, description, seller,"
                " contact, contact_sealed, phone_masked, photo_id, status, created_at,"
                " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [data.name, data.category, data.price_cents, data.unit, data.description,
                 data.seller, data.contact, self._seal(data.phone), mask_phone(data.phone),
                 stored.id, LISTED, _timestamp(now), actor],
            )  # fmt: skip
            product_id = int(cursor.lastrowid or 0)
            self._audit.record(actor, "product.create", f"product:{product_id}", db=db)
            product = self._load(db, product_id, listed_only=False, contact="masked")
        log.info("product %d listed by %s", product_id, actor)
        return product

    def staff_list(self) -> list[Product]:
        """Every listing, withdrawn ones included, with masked numbers (newest first)."""
        with self._database.read() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM products ORDER BY id DESC"  # noqa: S608
            ).fetchall()
        return [self._product(row, contact="masked") for row in rows]

    def withdraw(self, product_id: int, *, actor: str) -> Product:
        """Take a listing off the public pages; its data goes at the next purge after
        ``withdrawn_days``."""
        with self._database.write() as db:
            product = self._load(db, product_id, listed_only=False, contact="masked")
            if product.listed:
                db.execute(
                    "UPDATE products SET status = ?, withdrawn_at = ? WHERE id = ?",
                    [WITHDRAWN, _timestamp(self._clock()), product_id],
                )
                self._audit.record(actor, "product.withdraw", f"product:{product_id}", db=db)
            return self._load(db, product_id, listed_only=False, contact="masked")

    # -- tourists ------------------------------------------------------------------------------

    def browse(self, query: ProductQuery) -> list[Product]:
        """Listed products matching the filter, without any phone number."""
        clauses, params = ["status = ?"], [LISTED]
        if query.category:
            clauses.append("category = ?")
            params.append(query.category)
        if query.min_cents is not None:
            clauses.append("price_cents >= ?")
            params.append(str(query.min_cents))
        if query.max_cents is not None:
            clauses.append("price_cents <= ?")
            params.append(str(query.max_cents))
        if query.text:
            clauses.append(
                "(name LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\'"
                " OR seller LIKE ? ESCAPE '\\')"
            )
            params += [_like(query.text)] * 3
        with self._database.read() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM products WHERE {' AND '.join(clauses)}"  # noqa: S608
                " ORDER BY id DESC LIMIT ?",
                [*params, self._settings.page_size],
            ).fetchall()
        return [self._product(row, contact="none") for row in rows]

    def listing(self, product_id: int) -> Product:
        """One listed product for its public page: the number in full when the seller chose
        to show it (the only place it is opened)."""
        with self._database.read() as db:
            return self._load(db, product_id, listed_only=True, contact="public")

    def photo(self, photo_id: str) -> bytes:
        """The photo of a listed product (any other id: RecordNotFoundError)."""
        with self._database.read() as db:
            row = db.execute(
                "SELECT 1 FROM products WHERE photo_id = ? AND status = ?", [photo_id, LISTED]
            ).fetchone()
        if row is None:
            raise RecordNotFoundError("photo", "products.photo.not_found")
        return self.photos.read(photo_id)

    # -- retention -----------------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete listings withdrawn more than ``withdrawn_days`` ago, with their sealed number
        and photo; and photo files no record names."""
        cutoff = _timestamp(self._clock() - timedelta(days=self._settings.withdrawn_days))
        with self._database.write() as db:
            rows = db.execute(
                "SELECT id, photo_id FROM products WHERE status = ? AND withdrawn_at < ?",
                [WITHDRAWN, cutoff],
            ).fetchall()
            for product_id, photo_id in rows:
                db.execute("DELETE FROM products WHERE id = ?", [product_id])
                self.photos.remove(db, photo_id)
            if rows:
                self._audit.record(SYSTEM_ACTOR, "product.purge", "products",
                                   f"rows={len(rows)}", db=db)  # fmt: skip
        self.photos.purge_orphans()
        if rows:
            log.info("purged %d withdrawn product listings", len(rows))
        return len(rows)

    # -- internals -----------------------------------------------------------------------------

    def _seal(self, phone: str) -> str:
        return self._vault.encrypt(json.dumps({"phone": phone}))

    def _load(
        self, db: sqlite_utils.Database, product_id: int, *, listed_only: bool, contact: str
    ) -> Product:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM products WHERE id = ?",  # noqa: S608
            [product_id],
        ).fetchone()
        if row is None or (listed_only and row[11] != LISTED):
            raise RecordNotFoundError("product_id", "products.not_found")
        return self._product(row, contact=contact)

    def _product(self, row: Any, *, contact: str) -> Product:
        (product_id, name, category, price_cents, unit, description, seller, shown, sealed,
         masked, photo_id, status, created_at, created_by) = row  # fmt: skip
        phone = ""
        if contact == "masked":
            phone = masked
        elif contact == "public" and shown == "phone":
            phone = str(json.loads(self._vault.decrypt(sealed))["phone"])
        return Product(
            id=int(product_id),
            name=name,
            category=category,
            price_cents=int(price_cents),
            unit=unit,
            description=description,
            seller=seller,
            contact=shown,
            phone=phone,
            photo_id=photo_id,
            listed=status == LISTED,
            created_at=datetime.fromisoformat(created_at),
            created_by=created_by,
        )


def build(parts: ServiceParts) -> ProductService:
    settings = parts.settings(AREA, ProductSettings)
    photos = PhotoStore(
        parts.database,
        parts.config.device.data_dir / "photos",
        area=AREA,
        limits=settings.photos,
        clock=parts.clock,
    )
    return ProductService(
        parts.database, parts.vault, parts.audit, photos, settings=settings, clock=parts.clock
    )
