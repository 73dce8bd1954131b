"""HTTPS for the web UI: a configured certificate, or one the agent makes for itself.

Phones give camera and microphone only to a secure origin, so live video calls need HTTPS.
With ``web.https = true`` and ``web.tls_cert``/``web.tls_key`` set, those files are checked and
served. Without them the agent makes a self-signed certificate at first start in
``<data_dir>/secrets/`` (``web-tls.crt``, and ``web-tls.key`` with mode 0600): an EC P-256 key,
the names visitors use (``web.allowed_hosts``, ``web.host``, 127.0.0.1, ::1 and localhost) as
subject alternative names, valid for two years (under the 825 days iOS accepts). It is reused at
every start and made again only when it is missing, unreadable, expired (or about to be), or no
longer names every configured host. firmware_config/TLS.md says how to use a real certificate.

Every problem is one ``KioskError`` with the file and what is wrong, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.config import WebConfig
from agent.errors import KioskError

log = logging.getLogger(__name__)

CERT_NAME = "web-tls.crt"
KEY_NAME = "web-tls.key"
VALIDITY = dt.timedelta(days=730)
# A certificate this close to its end is made again at start, so a kiosk that runs for weeks
# without a restart does not pass the date.
RENEW_BEFORE = dt.timedelta(days=30)
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
_ALWAYS = ("127.0.0.1", "::1", "localhost")


class TlsError(KioskError):
    """A certificate or key that cannot be served."""


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    self_signed: bool
    not_after: dt.datetime
    names: tuple[str, ...]  # the subject alternative names


def certificate_names(web: WebConfig) -> tuple[str, ...]:
    """The names and addresses a self-signed certificate must carry."""
    names: list[str] = []
    for name in (*web.allowed_hosts, web.host, *_ALWAYS):
        name = name.strip().lower().strip("[]")
        if name and name not in _WILDCARD_HOSTS and name != "testserver" and name not in names:
            names.append(name)
    return tuple(names)


def prepare_tls(web: WebConfig, secrets_dir: Path, *, now: dt.datetime | None = None) -> TlsFiles:
    """The certificate and key to serve for ``web`` (which must have ``https`` on)."""
    now = now or dt.datetime.now(dt.UTC)
    if web.tls_cert is not None and web.tls_key is not None:
        files = _check_configured(web.tls_cert, web.tls_key, now)
        log.info("serving HTTPS with %s (valid until %s)", files.cert, files.not_after.date())
        return files
    cert_path, key_path = secrets_dir / CERT_NAME, secrets_dir / KEY_NAME
    wanted = certificate_names(web)
    reason = _reason_to_renew(cert_path, key_path, wanted, now)
    if reason is None:
        files = _load_pair(cert_path, key_path, self_signed=True)
        log.info("serving HTTPS with the kiosk's own certificate (valid until %s)", files.not_after)
        return files
    log.info("making a self-signed certificate for HTTPS: %s", reason)
    return make_self_signed(cert_path, key_path, wanted, now=now)


def make_self_signed(
    cert_path: Path, key_path: Path, names: tuple[str, ...], *, now: dt.datetime
) -> TlsFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "kiosk")])
    alternative: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative.append(x509.DNSName(name))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_private(key_path, key_pem)
        _write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    except OSError as exc:
        raise TlsError(f"cannot write the HTTPS certificate in {cert_path.parent}: {exc}") from exc
    return TlsFiles(cert_path, key_path, True, certificate.not_valid_after_utc, names)


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write through a new file renamed into place: never a half-written key, never a moment
    where the key is readable by others."""
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def _reason_to_renew(
    cert_path: Path, key_path: Path, names: tuple[str, ...], now: dt.datetime
) -> str | None:
    if not cert_path.exists() or not key_path.exists():
        return "none yet"
    try:
        files = _load_pair(cert_path, key_path, self_signed=True)
    except TlsError as exc:
        log.warning("the kiosk's own certificate is unusable and is made again: %s", exc)
        return "the old one is unusable"
    if files.not_after - RENEW_BEFORE <= now:
        return f"the old one ends on {files.not_after.date()}"
    missing = [name for name in names if name not in files.names]
    if missing:
        return f"the old one does not name {', '.join(missing)}"
    return None


def _check_configured(cert_path: Path, key_path: Path, now: dt.datetime) -> TlsFiles:
    files = _load_pair(cert_path, key_path, self_signed=False)
    if files.not_after <= now:
        # Served all the same: the cameras and alerts must not stop for a certificate, and
        # phones tell their users; the log says what to do.
        log.error(
            "web.tls_cert %s expired on %s: renew it (firmware_config/TLS.md)",
            cert_path,
            files.not_after.date(),
        )
    return files


def _load_pair(cert_path: Path, key_path: Path, *, self_signed: bool) -> TlsFiles:
    certificate = _read_certificate(cert_path)
    key = _read_key(key_path)
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise TlsError(f"the key {key_path} does not belong to the certificate {cert_path}")
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        alternative = extension.value
        names = tuple(
            [name.lower() for name in alternative.get_values_for_type(x509.DNSName)]
            + [str(address) for address in alternative.get_values_for_type(x509.IPAddress)]
        )
    except x509.ExtensionNotFound:
        names = ()
    return TlsFiles(cert_path, key_path, self_signed, certificate.not_valid_after_utc, names)


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc


def _read_certificate(path: Path) -> x509.Certificate:
    data = _read_bytes(path, "certificate")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise TlsError(f"{path} is not a PEM certificate") from exc


def _read_key(path: Path) -> PrivateKeyTypes:
    data = _read_bytes(path, "key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise TlsError(f"the key {path} has a passphrase; the agent needs it without") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TlsError(f"{path} is not a PEM private key") from exc
    return key
