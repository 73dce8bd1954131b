"""Homestay guest registration (民宿登记): hosts register guests, police search and export."""

from agent.accounts import Role
from web_ui.village import NavEntry, ServiceWeb, roles
from web_ui.village.homestay import api, police

WEB = ServiceWeb(
    "homestay",
    pages=police.router,
    api=api.router,
    nav=(
        NavEntry("/host/homestays", "homestay.nav.homestays", roles(Role.HOST), tile=True),
        NavEntry("/admin/homestays", "homestay.nav.admin_homestays", roles(Role.ADMIN)),
        NavEntry("/police/registrations", "homestay.nav.registrations", roles(Role.POLICE)),
    ),
)
