"""The one error root of the agent; adapters translate library errors into these."""

from collections.abc import Sequence


class KioskError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(KioskError):
    """The configuration cannot be loaded or is invalid.

    ``problems`` lists one human message per problem, each prefixed with the key's path.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class CameraError(KioskError):
    """A camera source could not be opened or read."""


class StoreError(KioskError):
    """The database or media directory failed."""


class ValidationError(KioskError):
    """User or remote input was rejected; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class RecordNotFoundError(ValidationError):
    """A record that does not exist, or that the asking account may not know of (the web layer
    answers 404 either way, so ids of other people's records are not confirmed to exist)."""


class NotAllowedError(KioskError):
    """The account may not do this to this record: a business rule, not a missing role (the
    web layer answers 403). ``code`` is the message's catalog code (``dispute.not_mediator``)."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        self.message = message or code
        super().__init__(self.message)


class AlertLinkError(KioskError):
    """The MQTT link failed in a way the caller must know about."""


def field_path(location: Sequence[int | str]) -> str:
    """A validation error's location as people read it: ``cameras[1].fps``.

    Names pydantic gives its own validators (``function-after[...]``, ``tagged-union[...]``) are
    left out: they are not keys anyone wrote.
    """
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith(("function-", "tagged-union")):
            continue
        else:
            text += f".{part}" if text else part
    return text
