"""Local products (特产推介): staff list villagers' products, tourists browse and filter."""

from agent.village.photos import error_messages as photo_error_messages
from agent.village.products.inputs import (
    CATEGORIES,
    CONTACT_CHOICES,
    ProductInput,
    ProductQuery,
)
from agent.village.products.records import Product
from agent.village.products.service import AREA, ProductService, ProductSettings, build
from agent.village.service import ServiceSpec

ERROR_MESSAGES: dict[str, str] = {
    **photo_error_messages(AREA),
    "products.name.required": "Enter the product's name.",
    "products.name.too_long": "The name is too long (at most 50 characters).",
    "products.name.format": "The name contains characters that are not allowed.",
    "products.category.required": "Choose a category.",
    "products.category.invalid": "Choose one of the categories.",
    "products.price.required": "Enter the price.",
    "products.price.invalid": "Enter the price in yuan, like 12 or 12.50.",
    "products.price.range": "The price must be more than 0 and at most 100000 yuan.",
    "products.price.order": "The lowest price is above the highest.",
    "products.unit.required": "Enter the unit the price is for (斤, 个, 盒 ...).",
    "products.unit.too_long": "The unit is too long (at most 10 characters).",
    "products.unit.format": "The unit contains characters that are not allowed.",
    "products.description.too_long": "The description is too long (at most 1000 characters).",
    "products.seller.required": "Enter the seller's name as it should be shown.",
    "products.seller.too_long": "The seller's name is too long (at most 50 characters).",
    "products.seller.format": "The seller's name contains characters that are not allowed.",
    "products.phone.required": "Enter the seller's phone number.",
    "products.phone.format": "Enter a mainland mobile number (11 digits starting with 1) or "
    "+country code and number.",
    "products.contact.invalid": "Choose how tourists reach the seller.",
    "products.q.too_long": "The search text is too long.",
    "products.too_many": "There are as many listings as this kiosk keeps; withdraw old ones.",
    "products.not_found": "This product is not listed.",
}

SERVICE = ServiceSpec(AREA, build, ERROR_MESSAGES)

__all__ = [
    "CATEGORIES",
    "CONTACT_CHOICES",
    "ERROR_MESSAGES",
    "SERVICE",
    "Product",
    "ProductInput",
    "ProductQuery",
    "ProductService",
    "ProductSettings",
]
