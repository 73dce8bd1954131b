"""Notices (公告 / 紧急通知): the board, publishing, and the kiosk screen's urgent takeover."""

from agent.accounts import Role
from web_ui.village import NavEntry, ServiceWeb, roles
from web_ui.village.notices import routes

WEB = ServiceWeb(
    "notices",
    pages=routes.router,
    api=routes.api,
    nav=(
        NavEntry("/notices", "notices.nav.board", roles(None, Role.HOST, Role.FAMILY), tile=True),
        NavEntry(
            "/notices/manage",
            "notices.nav.manage",
            roles(Role.POLICE, Role.ADMIN, Role.STAFF),
            tile=True,
        ),
    ),
)
