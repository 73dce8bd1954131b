"""The guest registration form: field names on the page and their mapping to GuestInput.

The form posts flat names; companion ``i`` uses ``companions-i-<field>``. Adding a companion
is a submit button that re-renders the form with one more block, so the page works without
any script.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.village.homestay import MAX_COMPANIONS, GuestInput
from agent.village.identity import IdType

# In the order the page shows them (errors are listed in this order too).
GUEST_FIELDS = (
    "id_type", "id_number", "name", "sex", "birth_date", "ethnicity", "nationality", "phone",
    "address", "room", "check_in", "expected_check_out",
)  # fmt: skip
COMPANION_FIELDS = ("name", "id_type", "id_number", "birth_date", "nationality")
ID_TYPES = tuple(IdType)
SEXES = ("male", "female")
_MAX_VALUE = 500


def companion_input_name(index: int, name: str) -> str:
    return f"companions-{index}-{name}"


def input_name_for(field_path: str) -> str:
    """``companions[1].id_number`` (a ValidationError field) → ``companions-1-id_number``."""
    if field_path.startswith("companions[") and "]." in field_path:
        index, _, name = field_path.removeprefix("companions[").partition("].")
        return companion_input_name(int(index), name) if index.isdigit() else field_path
    return field_path


@dataclass
class GuestForm:
    """What the host typed, kept to re-fill the form after a refusal."""

    values: dict[str, str] = field(default_factory=dict)
    companions: list[dict[str, str]] = field(default_factory=list)
    # One per rendered form (kept across re-renders of it): a second submit with the same
    # token shows the first one's result instead of registering the guest again.
    token: str = ""

    @classmethod
    def blank(cls, defaults: Mapping[str, str]) -> GuestForm:
        return cls(values=dict(defaults), token=secrets.token_urlsafe(18))

    @classmethod
    def from_form(cls, form: Mapping[str, Any]) -> GuestForm:
        def text(name: str) -> str:
            value = form.get(name)
            return value.strip()[:_MAX_VALUE] if isinstance(value, str) else ""

        values = {name: text(name) for name in GUEST_FIELDS}
        try:
            count = int(text("companion_count") or 0)
        except ValueError:
            count = 0
        count = max(0, min(count, MAX_COMPANIONS))
        companions = [
            {name: text(companion_input_name(i, name)) for name in COMPANION_FIELDS}
            for i in range(count)
        ]
        token = text("form_token")[:64] or secrets.token_urlsafe(18)
        return cls(values=values, companions=companions, token=token)

    def fields(self) -> dict[str, str]:
        """Every value by its input name (a kept draft), companions included."""
        flat = {name: value for name, value in self.values.items() if value}
        for index, companion in enumerate(self.companions):
            for name, value in companion.items():
                flat[companion_input_name(index, name)] = value
        flat["companion_count"] = str(len(self.companions))
        return flat

    def add_companion(self) -> None:
        if len(self.companions) < MAX_COMPANIONS:
            self.companions.append(dict.fromkeys(COMPANION_FIELDS, ""))

    def remove_companion(self) -> None:
        if self.companions:
            self.companions.pop()

    def to_input(self) -> GuestInput:
        """Validate; raises agent.errors.ValidationError naming the first wrong field."""
        # An empty box is left out, so it reads as "missing" (or the field's default, such as
        # nationality CHN) rather than as an empty string with a less helpful message.
        data: dict[str, Any] = {name: value for name, value in self.values.items() if value}
        data["companions"] = [
            {name: value for name, value in companion.items() if value}
            for companion in self.companions
        ]
        return GuestInput.model_validate(data)
