"""Tourism (景点, 预订民宿): attractions, homestay rooms and booking requests."""

from agent.accounts import Role
from web_ui.village import NavEntry, ServiceWeb, roles
from web_ui.village.tourism import attractions, stays  # noqa: F401 - they fill the routers
from web_ui.village.tourism.common import api, pages

WEB = ServiceWeb(
    "tourism",
    pages=pages,
    api=api,
    nav=(
        NavEntry("/attractions", "tourism.nav.attractions", roles(None), tile=True),
        NavEntry("/stays", "tourism.nav.stays", roles(None), tile=True),
        NavEntry("/host/bookings", "tourism.nav.host_bookings", roles(Role.HOST)),
        NavEntry(
            "/staff/attractions",
            "tourism.nav.staff_attractions",
            roles(Role.STAFF, Role.ADMIN),
            tile=True,
        ),
    ),
)
