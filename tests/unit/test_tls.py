"""The web UI's HTTPS certificate: made, reused, renewed, or a configured one checked."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.config import WebConfig
from agent.tls import CERT_NAME, KEY_NAME, TlsError, certificate_names, prepare_tls

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def https(**web: object) -> WebConfig:
    return WebConfig(**{"https": True, **web})


def sans(path: Path) -> set[str]:
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*names.get_values_for_type(x509.DNSName)} | {
        str(address) for address in names.get_values_for_type(x509.IPAddress)
    }


def test_a_self_signed_certificate_names_every_host_and_keeps_its_key_private(
    tmp_path: Path,
) -> None:
    web = https(host="0.0.0.0", allowed_hosts=["kiosk.qingshan.lan", "192.168.8.20"])
    files = prepare_tls(web, tmp_path / "secrets", now=NOW)
    assert files.self_signed
    assert (files.cert, files.key) == (
        tmp_path / "secrets" / CERT_NAME,
        tmp_path / "secrets" / KEY_NAME,
    )
    assert sans(files.cert) == {
        "kiosk.qingshan.lan",
        "192.168.8.20",
        "127.0.0.1",
        "::1",
        "localhost",
    }
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate(files.cert.read_bytes())
    lifetime = certificate.not_valid_after_utc - NOW
    assert dt.timedelta(days=700) < lifetime <= dt.timedelta(days=825)  # iOS refuses longer
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_certificate_is_reused_and_renewed_only_when_needed(tmp_path: Path) -> None:
    web = https(allowed_hosts=["kiosk.lan"])
    first = prepare_tls(web, tmp_path, now=NOW).cert.read_bytes()
    assert prepare_tls(web, tmp_path, now=NOW + dt.timedelta(days=300)).cert.read_bytes() == first
    renewed = prepare_tls(web, tmp_path, now=NOW + dt.timedelta(days=729)).cert.read_bytes()
    assert renewed != first
    # A new name to answer to makes a certificate that names it.
    again = prepare_tls(https(allowed_hosts=["kiosk.lan", "kiosk2.lan"]), tmp_path, now=NOW)
    assert "kiosk2.lan" in sans(again.cert)


def test_a_damaged_own_certificate_is_made_again(tmp_path: Path) -> None:
    web = https()
    files = prepare_tls(web, tmp_path, now=NOW)
    files.key.write_text("not a key")
    remade = prepare_tls(web, tmp_path, now=NOW)
    serialization.load_pem_private_key(remade.key.read_bytes(), password=None)


def _own_pair(
    directory: Path, *, days: int = 90, key: ec.EllipticCurvePrivateKey | None = None
) -> tuple[Path, Path]:
    signing = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "kiosk.county.example")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signing.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("kiosk.county.example"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(signing, hashes.SHA256())
    )
    cert_path, key_path = directory / "county.crt", directory / "county.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        (key or signing).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_a_configured_certificate_is_used_as_it_is(tmp_path: Path) -> None:
    cert_path, key_path = _own_pair(tmp_path)
    files = prepare_tls(https(tls_cert=cert_path, tls_key=key_path), tmp_path / "secrets", now=NOW)
    assert (files.cert, files.key, files.self_signed) == (cert_path, key_path, False)
    assert not (tmp_path / "secrets" / CERT_NAME).exists()


@pytest.mark.parametrize("problem", ["missing", "garbage", "wrong_key", "encrypted"])
def test_a_broken_configured_certificate_is_one_clear_error(tmp_path: Path, problem: str) -> None:
    cert_path, key_path = _own_pair(tmp_path)
    if problem == "missing":
        key_path.unlink()
        expected = "cannot read the key"
    elif problem == "garbage":
        cert_path.write_text("-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n")
        expected = "is not a PEM certificate"
    elif problem == "wrong_key":
        other = tmp_path / "other"
        other.mkdir()
        _, key_path = _own_pair(other)
        expected = "does not belong to the certificate"
    else:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret-passphrase"),
            )
        )
        expected = "has a passphrase"
    with pytest.raises(TlsError, match=expected):
        prepare_tls(https(tls_cert=cert_path, tls_key=key_path), tmp_path / "secrets", now=NOW)


def test_certificate_names_skip_wildcards_and_keep_order() -> None:
    web = https(host="0.0.0.0", allowed_hosts=["Kiosk.LAN", "testserver", "127.0.0.1"])
    assert certificate_names(web) == ("kiosk.lan", "127.0.0.1", "::1", "localhost")
