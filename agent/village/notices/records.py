"""What a notice is made of: the input as typed (web form or remote command) and the record.

A notice's expiry is required and bounded: a forgotten notice must not stay on the kiosk
screen for ever, and one meant for next year is a typo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ModelWrapValidatorHandler, model_validator
from pydantic import ValidationError as PydanticValidationError

from agent.errors import ValidationError
from agent.village import photos

AREA = "notices"
MAX_TITLE = 60
MAX_TEXT = 2000
# The furthest ahead a notice may expire.
MAX_LIFETIME = timedelta(days=30)
# Expired notices are kept this long after their expiry (what the screen said, and who
# acknowledged an urgent one, can still be looked up), then purged.
KEPT_AFTER_EXPIRY = timedelta(days=30)
# Where a notice came from, for the audit and the management list.
SOURCE_WEB = "web"
SOURCE_COMMAND = "command"
COMMAND_ACTOR = "command-centre"

ERROR_MESSAGES: dict[str, str] = {
    **photos.error_messages(AREA),
    "notices.invalid": "The notice could not be read.",
    "notices.field_unknown": "The notice contains a field that does not belong to it.",
    "notices.title_required": "Enter the title of the notice.",
    "notices.title_too_long": f"The title is longer than {MAX_TITLE} characters.",
    "notices.title_invalid": "The title must be text without control characters.",
    "notices.text_required": "Enter the text of the notice.",
    "notices.text_too_long": f"The text is longer than {MAX_TEXT} characters.",
    "notices.text_invalid": "The text must be text without control characters.",
    "notices.urgency_invalid": "The urgency must be normal or urgent.",
    "notices.expires_at_required": "Enter when the notice expires.",
    "notices.expires_at_invalid": "The expiry is not a valid date and time (ISO 8601).",
    "notices.expires_at_past": "The expiry time has already passed.",
    "notices.expires_at_too_far": "A notice may expire at most 30 days from now.",
    "notices.not_found": "This notice does not exist or has expired.",
    "notices.not_urgent": "Only an urgent notice is acknowledged at the kiosk.",
}


class Urgency(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"


def _clean_title(value: str) -> str:
    return " ".join(value.split())


def _clean_text(value: str) -> str:
    """Line breaks are kept (a notice may have paragraphs); other control characters are not
    text and are refused."""
    lines = [line.rstrip() for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip()


def _printable(value: str, allowed: str = "") -> bool:
    return all(ch.isprintable() or ch in allowed for ch in value)


class NoticeInput(BaseModel):
    """One notice as typed. Constructing it validates everything except the expiry against the
    clock (the service does that) and raises ``ValidationError(field, code)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    text: str
    urgency: Urgency = Urgency.NORMAL
    # A naive time is the kiosk's local time (what a datetime-local field sends).
    expires_at: datetime

    @model_validator(mode="wrap")
    @classmethod
    def _validate(cls, data: Any, handler: ModelWrapValidatorHandler[NoticeInput]) -> NoticeInput:
        if isinstance(data, dict):
            data = dict(data)
            for name in ("title", "text"):
                value = data.get(name)
                if isinstance(value, str):
                    data[name] = _clean_title(value) if name == "title" else _clean_text(value)
                    if not data[name]:
                        raise ValidationError(name, f"notices.{name}_required")
        try:
            notice = handler(data)
        except PydanticValidationError as exc:
            raise _translate(exc) from None
        if len(notice.title) > MAX_TITLE:
            raise ValidationError("title", "notices.title_too_long")
        if not _printable(notice.title):
            raise ValidationError("title", "notices.title_invalid")
        if len(notice.text) > MAX_TEXT:
            raise ValidationError("text", "notices.text_too_long")
        if not _printable(notice.text, "\n"):
            raise ValidationError("text", "notices.text_invalid")
        return notice


def _translate(exc: PydanticValidationError) -> ValidationError:
    """The first pydantic error as a (field, code) pair of this service."""
    error = exc.errors()[0]
    names = [part for part in error["loc"] if isinstance(part, str)]
    if not names:
        return ValidationError("notice", "notices.invalid")
    field = names[0]
    if error["type"] == "extra_forbidden":
        return ValidationError(field, "notices.field_unknown")
    code = f"notices.{field}_required" if error["type"] == "missing" else f"notices.{field}_invalid"
    return ValidationError(field, code if code in ERROR_MESSAGES else "notices.invalid")


@dataclass(frozen=True)
class Notice:
    """A notice as stored; times are aware (UTC)."""

    id: int
    title: str
    text: str
    urgency: Urgency
    created_at: datetime
    expires_at: datetime
    created_by: str
    source: str
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    # The optional picture (a cleaned JPEG in the notices' photo area).
    photo_id: str | None = None

    @property
    def urgent(self) -> bool:
        return self.urgency is Urgency.URGENT

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now

    def summary(self) -> dict[str, Any]:
        """The JSON form (API and remote replies)."""
        return {
            "id": self.id,
            "title": self.title,
            "text": self.text,
            "urgency": str(self.urgency),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "source": self.source,
            "acknowledged_at": self.acknowledged_at.isoformat() if self.acknowledged_at else None,
            "photo": self.photo_url,
        }

    @property
    def photo_url(self) -> str | None:
        return f"/notices/{self.id}/photo.jpg" if self.photo_id else None
