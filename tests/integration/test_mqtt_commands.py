"""Remote commands over a real broker: queued while the kiosk is away, bad ones answered, every
one audited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.alerts.service import AlertService
from agent.audit import AuditLog
from agent.store.database import Database
from simulators.command_center import CommandCenter
from tests.fixtures.mosquitto import TINY_JPEG, MosquittoBroker, RecordingTarget, kiosk_config
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_command_sent_while_kiosk_offline_runs_after_reconnect(
    mosquitto: MosquittoBroker, tmp_path: Path, protocol: str
) -> None:
    data_dir = tmp_path / "kiosk"
    config = kiosk_config(data_dir, mosquitto.port, protocol=protocol)
    database = Database(data_dir / "kiosk.sqlite3")
    target = RecordingTarget()
    with CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"]) as centre:
        first = AlertService(config, database, target)
        first.start()
        wait_until(lambda: centre.status("kiosk-1") == "online", 10, "kiosk online")
        first.stop()
        wait_until(lambda: centre.status("kiosk-1") == "stopped", 10, "kiosk stopped")

        request_id = centre.send_command("kiosk-1", "disarm", {"camera": "cam2"})
        assert request_id is not None
        assert target.calls == []

        # A new process with the same client id picks up the session and its queued command.
        second = AlertService(config, database, target)
        second.start()
        try:
            reply = centre.wait_reply(request_id, timeout=15)
        finally:
            second.stop()
        database.close()
    assert reply == {"id": request_id, "ok": True, "result": {"camera": "cam2", "armed": False}}
    assert target.calls == [("disarm", "cam2")]


def test_bad_commands_get_error_replies_and_the_link_keeps_running(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kiosk"
    database = Database(data_dir / "kiosk.sqlite3")
    target = RecordingTarget()
    service = AlertService(kiosk_config(data_dir, mosquitto.port), database, target)
    with CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"]) as centre:
        service.start()
        try:
            wait_until(lambda: centre.status("kiosk-1") == "online", 10, "kiosk online")

            centre.send_command("kiosk-1", "arm", raw=b"{not json")
            wait_until(lambda: centre.replies("kiosk-1", "arm"), 10, "reply to bad JSON")
            assert centre.replies("kiosk-1", "arm")[0] == {
                "id": None,
                "ok": False,
                "error": "request is not valid JSON",
            }

            errors = {
                ("selfdestruct", json.dumps({})): "unknown command 'selfdestruct'",
                ("sensitivity", json.dumps({"camera": "cam1", "value": 5})): "value:",
                ("sensitivity", json.dumps({"value": "high"})): "value:",
                ("arm", json.dumps({"camera": "cam9"})): "unknown camera 'cam9'",
                ("snapshot", json.dumps({})): "camera: required",
                ("health", json.dumps({"verbose": True})): "verbose: unknown field",
            }
            for (name, body), expected in errors.items():
                reply = centre.command("kiosk-1", name, json.loads(body))
                assert reply["ok"] is False, (name, body, reply)
                assert expected in reply["error"], (name, body, reply)

            assert target.calls == []
            assert service.health()["connected"] is True

            assert centre.command("kiosk-1", "sensitivity", {"camera": "cam1", "value": 0.3})["ok"]
            assert centre.command("kiosk-1", "arm", {})["result"] == {"camera": None, "armed": True}
            health = centre.command("kiosk-1", "health")
            assert health["result"]["cameras"]["cam1"]["state"] == "streaming"
            snapshot = centre.command("kiosk-1", "snapshot", {"camera": "cam1"})
            assert snapshot["result"] == {"camera": "cam1", "bytes": len(TINY_JPEG)}
            wait_until(lambda: centre.snapshot("kiosk-1", "cam1") == TINY_JPEG, 10, "snapshot")
        finally:
            service.stop()
            database.close()
    assert target.calls == [
        ("sensitivity", ("cam1", 0.3)),
        ("arm", None),
        ("snapshot", "cam1"),
    ]


def test_state_health_and_discovery_are_published_on_connect(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kiosk"
    database = Database(data_dir / "kiosk.sqlite3")
    config = kiosk_config(data_dir, mosquitto.port, home_assistant_discovery=True)
    service = AlertService(config, database, RecordingTarget())
    # Set before connecting: the link must republish them once it is up.
    service.publish_camera_state("cam1", "streaming")
    service.publish_motion("cam1", True)
    discovery: dict[str, dict[str, Any]] = {}
    watcher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda _c, _u, m: discovery.__setitem__(m.topic, json.loads(m.payload))
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe("homeassistant/#")
    watcher.loop_start()
    with CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"]) as centre:
        service.start()
        try:
            wait_until(lambda: centre.motion("kiosk-1", "cam1") == "ON", 10, "motion ON")
            assert centre.camera_state("kiosk-1", "cam1") == "streaming"
            wait_until(lambda: centre.health("kiosk-1"), 10, "health message")
            health = centre.health("kiosk-1")
            assert health is not None
            assert health["outbox"]["depth"] == 0
            assert health["cameras"]["cam2"] == {"fps": 15.0, "state": "streaming"}
            assert health["system"]["uptime_seconds"] >= 0
            assert "free_bytes" in health["system"]["disk"]

            service.publish_motion("cam1", False)
            wait_until(lambda: centre.motion("kiosk-1", "cam1") == "OFF", 10, "motion OFF")
            motion_topic = "homeassistant/binary_sensor/kiosk-1/cam1_motion/config"
            wait_until(lambda: motion_topic in discovery, 10, "discovery config")
        finally:
            service.stop()
            watcher.loop_stop()
            watcher.disconnect()
            database.close()
    motion = discovery[motion_topic]
    assert motion["state_topic"] == "village/kiosk-1/camera/cam1/motion"
    assert motion["availability"][0]["topic"] == "village/kiosk-1/status"
    assert discovery["homeassistant/camera/kiosk-1/cam2_snapshot/config"]["topic"] == (
        "village/kiosk-1/camera/cam2/snapshot"
    )


def test_every_remote_command_is_in_the_audit_log(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kiosk"
    database = Database(data_dir / "kiosk.sqlite3")
    audit = AuditLog(database)
    target = RecordingTarget()
    service = AlertService(kiosk_config(data_dir, mosquitto.port), database, target, audit=audit)
    with CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"]) as centre:
        service.start()
        try:
            wait_until(lambda: centre.status("kiosk-1") == "online", 10, "kiosk online")
            disarm = centre.command("kiosk-1", "disarm", {"camera": "cam1"})
            assert disarm["ok"] is True
            assert centre.command("kiosk-1", "arm", {})["ok"] is True
            assert (
                centre.command("kiosk-1", "sensitivity", {"camera": "cam2", "value": 3})["ok"]
                is False
            )
            assert centre.command("kiosk-1", "arm", {"camera": "cam9"})["ok"] is False
            assert centre.command("kiosk-1", "reboot", {})["ok"] is False
            centre.send_command("kiosk-1", "disarm", raw=b"{not json")
            wait_until(lambda: len(centre.replies("kiosk-1", "disarm")) == 2, 10, "bad JSON reply")
            # A QoS 1 redelivery of the first request: answered, not run again, still recorded.
            centre.send_command(
                "kiosk-1", "disarm", raw=json.dumps({"id": disarm["id"], "camera": "cam1"}).encode()
            )
            wait_until(lambda: len(centre.replies("kiosk-1", "disarm")) == 3, 10, "repeat reply")
            # The reply is published before the audit row is written: wait for the row itself.
            wait_until(lambda: len(audit.entries(actor="command-centre")) == 7, 10, "audit rows")
        finally:
            service.stop()
    entries = [(e.actor, e.action, e.subject, e.detail) for e in reversed(audit.entries(limit=100))]
    database.close()
    assert target.calls == [("disarm", "cam1"), ("arm", None)]
    actors = {actor for actor, *_ in entries}
    assert actors == {"command-centre"}
    assert [(action, subject) for _, action, subject, _ in entries] == [
        ("command.disarm", "cam1"),
        ("command.arm", "kiosk-1"),  # all cameras: the device is the subject
        ("command.sensitivity", "cam2"),
        ("command.arm", "cam9"),
        ("command.unknown", "kiosk-1"),
        ("command.disarm", "kiosk-1"),
        ("command.disarm", "cam1"),
    ]
    details = [detail for *_, detail in entries]
    assert details[0] == f"ok; request {disarm['id']}"
    assert details[1].startswith("ok; request ")
    assert details[2].startswith("error: value: Input should be less than or equal to 1")
    assert "unknown camera 'cam9'" in details[3]
    assert details[4].startswith("error: unknown command 'reboot'")
    assert details[5] == "error: request is not valid JSON"
    assert details[6] == f"ok (repeated request, not run again); request {disarm['id']}"
