"""The vault (key file, encryption, blind index) and the masking rules."""

from __future__ import annotations

import base64
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from agent.errors import KioskError
from agent.privacy import (
    AGE_BANDS,
    PROVINCE_LEVEL_UNITS,
    InsecureKeyFileError,
    Vault,
    VaultError,
    age_band,
    mask_address,
    mask_document,
    mask_name,
    mask_phone,
)


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "personal-data.key"


@pytest.fixture
def vault(key_path: Path) -> Vault:
    return Vault.load_or_create(key_path)


# -- key file ------------------------------------------------------------------------------------


def test_key_file_is_created_owner_only_and_reused(key_path: Path) -> None:
    first = Vault.load_or_create(key_path)
    assert key_path.stat().st_mode & 0o777 == 0o600
    token = first.encrypt("110105194912310021")
    second = Vault.load_or_create(key_path)
    assert second.decrypt(token) == "110105194912310021"
    assert second.blind_index("id_number", "E12345678") == first.blind_index(
        "id_number", "E12345678"
    )
    # No temporary file is left beside the key.
    assert [p.name for p in key_path.parent.iterdir()] == [key_path.name]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused(key_path: Path, mode: int) -> None:
    Vault.load_or_create(key_path)
    key_path.chmod(mode)
    with pytest.raises(InsecureKeyFileError) as raised:
        Vault.load_or_create(key_path)
    assert isinstance(raised.value, KioskError)
    assert "chmod 600" in str(raised.value)


def test_corrupt_key_file_is_refused_not_replaced(key_path: Path) -> None:
    key_path.parent.mkdir(parents=True)
    key_path.write_bytes(base64.b64encode(b"short") + b"\n")
    key_path.chmod(0o600)
    with pytest.raises(VaultError, match="corrupt"):
        Vault.load_or_create(key_path)
    assert key_path.read_bytes() == base64.b64encode(b"short") + b"\n"


def test_racing_first_runs_agree_on_one_key(key_path: Path) -> None:
    vaults: list[Vault] = []
    lock = threading.Lock()

    def open_vault() -> None:
        made = Vault.load_or_create(key_path)
        with lock:
            vaults.append(made)

    threads = [threading.Thread(target=open_vault) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    token = vaults[0].encrypt("secret")
    assert all(v.decrypt(token) == "secret" for v in vaults)


# -- encryption ----------------------------------------------------------------------------------


@given(st.text(max_size=300))
def test_encryption_round_trips_any_text(text: str) -> None:
    vault = Vault(b"k" * 32)
    assert vault.decrypt(vault.encrypt(text)) == text


def test_tokens_use_a_fresh_nonce_and_hide_the_plaintext(vault: Vault) -> None:
    first, second = vault.encrypt("13812345678"), vault.encrypt("13812345678")
    assert first != second
    assert "13812345678" not in first
    assert first.startswith("v1.")


def test_tampered_token_is_rejected_clearly(vault: Vault) -> None:
    token = vault.encrypt("张三丰")
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    raw[20] ^= 0x01
    tampered = "v1." + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(VaultError, match="failed authentication"):
        vault.decrypt(tampered)


@pytest.mark.parametrize("token", ["", "v2.AAAA", "v1.!!!not-base64!!!", "v1.AAAA", "张三"])
def test_malformed_tokens_are_rejected(vault: Vault, token: str) -> None:
    with pytest.raises(VaultError):
        vault.decrypt(token)


def test_a_token_from_another_key_is_rejected(vault: Vault) -> None:
    other = Vault(b"x" * 32)
    with pytest.raises(VaultError, match="another key"):
        vault.decrypt(other.encrypt("110105194912310021"))


# -- blind index ---------------------------------------------------------------------------------


def test_blind_index_normalizes_case_and_spaces(vault: Vault) -> None:
    assert vault.blind_index("id_number", "11010519491231002x") == vault.blind_index(
        "id_number", " 110105 19491231 002X "
    )


def test_blind_index_is_keyed_and_separated_by_kind(vault: Vault) -> None:
    index = vault.blind_index("id_number", "E12345678")
    assert len(index) == 64
    assert "E12345678" not in index
    assert index != vault.blind_index("passport", "E12345678")
    assert index != vault.blind_index("id_number", "E12345679")
    assert index != Vault(b"y" * 32).blind_index("id_number", "E12345678")


# -- masking -------------------------------------------------------------------------------------


def test_masking_examples() -> None:
    assert mask_document("resident_id", "110101199003070078") == "11****************"
    assert mask_document("foreign_permanent_id", "911840198511200428") == "91****************"
    assert mask_document("passport", "E12345678") == "*******78"
    assert mask_document("hk_macao_permit", "H12345678") == "*******78"
    assert mask_document("taiwan_permit", "12345678") == "******78"
    assert mask_document("foreign_permanent_id", "USA123456789012") == "*************12"
    # A type prefix may give its letters away: fewer than six digits would stay hidden.
    assert mask_document("passport", "D1234567") == "********"
    assert mask_document("passport", "EA1234567") == "*********"
    assert mask_document("passport", "PAB123987") == "*********"
    assert mask_document("passport", "1234567") == "*******"
    assert mask_document("passport", "123") == "***"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三丰") == "张*丰"
    assert mask_name("李四") == "李*"
    assert mask_name("欧阳娜娜") == "欧**娜"
    assert mask_name("王") == "*"
    assert mask_address("浙江省杭州市西湖区某路1号") == "浙江省***"
    assert mask_address("北京市朝阳区幸福路1号") == "北京市***"
    assert mask_address("广西壮族自治区南宁市青秀区") == "广西壮族自治区***"
    assert mask_address("香港特别行政区九龙弥敦道1号") == "香港特别行政区***"
    # A city that is not a province-level unit, a county, a village: nothing.
    assert mask_address("杭州市西湖区文三路100号") == "***"
    assert mask_address("溪头村12号") == "***"
    assert mask_address("Calle Mayor 1, Madrid") == "***"


def test_there_are_34_province_level_units() -> None:
    assert len(set(PROVINCE_LEVEL_UNITS)) == 34


@given(st.text(alphabet="0123456789X", min_size=18, max_size=18))
def test_an_eighteen_character_number_shows_only_its_province(number: str) -> None:
    for id_type in ("resident_id", "foreign_permanent_id"):
        assert mask_document(id_type, number) == number[:2] + "*" * 16


@given(
    st.sampled_from(["passport", "hk_macao_permit", "taiwan_permit", "foreign_permanent_id"]),
    st.from_regex(r"[A-Z]{0,3}[0-9A-Z]{2,17}", fullmatch=True),
)
def test_other_numbers_show_two_characters_only_with_six_hidden_after_their_letters(
    id_type: str, number: str
) -> None:
    assume(not (id_type == "foreign_permanent_id" and len(number) == 18))
    masked = mask_document(id_type, number)
    assert len(masked) == len(number)
    shown = [i for i, ch in enumerate(masked) if ch != "*"]
    assert shown in ([], [len(number) - 2, len(number) - 1])
    lead = len(number) - len(number.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    if shown:
        assert masked[-2:] == number[-2:]
        assert len(number) - 2 - lead >= 6
    else:
        assert len(number) - 2 - lead < 6


@given(st.text(max_size=60))
def test_an_address_shows_a_province_level_unit_or_nothing(address: str) -> None:
    masked = mask_address(address)
    assert masked == "***" or (
        masked.removesuffix("***") in PROVINCE_LEVEL_UNITS
        and address.strip().startswith(masked.removesuffix("***"))
    )


@pytest.mark.parametrize(
    ("birth", "day", "band"),
    [
        (date(2008, 12, 2), date(2026, 12, 1), "0-17"),
        (date(2008, 12, 1), date(2026, 12, 1), "18-29"),
        (date(1996, 12, 2), date(2026, 12, 1), "18-29"),
        (date(1996, 12, 1), date(2026, 12, 1), "30-39"),
        (date(1957, 12, 1), date(2026, 12, 1), "60-69"),
        (date(1956, 12, 1), date(2026, 12, 1), "70+"),
        (date(2000, 2, 29), date(2018, 2, 28), "0-17"),  # a leap-day birthday comes on 1 March
        (date(2000, 2, 29), date(2018, 3, 1), "18-29"),
        (date(2026, 12, 3), date(2026, 12, 1), "0-17"),  # born after a back-dated check-in
    ],
)
def test_age_bands(birth: date, day: date, band: str) -> None:
    assert age_band(birth, day) == band


@pytest.mark.parametrize(
    "day",
    [date(2026, 12, 2), date(2028, 2, 29), date(2027, 3, 1), date(2030, 1, 1), date(2029, 12, 31)],
)
def test_every_band_holds_at_least_3652_birth_dates(day: date) -> None:
    """The bound in agent.privacy's docstring rests on this."""
    counts: dict[str, int] = {}
    birth = day
    while birth >= date(1900, 1, 1):
        band = age_band(birth, day)
        counts[band] = counts.get(band, 0) + 1
        birth -= timedelta(days=1)
    assert set(counts) == {f"{lo}+" if hi is None else f"{lo}-{hi}" for lo, hi in AGE_BANDS}
    assert min(counts.values()) >= 3652, counts


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_phone_masking_never_reveals_the_middle(phone: str) -> None:
    masked = mask_phone(phone)
    assert masked == phone[:3] + "****" + phone[7:]


@given(st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=2, max_size=12))
def test_name_masking_reveals_at_most_the_ends(name: str) -> None:
    masked = mask_name(name)
    assert len(masked) == len(name)
    assert masked[0] == name[0]
    assert set(masked[1 : len(name) - 1]) <= {"*"}
    assert masked[-1] == ("*" if len(name) == 2 else name[-1])
