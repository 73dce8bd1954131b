"""Feedback (民意收集反馈): villagers' opinions at the kiosk or on a family phone, the staff's
replies, read back with a code. See ``service`` for who may do what and what is kept."""

from agent.village.feedback.records import (
    ERROR_MESSAGES,
    Actor,
    Category,
    Feedback,
    FeedbackInput,
    ReplyView,
    State,
    Submitted,
)
from agent.village.feedback.schema import AREA
from agent.village.feedback.service import (
    CodePausedError,
    FeedbackService,
    FeedbackSettings,
    build,
)
from agent.village.service import ServiceSpec

SERVICE = ServiceSpec(AREA, build, ERROR_MESSAGES)

__all__ = [
    "SERVICE",
    "Actor",
    "Category",
    "CodePausedError",
    "Feedback",
    "FeedbackInput",
    "FeedbackService",
    "FeedbackSettings",
    "ReplyView",
    "State",
    "Submitted",
]
