"""Reports sealed to the command centre: only its private key opens them, and nothing else does."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.alerts.payloads import ReportMessage
from agent.alerts.sealing import (
    ReportSealer,
    SealingError,
    load_private_key,
    load_public_key,
    open_report,
)
from agent.errors import ConfigError
from simulators.command_center import generate_report_keys
from tests.fixtures.servers import require_executable

NAME = "张三丰"
ID_NUMBER = "330106199003071235"
PHONE = "13912345678"


def _report(kind: str = "registration", message_id: str = "9e41aa") -> ReportMessage:
    return ReportMessage(
        id=message_id,
        seq=813,
        kind=kind,
        ts="2026-11-29T09:30:00.000Z",
        data={"guest": {"name": NAME, "id_number": ID_NUMBER, "phone": PHONE}},
    )


def _personal(data: bytes) -> list[str]:
    """Which personal values appear in ``data``, in any encoding a reader might try."""
    found = []
    for value in (NAME, ID_NUMBER, PHONE):
        forms = [value.encode(), json.dumps(value).encode()]  # UTF-8 and \\u escapes
        if any(form.strip(b'"') in data for form in forms):
            found.append(value)
    return found


@pytest.fixture
def centre() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def test_sealed_report_keeps_only_metadata_readable_and_opens_at_the_centre(
    centre: X25519PrivateKey,
) -> None:
    wire = ReportSealer(centre.public_key(), "kiosk-1").seal(_report())
    assert _personal(wire) == []
    envelope = json.loads(wire)
    assert {k: envelope[k] for k in ("id", "seq", "kind", "ts")} == {
        "id": "9e41aa",
        "seq": 813,
        "kind": "registration",
        "ts": "2026-11-29T09:30:00.000Z",
    }
    assert "data" not in envelope
    assert envelope["sealed"]["v"] == 1
    assert envelope["sealed"]["alg"] == "X25519-HKDF-SHA256-AES-256-GCM"
    assert open_report(centre, "kiosk-1", wire) == _report()


def test_every_message_has_its_own_ephemeral_key_and_nonce(centre: X25519PrivateKey) -> None:
    sealer = ReportSealer(centre.public_key(), "kiosk-1")
    first, second = (json.loads(sealer.seal(_report()))["sealed"] for _ in range(2))
    assert first["epk"] != second["epk"]
    assert first["ct"] != second["ct"]


def test_the_documented_construction_opens_it_without_the_agents_code(
    centre: X25519PrivateKey,
) -> None:
    """What a command centre written from docs/MQTT.md does, step by step."""
    wire = ReportSealer(centre.public_key(), "kiosk-1").seal(_report())
    envelope = json.loads(wire)
    box = envelope["sealed"]
    epk = base64.b64decode(box["epk"])
    shared = centre.exchange(X25519PublicKey.from_public_bytes(epk))
    recipient = centre.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"village-kiosk sealed report v1" + epk + recipient,
    ).derive(shared)
    aad = b"village-kiosk report v1\x00kiosk-1\x00" + b"9e41aa" + b"\x00" + b"registration"
    plain = AESGCM(key).decrypt(base64.b64decode(box["nonce"]), base64.b64decode(box["ct"]), aad)
    assert json.loads(plain)["data"]["guest"]["id_number"] == ID_NUMBER


def test_another_key_or_a_moved_report_does_not_open(centre: X25519PrivateKey) -> None:
    wire = ReportSealer(centre.public_key(), "kiosk-1").seal(_report())
    with pytest.raises(SealingError, match="failed authentication"):
        open_report(X25519PrivateKey.generate(), "kiosk-1", wire)
    # Replayed on another kiosk's topic.
    with pytest.raises(SealingError, match="failed authentication"):
        open_report(centre, "kiosk-2", wire)
    envelope = json.loads(wire)
    for field, value in (("id", "other-id"), ("kind", "care_missed")):
        moved = json.dumps({**envelope, field: value}).encode()
        with pytest.raises(SealingError, match="failed authentication"):
            open_report(centre, "kiosk-1", moved)
    # The metadata outside is checked against the sealed report too.
    renumbered = json.dumps({**envelope, "seq": 1}).encode()
    with pytest.raises(SealingError, match="differs"):
        open_report(centre, "kiosk-1", renumbered)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"id": "x", "seq": 1, "kind": "k", "ts": "t", "data": {}}',
        b'{"id": "x", "seq": 1, "kind": "k", "ts": "t", "sealed": {"v": 2}}',
    ],
)
def test_malformed_envelopes_are_sealing_errors(centre: X25519PrivateKey, payload: bytes) -> None:
    with pytest.raises(SealingError):
        open_report(centre, "kiosk-1", payload)


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(["epk", "nonce", "ct", "v", "alg"]),
    value=st.one_of(st.text(max_size=80), st.integers(), st.none()),
)
def test_any_altered_box_is_refused_cleanly(field: str, value: object) -> None:
    centre = X25519PrivateKey.generate()
    envelope = json.loads(ReportSealer(centre.public_key(), "kiosk-1").seal(_report()))
    envelope["sealed"][field] = value
    with pytest.raises(SealingError):
        open_report(centre, "kiosk-1", json.dumps(envelope).encode())


def test_keys_made_with_the_documented_openssl_commands_work(tmp_path: Path) -> None:
    openssl = require_executable("openssl", "/usr/bin/openssl")
    private, public = tmp_path / "centre.key", tmp_path / "report-public.pem"
    subprocess.run(
        [openssl, "genpkey", "-algorithm", "X25519", "-out", str(private)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [openssl, "pkey", "-in", str(private), "-pubout", "-out", str(public)],
        check=True,
        capture_output=True,
    )
    sealer = ReportSealer.from_file(public, "kiosk-1")
    assert open_report(load_private_key(private), "kiosk-1", sealer.seal(_report())) == _report()


def test_the_simulators_keygen_makes_a_matching_private_only_pair(tmp_path: Path) -> None:
    keys = generate_report_keys(tmp_path / "c.key", tmp_path / "c.pub")
    assert keys.private.stat().st_mode & 0o077 == 0
    wire = ReportSealer.from_file(keys.public, "k").seal(_report())
    assert open_report(load_private_key(keys.private), "k", wire).data == _report().data


def _problem(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_public_key(path)
    (problem,) = info.value.problems
    assert problem.startswith("mqtt.report_public_key: ")
    return problem


def test_a_bad_key_file_is_one_clear_config_error(tmp_path: Path) -> None:
    assert "cannot read" in _problem(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x00\xff not a key")
    assert "is not a PEM public key" in _problem(garbage)
    huge = tmp_path / "huge.pem"
    huge.write_bytes(b"A" * 100_000)
    assert "too large" in _problem(huge)

    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert "not an X25519 public key" in _problem(ec_key)

    keys = generate_report_keys(tmp_path / "c.key", tmp_path / "c.pub")
    problem = _problem(keys.private)
    assert "holds a private key" in problem
    assert keys.private.read_text().splitlines()[1] not in problem  # no key material echoed


def test_a_bad_private_key_at_the_centre_is_a_config_error(tmp_path: Path) -> None:
    keys = generate_report_keys(tmp_path / "c.key", tmp_path / "c.pub")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        load_private_key(keys.public)
    with pytest.raises(ConfigError, match="cannot read"):
        load_private_key(tmp_path / "none.key")
