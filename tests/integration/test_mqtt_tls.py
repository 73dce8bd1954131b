"""TLS with a client certificate: the kiosk connects only with its certificate; plain MQTT to
another machine is a warning at every start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from agent.alerts.service import AlertService
from agent.store.database import Database
from simulators.command_center import CommandCenter
from tests.fixtures.mosquitto import (
    MosquittoBroker,
    RecordingTarget,
    Transition,
    kiosk_config,
    make_tls_files,
)
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration


def test_kiosk_publishes_over_tls_with_its_client_certificate(
    mosquitto_factory: Any, tmp_path: Path
) -> None:
    tls = make_tls_files(tmp_path / "tls")
    broker: MosquittoBroker = mosquitto_factory(tls=tls)
    assert broker.tls_port is not None
    data_dir = tmp_path / "kiosk"
    config = kiosk_config(
        data_dir,
        broker.tls_port,
        host="127.0.0.1",
        tls_ca=str(tls.ca),
        tls_cert=str(tls.client_cert),
        tls_key=str(tls.client_key),
    )
    database = Database(data_dir / "kiosk.sqlite3")
    service = AlertService(config, database, RecordingTarget())
    # The command centre listens on the plain listener of the same broker.
    with CommandCenter(port=broker.port, kiosks=["kiosk-1"]) as centre:
        service.start()
        try:
            wait_until(lambda: centre.status("kiosk-1") == "online", 15, "kiosk online over TLS")
            with database.write() as db:
                service.enqueue_event(db, Transition("start", "ev-tls", "cam1", 1.0, 1.0))
            wait_until(lambda: centre.events("kiosk-1"), 10, "event over TLS")
            assert centre.command("kiosk-1", "arm", {"camera": "cam1"})["ok"] is True
        finally:
            service.stop()
            database.close()
    assert [e["event_id"] for e in centre.events("kiosk-1")] == ["ev-tls"]


def test_kiosk_without_client_certificate_is_refused(
    mosquitto_factory: Any, tmp_path: Path
) -> None:
    tls = make_tls_files(tmp_path / "tls")
    broker: MosquittoBroker = mosquitto_factory(tls=tls)
    assert broker.tls_port is not None
    data_dir = tmp_path / "kiosk"
    config = kiosk_config(data_dir, broker.tls_port, tls_ca=str(tls.ca))
    database = Database(data_dir / "kiosk.sqlite3")
    service = AlertService(config, database, RecordingTarget())
    service.start()
    try:
        wait_until(lambda: service.health()["last_problem"], 15, "a connection problem")
        assert service.health()["connected"] is False
        assert service.health()["connects"] == 0
    finally:
        service.stop()
        database.close()


def test_plain_mqtt_off_this_machine_is_warned_at_every_start(
    mosquitto: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "kiosk"
    # 0.0.0.0 is no loopback address to the config check (so it stands for a broker elsewhere),
    # while Linux delivers a connection to it on this machine, where the test broker listens.
    config = kiosk_config(data_dir, mosquitto.port, host="0.0.0.0", allow_plaintext=True)
    database = Database(data_dir / "kiosk.sqlite3")
    caplog.set_level(logging.INFO, logger="agent.alerts.link")
    with CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"]) as centre:
        for start in (1, 2):
            service = AlertService(config, database, RecordingTarget())
            service.start()
            try:
                wait_until(lambda: centre.status("kiosk-1") == "online", 10, "kiosk online")
            finally:
                service.stop()
            wait_until(lambda: centre.status("kiosk-1") == "stopped", 10, "kiosk stopped")
            warnings = [
                r
                for r in caplog.records
                if r.levelno == logging.WARNING and "NOT encrypted" in r.message
            ]
            assert len(warnings) == start
    database.close()
    assert "mqtt.allow_plaintext = true" in warnings[0].message

    # Loopback without TLS is not the wire this is about: no warning.
    caplog.clear()
    local = kiosk_config(tmp_path / "local", mosquitto.port, host="127.0.0.1")
    local_database = Database(tmp_path / "local" / "kiosk.sqlite3")
    service = AlertService(local, local_database, RecordingTarget())
    service.start()
    service.stop()
    local_database.close()
    assert "NOT encrypted" not in caplog.text
