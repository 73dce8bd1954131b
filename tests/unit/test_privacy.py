"""The vault (key file, encryption, blind index) and the masking rules."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import KioskError
from agent.privacy import (
    InsecureKeyFileError,
    Vault,
    VaultError,
    mask_address,
    mask_id_number,
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
    assert mask_id_number("110101199003070078") == "110***********0078"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三丰") == "张*丰"
    assert mask_name("李四") == "李*"
    assert mask_name("欧阳娜娜") == "欧**娜"
    assert mask_name("王") == "*"
    assert mask_id_number("E12345678") == "E1*****78"
    assert mask_id_number("1234") == "1**4"
    assert mask_id_number("123") == "***"
    assert mask_address("浙江省杭州市西湖区某路1号") == "浙江省杭州市***"


def _hidden_enough(masked: str, original: str) -> None:
    length = len(original)
    assert len(masked) == length
    hidden = [i for i, ch in enumerate(masked) if ch == "*"]
    # Whatever the length, most of a short value and at least four characters of a long one
    # are hidden, and the hidden characters are one contiguous middle run.
    assert len(hidden) >= (4 if length >= 11 else (length + 1) // 2)
    if hidden:
        assert hidden == list(range(hidden[0], hidden[-1] + 1))


@given(st.text(alphabet="0123456789X", min_size=18, max_size=18))
def test_id_masking_never_reveals_the_middle(number: str) -> None:
    masked = mask_id_number(number)
    assert masked[3:14] == "*" * 11
    assert masked[:3] == number[:3]
    assert masked[14:] == number[14:]


@given(st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), max_size=40))
def test_id_masking_hides_most_of_any_value(number: str) -> None:
    _hidden_enough(mask_id_number(number), number)


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
