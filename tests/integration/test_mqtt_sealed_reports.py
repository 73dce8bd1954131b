"""Registration reports over a real broker: only the command centre's key opens them.

The broker, a subscriber without the key and the broker's own persistence file see the report's
metadata (id, seq, kind, ts) and ciphertext, never a guest's name, ID number or phone number.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.alerts.service import AlertService
from agent.privacy import Vault
from agent.store.database import Database
from simulators.command_center import CommandCenter
from tests.fixtures.mosquitto import MosquittoBroker, RecordingTarget, centre_keys, kiosk_config
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration

NAME = "张三丰"
ID_NUMBER = "330106199003071235"
PHONE = "13912345678"
REGISTRATION = {
    "action": "check_in",
    "guest": {"name": NAME, "id_number": ID_NUMBER, "phone": PHONE, "address": "青山村 8 号"},
}


def personal_data_in(data: bytes) -> list[str]:
    """Personal values found in ``data``, as UTF-8 or as JSON ``\\u`` escapes."""
    found = []
    for value in (NAME, ID_NUMBER, PHONE):
        escaped = value.encode("ascii", "backslashreplace").replace(b"\\x", b"\\u00")
        if value.encode() in data or value.encode("unicode_escape") in data or escaped in data:
            found.append(value)
    return found


def _reports(centre: CommandCenter) -> list[bytes]:
    return [alert.raw for alert in centre.alerts("kiosk-1") if "/report/" in alert.topic]


def test_a_registration_report_crosses_the_broker_sealed(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kiosk"
    keys = centre_keys(data_dir)
    # An archive client whose persistent session is offline: the broker keeps the report for
    # it in its own store, which is checked below.
    CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"], client_id="archive").start().stop()
    nosy = CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"], client_id="nosy").start()
    centre = CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"], report_key=keys.private)
    centre.start()
    database = Database(data_dir / "kiosk.sqlite3")
    vault = Vault.load_or_create(data_dir / "secrets" / "key")
    service = AlertService(
        kiosk_config(data_dir, mosquitto.port), database, RecordingTarget(), sealer=vault
    )
    service.start()
    try:
        with database.write() as db:
            service.enqueue_report(db, "registration", REGISTRATION)
        wait_until(lambda: centre.reports("kiosk-1") and nosy.reports("kiosk-1"), 15, "report")
    finally:
        service.stop()
        database.close()
        nosy.stop()
        centre.stop()

    (opened,) = centre.reports("kiosk-1", "registration")
    assert opened["data"] == REGISTRATION
    assert centre.unopened("kiosk-1") == 0
    (seen,) = nosy.reports("kiosk-1", "registration")
    assert "data" not in seen
    assert {key: seen[key] for key in ("id", "seq", "kind")} == {
        "id": opened["id"],
        "seq": 1,
        "kind": "registration",
    }
    assert nosy.unopened("kiosk-1") == 1
    for wire in _reports(nosy) + _reports(centre):
        assert personal_data_in(wire) == []

    mosquitto.stop()  # writes its persistence file, with the report queued for "archive"
    stored = (mosquitto.workdir / "mosquitto.db").read_bytes()
    assert opened["id"].encode() in stored  # the report is in there...
    assert personal_data_in(stored) == []  # ...and nothing of the guest
    for path in data_dir.glob("kiosk.sqlite3*"):
        assert personal_data_in(path.read_bytes()) == [], path.name


def test_reports_that_waited_without_a_centre_key_go_out_sealed(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kiosk"
    database = Database(data_dir / "kiosk.sqlite3")
    vault = Vault.load_or_create(data_dir / "secrets" / "key")
    # A demo kiosk with MQTT off and no key yet: the report waits sealed with the vault.
    offline = AlertService(
        kiosk_config(data_dir, mosquitto.port, enabled=False),
        database,
        RecordingTarget(),
        sealer=vault,
    )
    with database.write() as db:
        offline.enqueue_report(db, "registration", REGISTRATION)

    keys = centre_keys(data_dir)
    nosy = CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"], client_id="nosy").start()
    centre = CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"], report_key=keys.private)
    centre.start()
    service = AlertService(
        kiosk_config(data_dir, mosquitto.port), database, RecordingTarget(), sealer=vault
    )
    service.start()
    try:
        wait_until(lambda: centre.reports("kiosk-1") and nosy.reports("kiosk-1"), 15, "report")
        wait_until(lambda: service.health()["outbox"]["depth"] == 0, 10, "outbox drained")  # type: ignore[index]
    finally:
        service.stop()
        database.close()
        nosy.stop()
        centre.stop()
    assert centre.reports("kiosk-1")[0]["data"] == REGISTRATION
    assert "data" not in nosy.reports("kiosk-1")[0]
    for wire in _reports(nosy):
        assert personal_data_in(wire) == []


def test_a_centre_with_the_wrong_key_keeps_the_report_sealed(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kiosk"
    wrong = centre_keys(tmp_path / "another-centre")
    database = Database(data_dir / "kiosk.sqlite3")
    service = AlertService(kiosk_config(data_dir, mosquitto.port), database, RecordingTarget())
    with CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"], report_key=wrong.private) as c:
        service.start()
        try:
            with database.write() as db:
                service.enqueue_report(db, "registration", REGISTRATION)
            wait_until(lambda: c.reports("kiosk-1"), 15, "report")
        finally:
            service.stop()
            database.close()
    assert c.unopened("kiosk-1") == 1
    assert "data" not in c.reports("kiosk-1")[0]
