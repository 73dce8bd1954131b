"""Identity document and phone validation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ValidationError
from agent.village.identity import (
    ERROR_MESSAGES,
    PROVINCE_CODES,
    IdType,
    check_character,
    is_foreign,
    validate_id_number,
    validate_nationality,
    validate_phone,
)

TODAY = date(2026, 11, 29)


def resident_id(region: str = "110105", birth: str = "19491231", sequence: str = "002") -> str:
    """A resident ID number with a correct check character, computed independently here."""
    body = region + birth + sequence
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def foreign_card(
    province: str = "11", country: str = "840", birth: str = "19850312", seq: str = "001"
) -> str:
    body = "9" + province + country + birth + seq
    return body + check_character(body)


def rejected(id_type: IdType, number: str, **kwargs: object) -> str:
    with pytest.raises(ValidationError) as raised:
        validate_id_number(id_type, number, today=TODAY, **kwargs)  # type: ignore[arg-type]
    assert raised.value.field == "id_number"
    assert raised.value.message in ERROR_MESSAGES
    return raised.value.message


# -- resident ID ---------------------------------------------------------------------------------


def test_published_sample_numbers_are_valid() -> None:
    # The worked example of GB 11643-1999 and a widely quoted sample with an X check character.
    assert check_character("44052418800101001") == "4"
    assert validate_id_number(IdType.RESIDENT_ID, "11010519491231002X", today=TODAY) == (
        "11010519491231002X"
    )


def test_computed_numbers_are_valid_and_normalized() -> None:
    number = resident_id("330106", "19900307", "123")
    assert validate_id_number(IdType.RESIDENT_ID, number, today=TODAY) == number
    spaced = f" {number[:6]} {number[6:14]} {number[14:]} ".lower()
    assert validate_id_number(IdType.RESIDENT_ID, spaced, today=TODAY) == number
    full_width = number.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    assert validate_id_number(IdType.RESIDENT_ID, full_width, today=TODAY) == number
    assert (
        validate_id_number(IdType.RESIDENT_ID, number, birth_date=date(1990, 3, 7), today=TODAY)
        == number
    )


def test_lower_case_x_check_character_is_accepted() -> None:
    assert validate_id_number(IdType.RESIDENT_ID, "11010519491231002x", today=TODAY) == (
        "11010519491231002X"
    )


def test_wrong_check_digit() -> None:
    number = resident_id()
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    assert rejected(IdType.RESIDENT_ID, wrong) == "id_number.check_digit"


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("", "id_number.required"),
        ("11010519491231002", "id_number.length"),
        ("11010519491231002X1", "id_number.length"),
        ("1101051949123100AX", "id_number.format"),
        ("X10105194912310021", "id_number.format"),
        (resident_id(region="990105"), "id_number.region"),
        (resident_id(region="000000"), "id_number.region"),
        (resident_id(birth="19900230"), "id_number.birth_date_invalid"),  # Feb 30
        (resident_id(birth="19891301"), "id_number.birth_date_invalid"),
        (resident_id(birth="19990229"), "id_number.birth_date_invalid"),  # not a leap year
        (resident_id(birth="18991231"), "id_number.birth_date_too_early"),
        (resident_id(birth="20261130"), "id_number.birth_date_future"),
    ],
)
def test_invalid_resident_ids(number: str, code: str) -> None:
    assert rejected(IdType.RESIDENT_ID, number) == code


def test_leap_day_and_today_are_real_birth_dates() -> None:
    for birth in ("20000229", "20261129"):
        number = resident_id(birth=birth)
        assert validate_id_number(IdType.RESIDENT_ID, number, today=TODAY) == number


def test_birth_date_must_match_the_number() -> None:
    number = resident_id(birth="19900307")
    code = rejected(IdType.RESIDENT_ID, number, birth_date=date(1990, 7, 3))
    assert code == "id_number.birth_date_mismatch"


def test_the_default_today_accepts_a_newborn_anywhere() -> None:
    number = resident_id(birth=date.today().strftime("%Y%m%d"))
    assert validate_id_number(IdType.RESIDENT_ID, number) == number
    future = resident_id(birth=(date.today() + timedelta(days=3)).strftime("%Y%m%d"))
    with pytest.raises(ValidationError, match="birth_date_future"):
        validate_id_number(IdType.RESIDENT_ID, future)


birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
valid_resident_ids = st.builds(
    lambda province, rest, birth, seq: resident_id(province + rest, birth.strftime("%Y%m%d"), seq),
    st.sampled_from(sorted(PROVINCE_CODES)),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
    birth_dates,
    st.from_regex(r"[0-9]{3}", fullmatch=True),
)


@given(valid_resident_ids)
def test_every_well_formed_number_validates(number: str) -> None:
    assert validate_id_number(IdType.RESIDENT_ID, number, today=TODAY) == number


@given(valid_resident_ids, st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_typo_is_caught(number: str, position: int, shift: int) -> None:
    typo = str((int(number[position]) + shift) % 10)
    mistyped = number[:position] + typo + number[position + 1 :]
    with pytest.raises(ValidationError):
        validate_id_number(IdType.RESIDENT_ID, mistyped, today=TODAY)


@given(valid_resident_ids, st.integers(0, 15))
def test_swapping_two_different_neighbouring_digits_is_caught(number: str, position: int) -> None:
    first, second = number[position], number[position + 1]
    swapped = number[:position] + second + first + number[position + 2 :]
    if first != second:
        with pytest.raises(ValidationError):
            validate_id_number(IdType.RESIDENT_ID, swapped, today=TODAY)


@given(st.sampled_from(list(IdType)), st.text(max_size=30))
def test_arbitrary_input_never_crashes(id_type: IdType, text: str) -> None:
    try:
        normalized = validate_id_number(id_type, text, today=TODAY)
    except ValidationError as exc:
        assert exc.field == "id_number"
        assert exc.message in ERROR_MESSAGES
    else:
        assert normalized.isascii()
        assert normalized.isalnum()


# -- other documents -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_type", "number", "nationality", "expected"),
    [
        (IdType.PASSPORT, "E12345678", "CHN", "E12345678"),
        (IdType.PASSPORT, "ea1234567", "CHN", "EA1234567"),
        (IdType.PASSPORT, "G12345678", "CHN", "G12345678"),
        (IdType.PASSPORT, "X1234567", "USA", "X1234567"),
        (IdType.PASSPORT, "12345", "GBR", "12345"),
        (IdType.PASSPORT, "AB123456789012345", "DEU", "AB123456789012345"),
        (IdType.HK_MACAO_PERMIT, "H12345678", None, "H12345678"),
        (IdType.HK_MACAO_PERMIT, "m1234567890", None, "M1234567890"),
        (IdType.TAIWAN_PERMIT, "12345678", None, "12345678"),
        (IdType.TAIWAN_PERMIT, "1234567890(B)", None, "1234567890B"),
        (IdType.TAIWAN_PERMIT, "1234567890", None, "1234567890"),
        (IdType.FOREIGN_PERMANENT_ID, "USA110851204001", "USA", "USA110851204001"),
        (IdType.FOREIGN_PERMANENT_ID, foreign_card(), "USA", foreign_card()),
    ],
)
def test_valid_other_documents(
    id_type: IdType, number: str, nationality: str | None, expected: str
) -> None:
    assert validate_id_number(id_type, number, nationality=nationality, today=TODAY) == expected


@pytest.mark.parametrize(
    ("id_type", "number", "nationality", "code"),
    [
        (IdType.PASSPORT, "1234", None, "id_number.length"),
        (IdType.PASSPORT, "A" * 18, None, "id_number.length"),
        (IdType.PASSPORT, "E1234/678", None, "id_number.format"),
        (IdType.PASSPORT, "X1234567", "CHN", "id_number.format"),
        (IdType.HK_MACAO_PERMIT, "H1234567", None, "id_number.length"),
        (IdType.HK_MACAO_PERMIT, "X12345678", None, "id_number.format"),
        (IdType.HK_MACAO_PERMIT, "H1234567A", None, "id_number.format"),
        (IdType.TAIWAN_PERMIT, "1234567", None, "id_number.length"),
        (IdType.TAIWAN_PERMIT, "1234567A", None, "id_number.format"),
        (IdType.FOREIGN_PERMANENT_ID, "US1108512040011", None, "id_number.format"),
        (IdType.FOREIGN_PERMANENT_ID, "USA11085120400", None, "id_number.length"),
        (IdType.FOREIGN_PERMANENT_ID, "8" + foreign_card()[1:], None, "id_number.format"),
        (
            IdType.FOREIGN_PERMANENT_ID,
            foreign_card()[:17] + ("0" if foreign_card()[17] != "0" else "1"),
            None,
            "id_number.check_digit",
        ),
        (IdType.FOREIGN_PERMANENT_ID, foreign_card(province="99"), None, "id_number.region"),
        (
            IdType.FOREIGN_PERMANENT_ID,
            foreign_card(birth="20230230"),
            None,
            "id_number.birth_date_invalid",
        ),
    ],
)
def test_invalid_other_documents(
    id_type: IdType, number: str, nationality: str | None, code: str
) -> None:
    assert rejected(id_type, number, nationality=nationality) == code


def test_new_foreign_card_birth_date_must_match() -> None:
    code = rejected(IdType.FOREIGN_PERMANENT_ID, foreign_card(), birth_date=date(1985, 3, 13))
    assert code == "id_number.birth_date_mismatch"


# -- nationality, foreign guests, phone ----------------------------------------------------------


@pytest.mark.parametrize(
    ("nationality", "id_type", "code"),
    [
        ("USA", IdType.RESIDENT_ID, "nationality.mismatch"),
        ("CHN", IdType.FOREIGN_PERMANENT_ID, "nationality.mismatch"),
        ("US", IdType.PASSPORT, "nationality.format"),
        ("", IdType.PASSPORT, "nationality.required"),
    ],
)
def test_nationality_must_fit_the_document(nationality: str, id_type: IdType, code: str) -> None:
    with pytest.raises(ValidationError) as raised:
        validate_nationality(nationality, id_type)
    assert (raised.value.field, raised.value.message) == ("nationality", code)


def test_nationality_is_normalized() -> None:
    assert validate_nationality(" usa ", IdType.PASSPORT) == "USA"


@pytest.mark.parametrize(
    ("id_type", "nationality", "foreign"),
    [
        (IdType.RESIDENT_ID, "CHN", False),
        (IdType.PASSPORT, "CHN", False),
        (IdType.PASSPORT, "USA", True),
        (IdType.HK_MACAO_PERMIT, "CHN", True),
        (IdType.TAIWAN_PERMIT, "CHN", True),
        (IdType.FOREIGN_PERMANENT_ID, "DEU", True),
    ],
)
def test_is_foreign(id_type: IdType, nationality: str, foreign: bool) -> None:
    assert is_foreign(id_type, nationality) is foreign


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("13812345678", "13812345678"),
        ("138 1234-5678", "13812345678"),
        ("+8613812345678", "+8613812345678"),
        ("+14155550123", "+14155550123"),
        ("+852 9123 4567", "+85291234567"),
    ],
)
def test_valid_phones(phone: str, expected: str) -> None:
    assert validate_phone(phone) == expected


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        ("", "phone.required"),
        ("12812345678", "phone.format"),
        ("1381234567", "phone.format"),
        ("138123456789", "phone.format"),
        ("+86010123456", "phone.format"),
        ("+0123456789", "phone.format"),
        ("call me", "phone.format"),
    ],
)
def test_invalid_phones(phone: str, code: str) -> None:
    with pytest.raises(ValidationError) as raised:
        validate_phone(phone)
    assert (raised.value.field, raised.value.message) == ("phone", code)
    assert code in ERROR_MESSAGES


# -- masking ---------------------------------------------------------------------------------------


def test_the_mask_knows_which_documents_carry_a_birth_date() -> None:
    """agent.privacy masks these by name (it does not import the village); a renamed document
    type would otherwise fall back to the rule for short numbers and show its last two digits."""
    from agent.privacy import EIGHTEEN_DIGIT_DOCUMENTS, mask_document

    assert {IdType.RESIDENT_ID.value, IdType.FOREIGN_PERMANENT_ID.value} == EIGHTEEN_DIGIT_DOCUMENTS
    for id_type, number in (
        (IdType.RESIDENT_ID, resident_id()),
        (IdType.FOREIGN_PERMANENT_ID, foreign_card()),
    ):
        validate_id_number(id_type, number, today=TODAY)
        assert mask_document(id_type, number) == number[:2] + "*" * 16
