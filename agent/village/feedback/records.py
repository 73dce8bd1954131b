"""Feedback (民意收集反馈): what a villager leaves, what the staff reply, and the code that is
the only key to the reply."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from agent.accounts import Role
from agent.errors import ValidationError
from agent.village import identity

MAX_TEXT = 1000
MAX_REPLY = 2000
MAX_NAME = 50
# No look-alikes (0/O, 1/I/L): the code is read off the screen and typed again later.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6


class Category(StrEnum):
    SUGGESTION = "suggestion"  # 建议
    COMPLAINT = "complaint"  # 投诉
    PRAISE = "praise"  # 表扬
    HELP = "help"  # 求助
    OTHER = "other"  # 其他


class State(StrEnum):
    NEW = "new"  # 待回复
    ANSWERED = "answered"  # 已回复


ERROR_MESSAGES: dict[str, str] = {
    "feedback.category_required": "Choose what kind of feedback this is.",
    "feedback.category_invalid": "This kind of feedback is not on the list.",
    "feedback.state_invalid": "This is not a state feedback can have.",
    "feedback.text_required": "Write your feedback.",
    "feedback.text_too_long": f"Feedback has at most {MAX_TEXT} characters.",
    "feedback.name_required": "Enter your name, or choose to stay anonymous.",
    "feedback.name_too_long": f"The name has at most {MAX_NAME} characters.",
    "feedback.name_format": "The name contains characters that are not allowed.",
    "feedback.phone_format": "The phone number is not a valid mobile or international number.",
    "feedback.reply_required": "Write the reply.",
    "feedback.reply_too_long": f"A reply has at most {MAX_REPLY} characters.",
    "feedback.code_format": f"The code has {CODE_LENGTH} letters and digits.",
    "feedback.code_unknown": "No feedback has this code. Check the code and try again.",
    "feedback.code_paused": "Too many wrong codes from this device. Please wait a few minutes.",
    "feedback.not_here": "Feedback is left on the kiosk's screen, or on a phone signed in with "
    "a family account.",
    "feedback.not_staff": "Only village staff and administrators read and answer feedback.",
    "feedback.not_found": "This feedback does not exist (answered feedback is deleted after a "
    "while).",
}


@dataclass(frozen=True)
class Actor:
    """Who is asking and from where: ``at_kiosk`` is the kiosk's own screen."""

    username: str
    role: Role | None
    at_kiosk: bool = False


@dataclass(frozen=True)
class FeedbackInput:
    category: str
    text: str
    anonymous: bool = True
    name: str = ""
    phone: str = ""

    def checked(self) -> FeedbackInput:
        category = self.category.strip()
        if not category:
            raise ValidationError("category", "feedback.category_required")
        if category not in set(Category):
            raise ValidationError("category", "feedback.category_invalid")
        text = self.text.strip()
        if not text:
            raise ValidationError("text", "feedback.text_required")
        if len(text) > MAX_TEXT:
            raise ValidationError("text", "feedback.text_too_long")
        if self.anonymous:
            # What was typed into the name and phone boxes before ticking "anonymous" is
            # dropped here, so an anonymous note carries no name by accident.
            return FeedbackInput(category, text, True, "", "")
        name = " ".join(self.name.split())
        if not name:
            raise ValidationError("name", "feedback.name_required")
        if len(name) > MAX_NAME:
            raise ValidationError("name", "feedback.name_too_long")
        if any(not ch.isprintable() for ch in name):
            raise ValidationError("name", "feedback.name_format")
        phone = identity.normalize_phone(self.phone)
        if phone:
            try:
                phone = identity.validate_phone(phone)
            except ValidationError:
                raise ValidationError("phone", "feedback.phone_format") from None
        return FeedbackInput(category, text, False, name, phone)


def parse_category(value: str) -> Category | None:
    if not value:
        return None
    try:
        return Category(value)
    except ValueError:
        raise ValidationError("category", "feedback.category_invalid") from None


def parse_state(value: str) -> State | None:
    if not value:
        return None
    try:
        return State(value)
    except ValueError:
        raise ValidationError("state", "feedback.state_invalid") from None


def normalize_code(value: str) -> str:
    """What a person typed (any case, spaces or a hyphen) as a code; raises ``code_format``."""
    code = re.sub(r"[\s\-]", "", value).upper()
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        raise ValidationError("code", "feedback.code_format")
    return code


@dataclass(frozen=True)
class Feedback:
    """A feedback as the staff see it: the phone number is always masked."""

    id: int
    category: Category
    text: str
    anonymous: bool
    name: str
    phone: str
    channel: str  # kiosk | phone
    state: State
    created_at: datetime
    reply: str
    replied_by: str
    replied_at: datetime | None


@dataclass(frozen=True)
class Submitted:
    """A new feedback and its code, shown once and kept nowhere but as a keyed digest."""

    feedback: Feedback
    code: str


@dataclass(frozen=True)
class ReplyView:
    """What the code shows its holder: their own words and the reply, nothing about people."""

    category: Category
    text: str
    state: State
    created_at: datetime
    reply: str
    replied_at: datetime | None
