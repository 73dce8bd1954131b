"""Homestay guest registration (民宿登记): hosts register guests, police search and export."""

from agent.accounts import Role
from web_ui.routes import homestays
from web_ui.village import NavEntry, ServiceWeb, roles

WEB = ServiceWeb(
    "homestay",
    pages=homestays.router,
    nav=(
        NavEntry("/host/homestays", "nav.homestays", roles(Role.HOST), tile=True),
        NavEntry("/admin/homestays", "nav.admin_homestays", roles(Role.ADMIN)),
        NavEntry("/police/registrations", "nav.registrations", roles(Role.POLICE)),
    ),
)
