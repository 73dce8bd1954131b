"""The running agent (``python -m agent run``) and its link: plain MQTT to another machine and a
bad report key stop it with one clear message; a guest registered through the web API reaches
the command centre sealed; remote commands land in the agent's audit log."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.store.media import database_path
from agent.village.identity import check_character
from simulators.command_center import CommandCenter
from tests.fixtures.agent import AgentProcess
from tests.fixtures.mosquitto import MosquittoBroker, centre_keys
from tests.integration.test_agent_e2e import DEVICE, add_user, kiosk_sections, sign_in
from tests.integration.test_mqtt_sealed_reports import personal_data_in

pytestmark = pytest.mark.integration


def test_the_agent_will_not_start_with_plain_mqtt_to_another_machine(
    agent_factory: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    keys = centre_keys(tmp_path)
    mqtt = {"enabled": True, "host": "broker.county.example", "report_public_key": str(keys.public)}
    agent = agent_factory({"device": {"id": "k1"}, "mqtt": mqtt})
    result = agent.run_to_exit()
    assert result.returncode == 2
    assert (
        "mqtt.host: 'broker.county.example' is not on this machine and mqtt.tls_ca is not set"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_a_bad_report_key_stops_the_agent_with_one_clear_error(
    agent_factory: Callable[..., AgentProcess], mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    keys = centre_keys(tmp_path)
    sections = kiosk_sections(mosquitto, [])
    sections["mqtt"]["report_public_key"] = str(keys.private)  # the centre's secret, by mistake
    agent = agent_factory(sections)
    result = agent.run_to_exit()
    assert result.returncode == 1
    assert "error: mqtt.report_public_key: " in result.stderr
    assert "holds a private key" in result.stderr
    assert "Traceback" not in result.stderr
    assert "PRIVATE KEY" not in result.stderr


def _audit_rows(agent: AgentProcess) -> list[tuple[str, str, str, str]]:
    uri = f"file:{database_path(agent.data_dir)}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        rows = db.execute(
            "SELECT actor, action, subject, detail FROM audit_log WHERE actor = ? ORDER BY id",
            ["command-centre"],
        ).fetchall()
    return [tuple(row) for row in rows]


def test_the_agent_seals_registrations_and_audits_remote_commands(
    agent_factory: Callable[..., AgentProcess], mosquitto: MosquittoBroker
) -> None:
    keys = centre_keys(mosquitto.workdir)
    cameras = [{"id": "gate", "source": "sim://empty", "fps": 5, "resolution": "160x120"}]
    agent = agent_factory(kiosk_sections(mosquitto, cameras))
    add_user(agent.config_path, agent.data_dir, "admin1", "admin")
    add_user(agent.config_path, agent.data_dir, "host1", "host")
    centre = CommandCenter(port=mosquitto.port, kiosks=[DEVICE], report_key=keys.private).start()
    nosy = CommandCenter(port=mosquitto.port, kiosks=[DEVICE], client_id="nosy").start()
    try:
        agent.start()
        assert centre.wait_for(lambda: centre.status(DEVICE) == "online", 30)

        admin = sign_in(agent, "admin1")
        created = admin.post(
            "/api/homestays",
            json={
                "name": "山居民宿",
                "address": "青山村 8 号",
                "rooms": 4,
                "host_username": "host1",
            },
        )
        assert created.status_code == 201, created.text
        body = "330106" + "19900307" + "123"
        id_number = body + check_character(body)
        guest: dict[str, Any] = {
            "name": "张三丰",
            "sex": "male",
            "ethnicity": "汉族",
            "birth_date": "1990-03-07",
            "id_type": "resident_id",
            "id_number": id_number,
            "phone": "13912345678",
            "address": "浙江省杭州市西湖区文三路100号",
            "room": "201",
            "check_in": "2026-11-29T14:00:00+08:00",
            "expected_check_out": "2026-12-01",
        }
        host = sign_in(agent, "host1")
        registered = host.post(f"/api/homestays/{created.json()['id']}/guests", json=guest)
        assert registered.status_code == 201, registered.text

        assert centre.wait_for(lambda: centre.reports(DEVICE, "registration"), 60)
        assert nosy.wait_for(lambda: nosy.reports(DEVICE, "registration"), 60)
        report = centre.reports(DEVICE, "registration")[0]
        assert report["data"]["guest"]["id_number"] == id_number
        assert report["data"]["guest"]["phone"] == guest["phone"]
        assert "data" not in nosy.reports(DEVICE, "registration")[0]
        for alert in nosy.alerts(DEVICE) + centre.alerts(DEVICE):
            assert personal_data_in(alert.raw) == [], alert.topic

        assert centre.command(DEVICE, "disarm", {"camera": "gate"}, timeout=30)["ok"] is True
        assert centre.command(DEVICE, "sensitivity", {"value": 7}, timeout=30)["ok"] is False
        assert centre.wait_for(lambda: len(_audit_rows(agent)) >= 2, 30)
        assert agent.stop(signal.SIGTERM) == 0
    finally:
        nosy.stop()
        centre.stop()
    rows = _audit_rows(agent)
    assert [(actor, action, subject) for actor, action, subject, _ in rows] == [
        ("command-centre", "command.disarm", "gate"),
        ("command-centre", "command.sensitivity", DEVICE),
    ]
    assert rows[0][3].startswith("ok; request ")
    assert rows[1][3].startswith("error: value: ")
    assert "Traceback" not in agent.log()
