"""Identity documents (证件) accepted for homestay registration, and their validation.

Each rejection is an ``agent.errors.ValidationError`` whose message is a stable code from
``ERROR_MESSAGES``; the UI translates codes, so the codes never change meaning once released.

Rules per document:
- 居民身份证 (GB 11643-1999): 18 characters, 17 digits and a digit or X; ISO 7064 MOD 11-2 check
  character; the first two digits are a province-level code; the embedded YYYYMMDD is a real date
  between 1900-01-01 and today.
- 护照: 5–17 letters or digits; a Chinese (CHN) ordinary passport is G + 8 digits, E + 8
  digits, or E + letter + 7 digits (once the E digit series ran out); official passports start
  with D, S or P (DE/SE/PE for electronic ones).
- 港澳居民来往内地通行证: H (Hong Kong) or M (Macao) and 8 or 10 digits.
- 台湾居民来往大陆通行证: 8 digits (card since 2015), or the older 10 digits with an optional
  issue letter (written in parentheses, which normalization drops).
- 外国人永久居留身份证: the 2004 card, 3 letters (nationality) and 12 digits; the 2023 card,
  18 characters: 9, a province code, a 3-digit nationality code, the birth date, a sequence and
  the same MOD 11-2 check character as the resident ID.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from agent.errors import ValidationError

EARLIEST_BIRTH_DATE = date(1900, 1, 1)
HOME_NATIONALITY = "CHN"

ERROR_MESSAGES: dict[str, str] = {
    "id_type.required": "Choose the type of identity document.",
    "id_type.invalid": "This type of identity document is not accepted.",
    "id_number.required": "Enter the document number.",
    "id_number.length": "The document number has the wrong number of characters.",
    "id_number.format": "The document number contains characters this document never has.",
    "id_number.check_digit": "The document number is mistyped: its check digit does not match.",
    "id_number.region": "The first two digits are not a valid province code.",
    "id_number.birth_date_invalid": "The birth date inside the document number is not a real date.",
    "id_number.birth_date_future": "The birth date inside the document number is in the future.",
    "id_number.birth_date_too_early": "The birth date inside the document number is before 1900.",
    "id_number.birth_date_mismatch": "The birth date differs from the one in the document number.",
    "phone.required": "Enter a phone number.",
    "phone.format": "Enter a mainland mobile number (11 digits starting with 1) or +country code "
    "and number.",
    "nationality.required": "Enter the nationality.",
    "nationality.format": "Nationality must be a three-letter country code such as CHN or USA.",
    "nationality.mismatch": "The nationality does not fit the type of identity document.",
}


class IdType(StrEnum):
    RESIDENT_ID = "resident_id"  # 居民身份证
    PASSPORT = "passport"  # 护照
    HK_MACAO_PERMIT = "hk_macao_permit"  # 港澳居民来往内地通行证
    TAIWAN_PERMIT = "taiwan_permit"  # 台湾居民来往大陆通行证
    FOREIGN_PERMANENT_ID = "foreign_permanent_id"  # 外国人永久居留身份证


# Province-level codes (GB/T 2260); 71/81/82 (and 83 on residence permits) cover Taiwan, Hong
# Kong and Macao residents holding mainland-issued numbers.
PROVINCE_CODES = frozenset(
    {
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
        "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
        "63", "64", "65", "71", "81", "82", "83",
    }
)  # fmt: skip

_CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"
_SEPARATORS = re.compile(r"[\s\-()（）]")
_EIGHTEEN = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)
_PASSPORT = re.compile(r"[A-Z0-9]{5,17}", re.ASCII)
_CHINESE_PASSPORT = re.compile(r"[EG][A-Z0-9][0-9]{7}|[DSP]E?[0-9]{7,8}", re.ASCII)
_HK_MACAO = re.compile(r"[HM](?:[0-9]{8}|[0-9]{10})", re.ASCII)
_TAIWAN = re.compile(r"[0-9]{8}|[0-9]{10}[A-Z]?", re.ASCII)
_FOREIGN_OLD = re.compile(r"[A-Z]{3}[0-9]{12}", re.ASCII)
_NATIONALITY = re.compile(r"[A-Z]{3}", re.ASCII)
_MAINLAND_MOBILE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)
_INTERNATIONAL_PHONE = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)


def latest_today() -> date:
    """Today's date in the easternmost time zone (UTC+14): a birth date after it is in the
    future wherever the guest was born, so a newborn is never rejected for a zone offset."""
    return (datetime.now(UTC) + timedelta(hours=14)).date()


def normalize_id_number(number: str) -> str:
    """Full-width characters folded (a kiosk IME may type them), spaces, hyphens and
    parentheses dropped, letters upper-cased."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", number)).upper()


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits of an 18-character number."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _CHECK_WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11]


def _fail(code: str, field: str = "id_number") -> ValidationError:
    return ValidationError(field, code)


def _check_birth_date(digits: str, birth_date: date | None, today: date) -> None:
    try:
        embedded = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError as exc:
        raise _fail("id_number.birth_date_invalid") from exc
    if embedded < EARLIEST_BIRTH_DATE:
        raise _fail("id_number.birth_date_too_early")
    if embedded > today:
        raise _fail("id_number.birth_date_future")
    if birth_date is not None and birth_date != embedded:
        raise _fail("id_number.birth_date_mismatch")


def _validate_eighteen(
    number: str, region_start: int, birth_date: date | None, today: date
) -> None:
    """The shared layout of the resident ID and the 2023 foreigner card: region, date, check."""
    if len(number) != 18:
        raise _fail("id_number.length")
    if not _EIGHTEEN.fullmatch(number):
        raise _fail("id_number.format")
    if number[region_start : region_start + 2] not in PROVINCE_CODES:
        raise _fail("id_number.region")
    _check_birth_date(number[6:14], birth_date, today)
    if check_character(number[:17]) != number[17]:
        raise _fail("id_number.check_digit")


def validate_id_number(
    id_type: IdType,
    number: str,
    *,
    birth_date: date | None = None,
    nationality: str | None = None,
    today: date | None = None,
) -> str:
    """Return the normalized number or raise ``ValidationError(field="id_number", code)``.

    ``birth_date`` is checked against the date embedded in numbers that carry one;
    ``nationality`` (ISO alpha-3) narrows the passport format for Chinese passports.
    """
    today = today or latest_today()
    normalized = normalize_id_number(number)
    if not normalized:
        raise _fail("id_number.required")
    if id_type is IdType.RESIDENT_ID:
        _validate_eighteen(normalized, 0, birth_date, today)
    elif id_type is IdType.PASSPORT:
        if not 5 <= len(normalized) <= 17:
            raise _fail("id_number.length")
        if not _PASSPORT.fullmatch(normalized):
            raise _fail("id_number.format")
        if nationality == HOME_NATIONALITY and not _CHINESE_PASSPORT.fullmatch(normalized):
            raise _fail("id_number.format")
    elif id_type is IdType.HK_MACAO_PERMIT:
        if len(normalized) not in (9, 11):
            raise _fail("id_number.length")
        if not _HK_MACAO.fullmatch(normalized):
            raise _fail("id_number.format")
    elif id_type is IdType.TAIWAN_PERMIT:
        if len(normalized) not in (8, 10, 11):
            raise _fail("id_number.length")
        if not _TAIWAN.fullmatch(normalized):
            raise _fail("id_number.format")
    elif id_type is IdType.FOREIGN_PERMANENT_ID:
        if len(normalized) == 15:
            if not _FOREIGN_OLD.fullmatch(normalized):
                raise _fail("id_number.format")
        elif len(normalized) == 18:
            if not normalized.startswith("9"):
                raise _fail("id_number.format")
            _validate_eighteen(normalized, 1, birth_date, today)
        else:
            raise _fail("id_number.length")
    else:  # pragma: no cover - IdType is closed; a new member must get its own rule
        raise _fail("id_type.invalid", "id_type")
    return normalized


def normalize_nationality(nationality: str) -> str:
    return unicodedata.normalize("NFKC", nationality).strip().upper()


def validate_nationality(nationality: str, id_type: IdType) -> str:
    """ISO 3166-1 alpha-3, consistent with the document: a resident ID means a Chinese citizen
    and a foreigner's permanent residence card means a foreign one."""
    code = normalize_nationality(nationality)
    if not code:
        raise ValidationError("nationality", "nationality.required")
    if not _NATIONALITY.fullmatch(code):
        raise ValidationError("nationality", "nationality.format")
    citizen_only = id_type is IdType.RESIDENT_ID
    foreigner_only = id_type is IdType.FOREIGN_PERMANENT_ID
    if (citizen_only and code != HOME_NATIONALITY) or (foreigner_only and code == HOME_NATIONALITY):
        raise ValidationError("nationality", "nationality.mismatch")
    return code


def is_foreign(id_type: IdType, nationality: str) -> bool:
    """A 境外人员 for reporting: anyone not a mainland citizen on a mainland document.

    Hong Kong, Macao and Taiwan residents count as 境外人员 and fall under the same 24-hour
    reporting rule as foreigners, even though their nationality is CHN.
    """
    if id_type in (IdType.HK_MACAO_PERMIT, IdType.TAIWAN_PERMIT, IdType.FOREIGN_PERMANENT_ID):
        return True
    return normalize_nationality(nationality) != HOME_NATIONALITY


def normalize_phone(number: str) -> str:
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", number))


def validate_phone(number: str, *, field: str = "phone") -> str:
    """A mainland mobile (11 digits, 1[3-9]…) or an international number in E.164 form; a
    +86 number must be a mainland mobile. Returns the normalized number."""
    normalized = normalize_phone(number)
    if not normalized:
        raise ValidationError(field, "phone.required")
    if _MAINLAND_MOBILE.fullmatch(normalized):
        return normalized
    if _INTERNATIONAL_PHONE.fullmatch(normalized):
        if normalized.startswith("+86") and not _MAINLAND_MOBILE.fullmatch(normalized[3:]):
            raise ValidationError(field, "phone.format")
        return normalized
    raise ValidationError(field, "phone.format")
