"""Local products (特产推介): tourists browse and filter on a phone, staff list for villagers."""

from agent.accounts import Role
from web_ui.village import NavEntry, ServiceWeb, roles
from web_ui.village.products import routes

WEB = ServiceWeb(
    "products",
    pages=routes.pages,
    api=routes.api,
    nav=(
        NavEntry("/products", "products.nav.browse", roles(None), tile=True),
        NavEntry("/staff/products", "products.nav.staff", roles(Role.STAFF), tile=True),
    ),
)
