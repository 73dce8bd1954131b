"""Care for left-behind elders and children (留守人员关爱): the kiosk's daily check-in, the
carer's list and the guardian's phone pages."""

from agent.accounts import Role
from web_ui.village import NavEntry, ServiceWeb, roles
from web_ui.village.care import routes

WEB = ServiceWeb(
    "care",
    pages=routes.pages,
    api=routes.api,
    nav=(
        # The check-in works on the kiosk's own screen only (elsewhere the page is not found).
        NavEntry("/kiosk/care", "care.nav.checkin", roles(None), tile=True, kiosk_only=True),
        NavEntry("/care", "care.nav.today", roles(Role.STAFF, Role.ADMIN), tile=True),
        NavEntry("/family/care", "care.nav.family", roles(Role.FAMILY)),
    ),
)
