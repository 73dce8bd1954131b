"""The real agent serving its web UI over HTTPS: its own certificate, kept across restarts, a
configured one, and a broken one refused at start with one clear line."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.tls import CERT_NAME, KEY_NAME
from tests.fixtures.agent import AgentProcess

pytestmark = pytest.mark.integration

HOSTS = ["kiosk.qingshan.lan", "127.0.0.1", "localhost"]


def sections(**web: Any) -> dict[str, Any]:
    return {"device": {"id": "https-kiosk"}, "web": {"https": True, "allowed_hosts": HOSTS, **web}}


def served_certificate(agent: AgentProcess) -> x509.Certificate:
    pem = ssl.get_server_certificate(("127.0.0.1", agent.port), timeout=10)
    return x509.load_pem_x509_certificate(pem.encode())


def names(certificate: x509.Certificate) -> set[str]:
    alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(alternative.get_values_for_type(x509.DNSName)) | {
        str(address) for address in alternative.get_values_for_type(x509.IPAddress)
    }


def https_agent(agent_factory: Callable[..., AgentProcess], **web: Any) -> AgentProcess:
    agent = agent_factory(sections(**web))
    agent.https = True
    return agent


def test_the_agent_serves_https_with_its_own_certificate_and_keeps_it(
    agent_factory: Callable[..., AgentProcess],
) -> None:
    agent = https_agent(agent_factory)
    agent.start()
    try:
        with httpx.Client(base_url=agent.url, verify=False, timeout=10) as client:
            health = client.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] in {"ok", "degraded"}
            # Cookies go only over HTTPS once the UI speaks it.
            cookie = health.headers["set-cookie"]
            assert "vk_csrf=" in cookie and "secure" in cookie.lower()
            assert client.get("/login").status_code == 200
        with pytest.raises(httpx.ConnectError):  # a checking client refuses a self-signed one
            httpx.get(f"{agent.url}/healthz", timeout=10)
        certificate = served_certificate(agent)
        assert names(certificate) >= {"kiosk.qingshan.lan", "127.0.0.1", "localhost"}
        own = agent.data_dir / "secrets" / CERT_NAME
        assert certificate == x509.load_pem_x509_certificate(own.read_bytes())
        assert stat.S_IMODE((agent.data_dir / "secrets" / KEY_NAME).stat().st_mode) == 0o600
        assert f"Web UI: https://127.0.0.1:{agent.port}/" in agent.log()
    finally:
        assert agent.stop() == 0
    agent.start()
    try:
        assert served_certificate(agent) == certificate, "the same certificate after a restart"
    finally:
        assert agent.stop() == 0


def _county_pair(directory: Path) -> tuple[Path, Path, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "kiosk.qingshan.lan")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("kiosk.qingshan.lan"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "kiosk.crt", directory / "kiosk.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path, certificate


def test_a_configured_certificate_is_served(
    agent_factory: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    cert_path, key_path, certificate = _county_pair(tmp_path)
    agent = https_agent(agent_factory, tls_cert=str(cert_path), tls_key=str(key_path))
    agent.start()
    try:
        assert served_certificate(agent) == certificate
        assert not (agent.data_dir / "secrets" / CERT_NAME).exists()
    finally:
        assert agent.stop() == 0


@pytest.mark.parametrize("damage", ["not_pem", "other_key"])
def test_a_broken_certificate_stops_the_start_with_one_clear_line(
    agent_factory: Callable[..., AgentProcess], tmp_path: Path, damage: str
) -> None:
    cert_path, key_path, _ = _county_pair(tmp_path)
    if damage == "not_pem":
        cert_path.write_text("this is not a certificate\n")
        expected = "is not a PEM certificate"
    else:
        other = tmp_path / "other"
        other.mkdir()
        _, key_path, _ = _county_pair(other)
        expected = "does not belong to the certificate"
    agent = https_agent(agent_factory, tls_cert=str(cert_path), tls_key=str(key_path))
    result = agent.run_to_exit()
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
