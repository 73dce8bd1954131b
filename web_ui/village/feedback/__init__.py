"""Feedback (民意收集反馈): left at the kiosk or on a family phone, answered by staff."""

from agent.accounts import Role
from web_ui.village import NavEntry, ServiceWeb, roles
from web_ui.village.feedback import routes

WEB = ServiceWeb(
    "feedback",
    pages=routes.pages,
    api=routes.api,
    nav=(
        # Anonymous feedback is taken at the kiosk's own screen; on a phone, from a family account.
        NavEntry("/feedback", "nav.feedback.leave", roles(None), tile=True, kiosk_only=True),
        NavEntry("/feedback", "nav.feedback.leave", roles(Role.FAMILY), tile=True),
        NavEntry("/staff/feedback", "nav.feedback.list", roles(Role.STAFF, Role.ADMIN), tile=True),
    ),
)
