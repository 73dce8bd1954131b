"""Reports sealed end to end to the command centre: only the holder of its private key reads them.

A registration report carries a guest's full identity. TLS protects it only hop by hop: the
broker, anyone who may subscribe there, and a plaintext link in between would all read it. So
the report body is encrypted to the command centre's X25519 public key before it leaves the
kiosk, as an ECIES-style sealed box:

1. a fresh (ephemeral) X25519 key pair per message; ``shared = X25519(ephemeral, centre)``;
2. ``key = HKDF-SHA256(shared, salt = none, info = INFO || ephemeral public || centre public)``,
   32 bytes (binding both public keys, so a key is never reused across recipients or messages);
3. ``AES-256-GCM(key, 12-byte random nonce, plaintext = the report JSON,
   associated data = AAD_PREFIX || device || 0x00 || message id || 0x00 || kind)``.

On the wire (``<prefix>/<device>/report/<kind>``) the message keeps the non-personal metadata
outside, so the centre can deduplicate and see ``seq`` gaps before (or without) decrypting::

    {"id": "9e41…", "seq": 813, "kind": "registration", "ts": "2026-11-29T09:30:00.000Z",
     "sealed": {"v": 1, "alg": "X25519-HKDF-SHA256-AES-256-GCM",
                "epk": "<base64>", "nonce": "<base64>", "ct": "<base64>"}}

``ct`` opens to the whole report message (``id``, ``seq``, ``kind``, ``ts``, ``data``); the
associated data binds it to the kiosk, the id and the kind, so a sealed body moved to another
kiosk's topic, message id or report kind no longer opens. The kiosk keeps no private key: once
sealed, a report can be read only at the centre. docs/MQTT.md has the same description for the
centre's side.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from agent.alerts.payloads import ReportMessage
from agent.errors import ConfigError, KioskError

VERSION = 1
ALGORITHM = "X25519-HKDF-SHA256-AES-256-GCM"
INFO = b"village-kiosk sealed report v1"
AAD_PREFIX = b"village-kiosk report v1\x00"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_TAG_BYTES = 16
# A PEM public key is about 113 bytes; anything this large is not one.
_MAX_KEY_FILE_BYTES = 16 * 1024


class SealingError(KioskError):
    """A report cannot be sealed, or a sealed report cannot be opened."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SealedBox(_Model):
    """The encrypted part of a sealed report (base64, RFC 4648 with padding)."""

    v: Literal[1]
    alg: Literal["X25519-HKDF-SHA256-AES-256-GCM"]
    epk: str
    nonce: str
    ct: str


class SealedReport(_Model):
    """A report as published: metadata in clear for deduplication, the report sealed."""

    id: str
    seq: int
    kind: str
    ts: str
    sealed: SealedBox


def associated_data(device: str, message_id: str, kind: str) -> bytes:
    return b"\x00".join(
        [AAD_PREFIX + device.encode("utf-8"), message_id.encode("utf-8"), kind.encode("utf-8")]
    )


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=INFO + ephemeral + recipient
    )
    return hkdf.derive(shared)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(field: str, text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise SealingError(f"sealed report: {field} is not valid base64") from exc


def load_public_key(path: Path, field: str = "mqtt.report_public_key") -> X25519PublicKey:
    """The centre's public key from a PEM file (``openssl pkey -pubout``); ConfigError if not."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{field}: cannot read {path} ({exc.strerror})"]) from exc
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise ConfigError([f"{field}: {path} is too large to be a PEM public key"])
    if b"PRIVATE KEY" in data:
        # The centre's private key must never sit on a kiosk; say so rather than use it.
        raise ConfigError(
            [
                f"{field}: {path} holds a private key; the kiosk needs only the command"
                " centre's public key (openssl pkey -in centre.key -pubout -out centre.pub),"
                " and the private key must not stay on the kiosk"
            ]
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            [f"{field}: {path} is not a PEM public key (make one with openssl pkey -pubout)"]
        ) from exc
    if not isinstance(key, X25519PublicKey):
        raise ConfigError(
            [
                f"{field}: {path} is a {type(key).__name__.removeprefix('_')}, not an X25519"
                " public key (openssl genpkey -algorithm X25519)"
            ]
        )
    return key


def load_private_key(path: Path) -> X25519PrivateKey:
    """The centre's private key from an unencrypted PEM file (``openssl genpkey``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"report key: cannot read {path} ({exc.strerror})"]) from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError([f"report key: {path} is not an unencrypted PEM private key"]) from exc
    if not isinstance(key, X25519PrivateKey):
        raise ConfigError([f"report key: {path} is not an X25519 private key"])
    return key


class ReportSealer:
    """Seals report messages of one kiosk to the command centre's public key."""

    def __init__(self, recipient: X25519PublicKey, device: str) -> None:
        self._recipient = recipient
        self._recipient_raw = _raw(recipient)
        self._device = device

    @classmethod
    def from_file(cls, path: Path, device: str) -> ReportSealer:
        return cls(load_public_key(path), device)

    def seal(self, message: ReportMessage) -> bytes:
        """The wire form of ``message``: its metadata in clear, the whole message sealed."""
        ephemeral = X25519PrivateKey.generate()
        ephemeral_raw = _raw(ephemeral.public_key())
        try:
            shared = ephemeral.exchange(self._recipient)
        except ValueError as exc:  # a low-order "public key" gives an all-zero secret
            raise SealingError("the command centre's report key is not usable") from exc
        key = _derive(shared, ephemeral_raw, self._recipient_raw)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plaintext = message.model_dump_json().encode("utf-8")
        ciphertext = AESGCM(key).encrypt(
            nonce, plaintext, associated_data(self._device, message.id, message.kind)
        )
        sealed = SealedReport(
            id=message.id,
            seq=message.seq,
            kind=message.kind,
            ts=message.ts,
            sealed=SealedBox(
                v=VERSION,
                alg=ALGORITHM,
                epk=_b64(ephemeral_raw),
                nonce=_b64(nonce),
                ct=_b64(ciphertext),
            ),
        )
        return sealed.model_dump_json().encode("utf-8")


def open_report(private_key: X25519PrivateKey, device: str, payload: bytes) -> ReportMessage:
    """The command centre's side: check and decrypt a sealed report from ``device``."""
    try:
        envelope = SealedReport.model_validate_json(payload)
    except PydanticValidationError as exc:
        raise SealingError("not a sealed report of a version this centre knows") from exc
    box = envelope.sealed
    ephemeral_raw = _unb64("epk", box.epk)
    nonce = _unb64("nonce", box.nonce)
    ciphertext = _unb64("ct", box.ct)
    if len(ephemeral_raw) != _KEY_BYTES or len(nonce) != _NONCE_BYTES:
        raise SealingError("sealed report: epk or nonce has the wrong length")
    if len(ciphertext) < _TAG_BYTES:
        raise SealingError("sealed report: ciphertext is truncated")
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw))
    except ValueError as exc:
        raise SealingError("sealed report: the ephemeral key is not usable") from exc
    key = _derive(shared, ephemeral_raw, _raw(private_key.public_key()))
    try:
        plaintext = AESGCM(key).decrypt(
            nonce, ciphertext, associated_data(device, envelope.id, envelope.kind)
        )
    except InvalidTag as exc:
        raise SealingError(
            "sealed report failed authentication: sealed to another key, altered, or moved to"
            " another kiosk, id or kind"
        ) from exc
    try:
        message = ReportMessage.model_validate_json(plaintext)
    except PydanticValidationError as exc:
        raise SealingError("sealed report opened but holds no report message") from exc
    if (message.id, message.seq, message.kind, message.ts) != (
        envelope.id,
        envelope.seq,
        envelope.kind,
        envelope.ts,
    ):
        raise SealingError("sealed report: the metadata outside differs from the sealed report")
    return message
