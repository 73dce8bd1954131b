"""Protection of personal data at rest: the vault key, field encryption, blind indexes, masking.

Guest names, ID numbers, phone numbers, home addresses and birth dates are stored only as vault
tokens. A token is ``v1.<base64url(nonce || AES-256-GCM ciphertext)>``: the version prefix lets a
later key or algorithm coexist with old rows. Exact-match search goes through a *blind index*: a
keyed HMAC-SHA256 of the normalized value, so the database can answer "which rows carry this ID
number" without decrypting every row. Both keys are derived with HKDF from one random master key
kept in a 0600 file outside the database.

What a stolen database file (or a masked list) still shows, and what that is worth: the masked
forms below, and whatever a service keeps in clear for filtering (a guest's sex, an age band,
nationality, document type, dates of stay). The masks are chosen so that, with all of that and
the full area code as well, at least 10^6 ID numbers remain possible for every person:

- an 18-character number with a birth date inside (resident ID, 2023 foreigner's card) shows
  its first two characters only; with an age band (>= 10 years of birth dates, >= 3652 days)
  and the sex (half the 1000 sequence numbers) that leaves >= 3652 x 500 = 1.8 million, the
  check character being hidden too (it would divide them by 11);
- any other document number shows at most its last two characters, and only when at least six
  digits stay hidden after its leading letters (which a type prefix may give away); shorter
  numbers show nothing;
- an address shows its province-level unit only (a county would give the area code).

The key is what keeps the rest: without it a token reveals nothing and a blind index can only be
tested by someone who can already compute it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
from datetime import date
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agent.errors import KioskError

log = logging.getLogger(__name__)

_MASTER_KEY_BYTES = 32
_NONCE_BYTES = 12
_FORMAT_V1 = "v1."
# Sealed binary payloads carry their own prefix (and associated data) so a text token and a
# binary payload can never be mistaken for each other.
_BYTES_V1 = b"vk1:"
_ENCRYPTION_INFO = b"village-kiosk personal data encryption v1"
_INDEX_INFO = b"village-kiosk personal data blind index v1"


class VaultError(KioskError):
    """The vault key is unusable or a token cannot be decrypted."""


class InsecureKeyFileError(VaultError):
    """The key file can be read or written by users other than its owner."""


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def normalize_for_index(value: str) -> str:
    """Upper-case with every whitespace removed: what a blind index is computed over."""
    return "".join(value.split()).upper()


class Vault:
    """Encrypts personal fields and computes their blind indexes; built from the master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != _MASTER_KEY_BYTES:
            raise VaultError(f"the vault key must be {_MASTER_KEY_BYTES} bytes")
        self._master = master_key
        self._aead = AESGCM(_derive(master_key, _ENCRYPTION_INFO))
        self._index_key = _derive(master_key, _INDEX_INFO)

    @classmethod
    def load_or_create(cls, key_path: Path) -> Vault:
        """Read the master key, creating it (mode 0600) on the first run.

        A key file that group or others may access is refused rather than silently fixed: it
        means the key may already have leaked, which an operator must know about.
        """
        try:
            return cls(_read_key_file(key_path))
        except FileNotFoundError:
            pass
        _create_key_file(key_path)
        return cls(_read_key_file(key_path))

    def encrypt(self, plaintext: str) -> str:
        sealed = self._seal(plaintext.encode("utf-8"), _FORMAT_V1.encode())
        return _FORMAT_V1 + base64.urlsafe_b64encode(sealed).decode("ascii")

    def decrypt(self, token: str) -> str:
        if not token.startswith(_FORMAT_V1):
            raise VaultError("not a vault token (unknown version prefix)")
        try:
            raw = base64.urlsafe_b64decode(token[len(_FORMAT_V1) :].encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise VaultError("vault token is not valid base64") from exc
        return self._open(raw, _FORMAT_V1.encode()).decode("utf-8")

    def seal(self, data: bytes) -> bytes:
        """Binary sibling of ``encrypt`` for payloads kept at rest (outbox reports)."""
        return _BYTES_V1 + self._seal(data, _BYTES_V1)

    def unseal(self, token: bytes) -> bytes:
        if not token.startswith(_BYTES_V1):
            raise VaultError("not a sealed payload (unknown version prefix)")
        return self._open(token[len(_BYTES_V1) :], _BYTES_V1)

    def _seal(self, data: bytes, associated: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, associated)

    def _open(self, raw: bytes, associated: bytes) -> bytes:
        if len(raw) < _NONCE_BYTES + 16:
            raise VaultError("vault token is truncated")
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], associated)
        except InvalidTag as exc:
            raise VaultError(
                "vault token failed authentication: it was altered or sealed with another key"
            ) from exc

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for another part of the agent (e.g. signing web tokens), derived from
        the master key so there is one secret to back up; ``purpose`` keeps keys apart."""
        return _derive(self._master, b"village-kiosk derived key v1: " + purpose.encode("utf-8"))

    def blind_index(self, kind: str, value: str) -> str:
        """Keyed HMAC of the normalized value; ``kind`` separates the index spaces so equal
        strings in different fields (a name and a passport number) do not correlate."""
        message = kind.encode("utf-8") + b"\x00" + normalize_for_index(value).encode("utf-8")
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def _read_key_file(key_path: Path) -> bytes:
    """The master key; FileNotFoundError propagates so the caller can create it."""
    try:
        fd = os.open(key_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise VaultError(f"cannot open the vault key {key_path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise VaultError(f"the vault key {key_path} is not a regular file")
        if info.st_mode & 0o077:
            raise InsecureKeyFileError(
                f"the vault key {key_path} has mode {stat.S_IMODE(info.st_mode):04o}; "
                "it must be readable by its owner only (chmod 600) — check whether it leaked"
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            text = handle.read(1024)
    except OSError as exc:
        raise VaultError(f"cannot read the vault key {key_path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VaultError(f"the vault key {key_path} is corrupt (not base64)") from exc
    if len(key) != _MASTER_KEY_BYTES:
        raise VaultError(f"the vault key {key_path} is corrupt (wrong length)")
    return key


def _create_key_file(key_path: Path) -> None:
    """Write a new key atomically: a crash never leaves a half-written key, and when two
    processes race the first link wins and both end up using the same key."""
    try:
        key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = key_path.with_name(f".{key_path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(_MASTER_KEY_BYTES)) + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            # umask may have narrowed the mode further, never widened it; make it exact.
            temporary.chmod(0o600)
            try:
                os.link(temporary, key_path)
            except FileExistsError:
                return
            log.info("created a new personal-data vault key at %s", key_path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    except OSError as exc:
        raise VaultError(f"cannot create the vault key {key_path}: {exc.strerror}") from exc


def _mask_middle(value: str, head: int, tail: int) -> str:
    """Keep ``head``/``tail`` characters and star the rest; values too short to hide at least
    four characters that way keep at most a quarter of their length at each end instead."""
    length = len(value)
    if length < head + tail + 4:
        head = tail = length // 4
    hidden = length - head - tail
    return value[:head] + "*" * hidden + (value[length - tail :] if tail else "")


# Documents whose 18-character number embeds the birth date and a sex digit (GB 11643 layout);
# the names are the values of agent.village.identity.IdType.
EIGHTEEN_DIGIT_DOCUMENTS = frozenset({"resident_id", "foreign_permanent_id"})
_MIN_HIDDEN_DIGITS = 6
_SHOWN_TAIL = 2


def mask_document(id_type: str, number: str) -> str:
    """The masked form of a document number, the same length as the number.

    ``resident_id`` ``330106199003071232`` -> ``33****************``; ``passport``
    ``E12345678`` -> ``*******78``; ``passport`` ``D1234567`` -> ``********``.
    """
    value = number.strip()
    if id_type in EIGHTEEN_DIGIT_DOCUMENTS and len(value) == 18:
        return value[:2] + "*" * 16
    # Leading letters often name the document type or the holder's nationality, so they are
    # not counted as hidden: only what follows them is.
    lead = len(value) - len(value.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    if len(value) - lead - _SHOWN_TAIL >= _MIN_HIDDEN_DIGITS:
        return "*" * (len(value) - _SHOWN_TAIL) + value[-_SHOWN_TAIL:]
    return "*" * len(value)


def mask_phone(value: str) -> str:
    """``13812345678`` -> ``138****5678``."""
    return _mask_middle(value.strip(), 3, 4)


def mask_name(value: str) -> str:
    """``张三丰`` -> ``张*丰``, ``李四`` -> ``李*``; a one-character name is fully hidden."""
    name = value.strip()
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


# Province-level units (GB/T 2260) as an address starts with them.
PROVINCE_LEVEL_UNITS = (
    "北京市", "天津市", "上海市", "重庆市",
    "河北省", "山西省", "辽宁省", "吉林省", "黑龙江省", "江苏省", "浙江省", "安徽省", "福建省",
    "江西省", "山东省", "河南省", "湖北省", "湖南省", "广东省", "海南省", "四川省", "贵州省",
    "云南省", "陕西省", "甘肃省", "青海省", "台湾省",
    "内蒙古自治区", "广西壮族自治区", "西藏自治区", "宁夏回族自治区", "新疆维吾尔自治区",
    "香港特别行政区", "澳门特别行政区",
)  # fmt: skip


def mask_address(value: str) -> str:
    """Only the province-level unit the address starts with: ``浙江省***``; anything else,
    a county or town included (it gives away the ID number's area code), is ``***``."""
    address = value.strip()
    for unit in PROVINCE_LEVEL_UNITS:
        if address.startswith(unit):
            return unit + "***"
    return "***"


# Each band spans at least ten years of birth dates, so a band narrows a birth date to no fewer
# than 3652 days. Changing them changes the bound in the module docstring.
AGE_BANDS: tuple[tuple[int, int | None], ...] = (
    (0, 17), (18, 29), (30, 39), (40, 49), (50, 59), (60, 69), (70, None),
)  # fmt: skip


def age_on(birth_date: date, day: date) -> int:
    """Whole years of age on ``day``; someone born on 29 February ages on 1 March."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def age_band(birth_date: date, day: date) -> str:
    """``0-17``, ``18-29``, ``30-39`` … ``70+``: the age on ``day`` without the birth date."""
    age = max(0, age_on(birth_date, day))
    for low, high in AGE_BANDS:
        if high is None or age <= high:
            return f"{low}+" if high is None else f"{low}-{high}"
    raise AssertionError("the last band is open")  # pragma: no cover
