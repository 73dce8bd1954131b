"""Video patrol rounds (视频巡逻 必巡线): routes for the admin, rounds and records for police."""

from agent.accounts import Role
from web_ui.village import NavEntry, ServiceWeb, roles
from web_ui.village.patrol import api, pages

WEB = ServiceWeb(
    "patrol",
    pages=pages.router,
    api=api.router,
    nav=(
        NavEntry("/police/patrol/rounds", "patrol.nav.rounds", roles(Role.POLICE, Role.ADMIN)),
        NavEntry("/admin/patrol/routes", "patrol.nav.routes", roles(Role.ADMIN)),
    ),
)
