"""Dispute mediation (矛盾纠纷化解): filed at the kiosk screen, mediated by staff."""

from agent.accounts import Role
from web_ui.village import NavEntry, ServiceWeb, roles
from web_ui.village.disputes import routes

WEB = ServiceWeb(
    "disputes",
    pages=routes.pages,
    api=routes.api,
    nav=(
        NavEntry("/kiosk/disputes", "nav.disputes.file", roles(None), tile=True, kiosk_only=True),
        NavEntry(
            "/disputes", "nav.disputes.list", roles(Role.STAFF, Role.ADMIN, Role.POLICE), tile=True
        ),
    ),
)
