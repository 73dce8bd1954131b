"""Guest-form input: what a host types at the kiosk, checked field by field.

Constructing a :class:`GuestInput` validates everything and raises
:class:`GuestFormError` (an ``agent.errors.ValidationError`` naming the first problem in page
order, with ``errors`` holding every problem found) so the form can show them all at once.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
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
from agent.village.homestay import countries
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
    "homestay.date_range_reversed": "The end date is before the start date.",
    "homestay.sex_mismatch": "The sex differs from the one in the resident ID number (its 17th "
    "digit is odd for a man, even for a woman).",
    "homestay.nationality_unknown": "Choose the nationality from the list (a country code such "
    "as USA, or the country's name).",
}

# The order the registration form shows its fields in: errors are listed in this order.
GUEST_FIELD_ORDER = (
    "id_type", "id_number", "name", "sex", "birth_date", "ethnicity", "nationality", "phone",
    "address", "room", "check_in", "expected_check_out", "companions",
)  # fmt: skip
COMPANION_FIELD_ORDER = ("name", "id_type", "id_number", "birth_date", "nationality")


class GuestFormError(ValidationError):
    """Every problem of one registration, in the form's order; ``field`` and ``message`` are
    the first one's (what a single-error reader, such as the JSON API, reports)."""

    def __init__(self, errors: list[ValidationError]) -> None:
        ordered = sorted(errors, key=lambda error: _page_position(error.field))
        super().__init__(ordered[0].field, ordered[0].message)
        self.errors = ordered


def _page_position(field: str) -> tuple[int, int, int]:
    head, _, rest = field.partition(".")
    if head.startswith("companions[") and head.endswith("]"):
        index = head.removeprefix("companions[").removesuffix("]")
        leaf = rest or ""
        where = COMPANION_FIELD_ORDER.index(leaf) if leaf in COMPANION_FIELD_ORDER else 99
        return (len(GUEST_FIELD_ORDER), int(index) if index.isdigit() else 0, where)
    if field in GUEST_FIELD_ORDER:
        return (GUEST_FIELD_ORDER.index(field), 0, 0)
    return (len(GUEST_FIELD_ORDER) + 1, 0, 0)


def sex_in_id(number: str) -> str | None:
    """The sex a resident ID number records (17th digit odd: male), or None if unreadable."""
    normalized = identity.normalize_id_number(number)
    if len(normalized) != 18 or not normalized[16].isdigit():
        return None
    return "male" if int(normalized[16]) % 2 else "female"


def birth_date_in_id(number: str) -> date | None:
    """The birth date a resident ID number carries, or None if unreadable."""
    normalized = identity.normalize_id_number(number)
    if len(normalized) != 18 or not normalized[6:14].isdigit():
        return None
    try:
        return date(int(normalized[6:10]), int(normalized[10:12]), int(normalized[12:14]))
    except ValueError:
        return None


def fill_from_id(values: dict[str, Any], *, with_sex: bool = True) -> dict[str, Any]:
    """A resident ID number carries the birth date and the sex: an empty box for either is
    filled in from it (a typed value is kept, and checked against the number later)."""
    if values.get("id_type", IdType.RESIDENT_ID.value) != IdType.RESIDENT_ID.value:
        return values
    number = values.get("id_number")
    if not isinstance(number, str):
        return values
    filled = dict(values)
    birth = birth_date_in_id(number)
    if birth is not None and not filled.get("birth_date"):
        filled["birth_date"] = birth.isoformat()
    sex = sex_in_id(number)
    if with_sex and sex is not None and not filled.get("sex"):
        filled["sex"] = sex
    return filled


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

    @field_validator("nationality")
    @classmethod
    def _nationality_code(cls, value: str | None) -> str | None:
        return countries.to_code(value) if value else None

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
        return countries.to_code(value)

    @model_validator(mode="wrap")
    @classmethod
    def _validate_registration(
        cls, data: Any, handler: ModelWrapValidatorHandler[GuestInput]
    ) -> GuestInput:
        if isinstance(data, dict):
            data = fill_from_id(data)
            if isinstance(data.get("companions"), list):
                data["companions"] = [
                    fill_from_id(c, with_sex=False) if isinstance(c, dict) else c
                    for c in data["companions"]
                ]
        try:
            guest = handler(data)
        except PydanticValidationError as exc:
            errors = _translate(exc)
            if isinstance(data, dict):
                failed = {error.field for error in errors}
                errors += [e for e in _check_raw(data) if e.field not in failed]
            raise GuestFormError(errors) from exc
        errors = _check_guest(guest, identity.latest_today())
        if errors:
            raise GuestFormError(errors)
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


_FORMAT_ERRORS = frozenset(
    {
        "date_parsing", "date_from_datetime_parsing", "datetime_parsing",
        "datetime_from_date_parsing", "date_from_datetime_inexact", "datetime_object_invalid",
    }
)  # fmt: skip


def _translate(exc: PydanticValidationError) -> list[ValidationError]:
    """Every pydantic error as our (field path, code) pair."""
    translated: list[ValidationError] = []
    for error in exc.errors():
        loc = error["loc"]
        names = [part for part in loc if isinstance(part, str)]
        if not names:
            translated.append(ValidationError("guest", "guest.invalid"))
            continue
        leaf = names[-1]
        kind = error["type"]
        if kind == "extra_forbidden":
            code = "field.unknown"
        elif kind == "missing":
            code = f"{leaf}.required"
        elif kind in _FORMAT_ERRORS:
            code = f"{leaf}.format"
        else:
            code = f"{leaf}.invalid"
        if code not in ERROR_MESSAGES:
            code = "guest.invalid"
        translated.append(ValidationError(field_path(loc), code))
    return translated


def _check_raw(data: dict[str, Any]) -> list[ValidationError]:
    """The text checks that need no parsed model, for a form that failed to parse elsewhere:
    so a missing name shows beside a mistyped date, not after it is fixed."""
    errors: list[ValidationError] = []
    for field, maximum in (("name", MAX_NAME), ("address", MAX_ADDRESS), ("room", MAX_ROOM)):
        value = data.get(field)
        if isinstance(value, str):
            _collect(errors, check_text, field, clean_text(value), maximum)
    resident = data.get("id_type", IdType.RESIDENT_ID.value) == IdType.RESIDENT_ID.value
    if resident and not clean_text(str(data.get("ethnicity") or "")):
        errors.append(ValidationError("ethnicity", "ethnicity.required"))
    phone = data.get("phone")
    if isinstance(phone, str):
        _collect(errors, identity.validate_phone, phone)
    return errors


def _collect(errors: list[ValidationError], check: Any, *args: Any) -> None:
    try:
        check(*args)
    except ValidationError as exc:
        errors.append(exc)


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


def _check_nationality(field: str, code: str) -> None:
    # A well-formed code that is no country (a typo such as USB) is refused here; the
    # document's own checks follow.
    if len(code) == 3 and code.isalpha() and not countries.is_code(code):
        raise ValidationError(field, "homestay.nationality_unknown")


def _check_sex(guest: GuestInput) -> None:
    if guest.id_type is IdType.RESIDENT_ID:
        recorded = sex_in_id(guest.id_number)
        if recorded is not None and recorded != guest.sex:
            raise ValidationError("sex", "homestay.sex_mismatch")


def _check_guest(guest: GuestInput, today: date) -> list[ValidationError]:
    errors: list[ValidationError] = []
    _collect(errors, _check_name, "name", guest.name)
    if guest.id_type is IdType.RESIDENT_ID and not guest.ethnicity:
        errors.append(ValidationError("ethnicity", "ethnicity.required"))
    _collect(
        errors, partial(check_text, required=False), "ethnicity", guest.ethnicity, MAX_ETHNICITY
    )
    _collect(errors, _check_birth_date, "birth_date", guest.birth_date, today)
    _collect(errors, _check_sex, guest)
    _collect(errors, _check_nationality, "nationality", guest.nationality)
    _collect(
        errors,
        _check_document,
        "",
        guest.id_type,
        guest.id_number,
        guest.birth_date,
        guest.nationality,
        today,
    )
    _collect(errors, identity.validate_phone, guest.phone)
    _collect(errors, check_text, "address", guest.address, MAX_ADDRESS)
    _collect(errors, check_text, "room", guest.room, MAX_ROOM)
    arrival = guest.check_in.date()
    if guest.expected_check_out < arrival:
        errors.append(ValidationError("expected_check_out", "check_out.before_check_in"))
    if guest.expected_check_out > arrival + timedelta(days=MAX_STAY_DAYS):
        errors.append(ValidationError("expected_check_out", "check_out.too_far"))
    if len(guest.companions) > MAX_COMPANIONS:
        errors.append(ValidationError("companions", "companions.too_many"))
        return errors
    seen = {guest.id_number}
    for index, companion in enumerate(guest.companions):
        prefix = f"companions[{index}]."
        _collect(errors, _check_name, prefix + "name", companion.name)
        _collect(errors, _check_birth_date, prefix + "birth_date", companion.birth_date, today)
        nationality = companion.effective_nationality(guest.nationality)
        _collect(errors, _check_nationality, prefix + "nationality", nationality)
        _collect(
            errors,
            _check_document,
            prefix,
            companion.id_type,
            companion.id_number,
            companion.birth_date,
            nationality,
            today,
        )
        if companion.id_number in seen:
            errors.append(ValidationError(prefix + "id_number", "id_number.duplicate"))
        seen.add(companion.id_number)
    return errors
