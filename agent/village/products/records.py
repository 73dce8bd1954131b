"""A product listing as the service hands it out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Product:
    id: int
    name: str
    category: str
    price_cents: int
    unit: str
    description: str
    seller: str
    contact: str  # "phone" or "committee"
    # The seller's number: masked (138****5678) in lists for staff, in full only on the public
    # listing of a seller who chose to show it, empty otherwise.
    phone: str
    photo_id: str
    listed: bool
    created_at: datetime
    created_by: str

    @property
    def price(self) -> str:
        """Yuan with two decimals: 12.50."""
        return f"{self.price_cents // 100}.{self.price_cents % 100:02d}"
