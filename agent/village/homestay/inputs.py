"""Guest-form input: what a host types at the kiosk, checked field by field.

Constructing a :class:`GuestInput` validates everything and raises
:class:`GuestInputErrors` (an ``agent.errors.ValidationError`` naming the first problem in page
order, with ``errors`` holding every problem found) so the form can show them all at once.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from agent.errors import ValidationError, field_path
from agent.village import identity
from agent.village.identity import IdType

MAX_COMPANIONS = 20
MAX_NAME = 50
MAX_ETHNICITY = 20
MAX_ADDRESS = 200
MAX_ROOM = 20
MAX_ROOMS = 500
MAX_STAY_DAYS = 366


Sex = Literal["male", "female"]

# Guest-form codes; ``identity.ERROR_MESSAGES`` (merged in) holds the document and phone codes.
ERROR_MESSAGES: dict[str, str] = {
    **identity.ERROR_MESSAGES,
    "guest.invalid": "The registration form could not be read.",
    "field.unknown": "The form contains a field that does not belong to it.",
    "name.required": "Enter the name.",
    "name.too_long": "The name is too long.",
    "name.format": "The name contains characters that are not allowed.",
    "name.invalid": "The name could not be read.",
    "sex.required": "Choose the sex.",
    "sex.invalid": "Sex must be male or female.",
    "ethnicity.required": "Enter the ethnic group (民族) of a resident ID holder.",
    "ethnicity.too_long": "The ethnic group is too long.",
    "ethnicity.invalid": "The ethnic group could not be read.",
    "birth_date.required": "Enter the birth date.",
    "birth_date.format": "The birth date is not a valid date.",
    "birth_date.invalid": "The birth date is not a valid date.",
    "birth_date.future": "The birth date is in the future.",
    "birth_date.too_early": "The birth date is before 1900.",
    "id_number.invalid": "The document number could not be read.",
    "id_number.duplicate": "The same document number appears twice in this registration.",
    "phone.invalid": "The phone number could not be read.",
    "address.required": "Enter the address.",
    "address.too_long": "The address is too long.",
    "address.invalid": "The address could not be read.",
    "room.required": "Enter the room.",
    "room.too_long": "The room name is too long.",
    "room.invalid": "The room could not be read.",
    "check_in.required": "Enter the check-in time.",
    "check_in.format": "The check-in time is not a valid date and time.",
    "check_in.invalid": "The check-in time is not a valid date and time.",
    "check_in.future": "The check-in time is more than a day in the future.",
    "check_in.past": "The check-in time is more than 7 days ago; a registration must be entered "
    "within a week of the arrival.",
    "expected_check_out.required": "Enter the expected check-out date.",
    "expected_check_out.format": "The expected check-out date is not a valid date.",
    "expected_check_out.invalid": "The expected check-out date is not a valid date.",
    "check_out.before_check_in": "Check-out cannot be before check-in.",
    "check_out.too_far": "The expected check-out is more than a year after check-in.",
    "nationality.invalid": "The nationality could not be read.",
    "companions.invalid": "The list of companions could not be read.",
    "companions.too_many": "Too many companions in one registration.",
    "rooms.required": "Enter the number of rooms.",
    "rooms.invalid": "The number of rooms must be a whole number.",
    "rooms.range": "The number of rooms must be between 1 and 500.",
    "host_username.required": "Choose the host account.",
    "host_username.unknown": "There is no host account with this name.",
    "homestay.not_found": "This homestay does not exist.",
    "guest.not_found": "This guest registration does not exist (it may have been purged).",
    "guest.already_checked_out": "This guest has already checked out.",
}


def clean_text(value: str) -> str:
    """Surrounding and repeated whitespace removed, so '张三 ' and '张三' are one person."""
    return " ".join(value.split())


class CompanionInput(BaseModel):
    """A person staying with the registering guest (children included, each with a document)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    id_type: IdType
    id_number: str
    birth_date: date
    # None means: CHN for a resident ID, otherwise the registering guest's nationality.
    nationality: str | None = None

    @field_validator("name")
    @classmethod
    def _clean(cls, value: str) -> str:
        return clean_text(value)

    @field_validator("id_number")
    @classmethod
    def _normalize_number(cls, value: str) -> str:
        return identity.normalize_id_number(value)

    def effective_nationality(self, guest_nationality: str) -> str:
        if self.nationality is not None:
            return identity.normalize_nationality(self.nationality)
        if self.id_type is IdType.RESIDENT_ID:
            return identity.HOME_NATIONALITY
        return guest_nationality


class GuestInput(BaseModel):
    """One registration as typed at the kiosk. Constructing it validates everything and raises
    ``agent.errors.ValidationError(field, code)`` for the first problem found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    sex: Sex
    ethnicity: str = ""
    birth_date: date
    id_type: IdType
    id_number: str
    phone: str
    address: str
    room: str
    check_in: datetime  # naive means the kiosk's local time
    expected_check_out: date
    nationality: str = identity.HOME_NATIONALITY
    companions: tuple[CompanionInput, ...] = ()

    @field_validator("name", "ethnicity", "address", "room")
    @classmethod
    def _clean(cls, value: str) -> str:
        return clean_text(value)

    @field_validator("id_number")
    @classmethod
    def _normalize_number(cls, value: str) -> str:
        return identity.normalize_id_number(value)

    @field_validator("phone")
    @classmethod
    def _normalize_phone(cls, value: str) -> str:
        return identity.normalize_phone(value)

    @field_validator("nationality")
    @classmethod
    def _normalize_nationality(cls, value: str) -> str:
        return identity.normalize_nationality(value)

    @model_validator(mode="wrap")
    @classmethod
    def _validate_registration(
        cls, data: Any, handler: ModelWrapValidatorHandler[GuestInput]
    ) -> GuestInput:
        try:
            guest = handler(data)
        except PydanticValidationError as exc:
            raise _translate(exc) from exc
        _check_guest(guest, identity.latest_today())
        return guest

    @property
    def foreign(self) -> bool:
        """True when the guest or any companion is a 境外人员 (report within 24 hours)."""
        if identity.is_foreign(self.id_type, self.nationality):
            return True
        return any(
            identity.is_foreign(c.id_type, c.effective_nationality(self.nationality))
            for c in self.companions
        )


def _translate(exc: PydanticValidationError) -> ValidationError:
    """The first pydantic error as our (field path, code) pair."""
    error = exc.errors()[0]
    loc = error["loc"]
    names = [part for part in loc if isinstance(part, str)]
    if not names:
        return ValidationError("guest", "guest.invalid")
    leaf = names[-1]
    kind = error["type"]
    if kind == "extra_forbidden":
        code = "field.unknown"
    elif kind == "missing":
        code = f"{leaf}.required"
    elif kind in {"date_parsing", "date_from_datetime_parsing", "datetime_parsing",
                  "datetime_from_date_parsing", "date_from_datetime_inexact",
                  "datetime_object_invalid"}:  # fmt: skip
        code = f"{leaf}.format"
    else:
        code = f"{leaf}.invalid"
    if code not in ERROR_MESSAGES:
        code = "guest.invalid"
    return ValidationError(field_path(loc), code)


def check_text(field: str, value: str, maximum: int, *, required: bool = True) -> None:
    leaf = field.rsplit(".", 1)[-1]
    if required and not value:
        raise ValidationError(field, f"{leaf}.required")
    if len(value) > maximum:
        raise ValidationError(field, f"{leaf}.too_long")


def _check_name(field: str, value: str) -> None:
    check_text(field, value, MAX_NAME)
    if any(not ch.isprintable() for ch in value):
        raise ValidationError(field, "name.format")


def _check_birth_date(field: str, value: date, today: date) -> None:
    if value > today:
        raise ValidationError(field, "birth_date.future")
    if value < identity.EARLIEST_BIRTH_DATE:
        raise ValidationError(field, "birth_date.too_early")


def _check_document(
    prefix: str, id_type: IdType, number: str, birth_date: date, nationality: str, today: date
) -> None:
    try:
        identity.validate_nationality(nationality, id_type)
        identity.validate_id_number(
            id_type, number, birth_date=birth_date, nationality=nationality, today=today
        )
    except ValidationError as exc:
        raise ValidationError(prefix + exc.field, exc.message) from None


def _check_guest(guest: GuestInput, today: date) -> None:
    _check_name("name", guest.name)
    if guest.id_type is IdType.RESIDENT_ID and not guest.ethnicity:
        raise ValidationError("ethnicity", "ethnicity.required")
    check_text("ethnicity", guest.ethnicity, MAX_ETHNICITY, required=False)
    _check_birth_date("birth_date", guest.birth_date, today)
    _check_document("", guest.id_type, guest.id_number, guest.birth_date, guest.nationality, today)
    identity.validate_phone(guest.phone)
    check_text("address", guest.address, MAX_ADDRESS)
    check_text("room", guest.room, MAX_ROOM)
    arrival = guest.check_in.date()
    if guest.expected_check_out < arrival:
        raise ValidationError("expected_check_out", "check_out.before_check_in")
    if guest.expected_check_out > arrival + timedelta(days=MAX_STAY_DAYS):
        raise ValidationError("expected_check_out", "check_out.too_far")
    if len(guest.companions) > MAX_COMPANIONS:
        raise ValidationError("companions", "companions.too_many")
    seen = {guest.id_number}
    for index, companion in enumerate(guest.companions):
        prefix = f"companions[{index}]."
        _check_name(prefix + "name", companion.name)
        _check_birth_date(prefix + "birth_date", companion.birth_date, today)
        nationality = companion.effective_nationality(guest.nationality)
        _check_document(
            prefix, companion.id_type, companion.id_number, companion.birth_date, nationality, today
        )
        if companion.id_number in seen:
            raise ValidationError(prefix + "id_number", "id_number.duplicate")
        seen.add(companion.id_number)
