"""What staff type to list a product, and what a tourist filters by; checked here, so the
service and both web routes (page and JSON) refuse the same things with the same codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, get_args

from agent.errors import ValidationError
from agent.village import identity

Category = Literal["produce", "food", "crafts", "other"]
CATEGORIES: tuple[str, ...] = get_args(Category)
# How the seller wants to be reached: the number on the listing, or through the village
# committee (the listing says so, and the number stays with the staff).
ContactShown = Literal["phone", "committee"]
CONTACT_CHOICES: tuple[str, ...] = get_args(ContactShown)

MAX_NAME = 50
MAX_UNIT = 10
MAX_SELLER = 50
MAX_DESCRIPTION = 1000
MAX_QUERY_TEXT = 50
MAX_PRICE_CENTS = 10_000_000  # ¥100,000: nothing the village sells by the unit costs more


def clean_text(value: object) -> str:
    """Surrounding and repeated whitespace removed (line breaks kept out of one-line fields)."""
    return " ".join(str(value or "").split())


def _text(fields: Mapping[str, object], name: str, maximum: int, *, required: bool) -> str:
    value = clean_text(fields.get(name, ""))
    if required and not value:
        raise ValidationError(name, f"products.{name}.required")
    if len(value) > maximum:
        raise ValidationError(name, f"products.{name}.too_long")
    if any(not ch.isprintable() for ch in value):
        raise ValidationError(name, f"products.{name}.format")
    return value


def parse_price(value: object, field: str = "price", *, required: bool = True) -> int | None:
    """Yuan as typed (``12``, ``12.5``, ``¥12.50``) to cents; None when empty and optional."""
    text = str(value or "").strip().lstrip("¥￥").strip()
    if not text:
        if required:
            raise ValidationError(field, "products.price.required")
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValidationError(field, "products.price.invalid") from exc
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(field, "products.price.invalid")
    cents = int(amount * 100)
    if not 0 < cents <= MAX_PRICE_CENTS:
        raise ValidationError(field, "products.price.range")
    return cents


@dataclass(frozen=True)
class ProductInput:
    """A listing as staff type it for a villager."""

    name: str
    category: Category
    price_cents: int
    unit: str
    description: str
    seller: str
    phone: str
    contact: ContactShown

    @classmethod
    def from_fields(cls, fields: Mapping[str, object]) -> ProductInput:
        """Checked fields of a form or JSON body; raises ValidationError(field, code)."""
        name = _text(fields, "name", MAX_NAME, required=True)
        category = str(fields.get("category", "") or "")
        if not category:
            raise ValidationError("category", "products.category.required")
        if category not in CATEGORIES:
            raise ValidationError("category", "products.category.invalid")
        price = parse_price(fields.get("price", ""))
        assert price is not None
        unit = _text(fields, "unit", MAX_UNIT, required=True)
        description = " ".join(
            line.strip() for line in str(fields.get("description", "") or "").splitlines()
        ).strip()
        if len(description) > MAX_DESCRIPTION:
            raise ValidationError("description", "products.description.too_long")
        seller = _text(fields, "seller", MAX_SELLER, required=True)
        raw_phone = str(fields.get("phone", "") or "")
        if not raw_phone.strip():
            raise ValidationError("phone", "products.phone.required")
        try:
            phone = identity.validate_phone(raw_phone)
        except ValidationError as exc:
            raise ValidationError("phone", "products.phone.format") from exc
        contact = str(fields.get("contact", "") or "")
        if contact not in CONTACT_CHOICES:
            raise ValidationError("contact", "products.contact.invalid")
        return cls(
            name=name,
            category=category,  # type: ignore[arg-type]
            price_cents=price,
            unit=unit,
            description=description,
            seller=seller,
            phone=phone,
            contact=contact,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class ProductQuery:
    """A tourist's filter: every part optional."""

    category: str | None = None
    min_cents: int | None = None
    max_cents: int | None = None
    text: str = ""

    @classmethod
    def from_fields(cls, fields: Mapping[str, object]) -> ProductQuery:
        category = str(fields.get("category", "") or "") or None
        if category is not None and category not in CATEGORIES:
            raise ValidationError("category", "products.category.invalid")
        low = parse_price(fields.get("min_price", ""), "min_price", required=False)
        high = parse_price(fields.get("max_price", ""), "max_price", required=False)
        if low is not None and high is not None and low > high:
            raise ValidationError("max_price", "products.price.order")
        text = clean_text(fields.get("q", ""))
        if len(text) > MAX_QUERY_TEXT:
            raise ValidationError("q", "products.q.too_long")
        return cls(category, low, high, text)

    def used(self) -> bool:
        return any((self.category, self.min_cents, self.max_cents, self.text))
