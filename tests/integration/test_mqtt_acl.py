"""The shipped broker ACL with passwords: only the command centre may publish commands, and a
kiosk reads nothing of another kiosk."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.alerts.service import AlertService, default_client_id
from agent.store.database import Database
from simulators.command_center import CommandCenter
from tests.fixtures.mosquitto import (
    MosquittoBroker,
    RecordingTarget,
    Transition,
    kiosk_config,
    make_password_file,
)
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration

ACL = Path(__file__).resolve().parents[2] / "firmware_config" / "mosquitto" / "acl"
SHIPPED_CONF = ACL.with_name("mosquitto.conf")
PASSWORDS = {"kiosk-1": "k1-secret-pw", "kiosk-2": "k2-secret-pw", "command-centre": "cc-pw"}


class _Publisher:
    """A bare MQTT 5 client that remembers the broker's PUBACK reason per message, and every
    message it receives."""

    def __init__(self, port: int, user: str) -> None:
        self.reasons: dict[int, Any] = {}
        self.received: list[tuple[str, bytes]] = []
        self.granted: list[Any] = []
        self._connected = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"rogue-{user}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(user, PASSWORDS[user])
        # Mosquitto 2.0 drops a client after refusing its publish; come back quickly.
        self.client.reconnect_delay_set(0.1, 1)  # type: ignore[arg-type]
        self.client.on_connect = lambda *_a: self._connected.set()
        self.client.on_publish = lambda _c, _u, mid, reason, _p: self.reasons.__setitem__(
            mid, reason
        )
        self.client.on_message = lambda _c, _u, message: self.received.append(
            (message.topic, bytes(message.payload))
        )
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _p: self.granted.extend(codes)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self._connected.is_set, 10, f"{user} connected")

    def publish(self, topic: str, payload: bytes) -> int:
        return self.client.publish(topic, payload, qos=1).mid

    def subscribe(self, *filters: str) -> None:
        before = len(self.granted)
        self.client.subscribe([(topic, 1) for topic in filters])
        wait_until(lambda: len(self.granted) >= before + len(filters), 10, "SUBACK")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secured_broker(mosquitto_factory: Any, tmp_path: Path) -> MosquittoBroker:
    passwords = make_password_file(tmp_path / "passwd", PASSWORDS)
    broker: MosquittoBroker = mosquitto_factory(password_file=passwords, acl_file=ACL)
    return broker


def _kiosk(data_dir: Path, port: int, user: str, device: str = "kiosk-1") -> AlertService:
    password_file = data_dir.parent / f"{user}.password"
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.write_text(PASSWORDS[user] + "\n")
    config = kiosk_config(
        data_dir, port, device=device, username=user, password_file=str(password_file)
    )
    return AlertService(config, Database(data_dir / "kiosk.sqlite3"), RecordingTarget())


def test_only_the_command_centre_can_command_a_kiosk(
    secured_broker: MosquittoBroker, tmp_path: Path
) -> None:
    port = secured_broker.port
    kiosk = _kiosk(tmp_path / "kiosk", port, "kiosk-1")
    target = kiosk._target
    assert isinstance(target, RecordingTarget)
    centre = CommandCenter(
        port=port,
        kiosks=["kiosk-1"],
        username="command-centre",
        password=PASSWORDS["command-centre"],
    ).start()
    kiosk.start()
    rogues = [_Publisher(port, "kiosk-2"), _Publisher(port, "kiosk-1")]
    try:
        wait_until(lambda: centre.status("kiosk-1") == "online", 10, "kiosk online")
        refused = [
            (rogue, rogue.publish("village/kiosk-1/cmd/disarm", b'{"id": "rogue"}'))
            for rogue in rogues
        ]
        wait_until(lambda: all(mid in rogue.reasons for rogue, mid in refused), 10, "rogue PUBACKs")
        assert all(rogue.reasons[mid].is_failure for rogue, mid in refused)
        # Nor may another kiosk speak for this one.
        forged = rogues[0].publish("village/kiosk-1/events", b'{"id": "forged", "seq": 1}')
        wait_until(lambda: forged in rogues[0].reasons, 10, "forged event PUBACK")
        assert rogues[0].reasons[forged].is_failure

        reply = centre.command("kiosk-1", "disarm", {"camera": "cam1"})
        assert reply["ok"] is True
        assert target.calls == [("disarm", "cam1")]
    finally:
        for rogue in rogues:
            rogue.close()
        kiosk.stop()
        centre.stop()
    assert centre.events("kiosk-1") == []


def test_rejected_messages_are_counted_and_do_not_block_the_outbox(
    mosquitto_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A broker whose ACL forgot the events topic: every event is refused with a PUBACK error.
    acl = tmp_path / "acl-without-events"
    acl.write_text(
        "pattern write village/%u/status\n"
        "pattern write village/%u/health\n"
        "pattern write village/%u/cmd/+/result\n"
        "pattern read village/%u/cmd/+\n"
    )
    passwords = make_password_file(tmp_path / "passwd", PASSWORDS)
    broker: MosquittoBroker = mosquitto_factory(password_file=passwords, acl_file=acl)
    kiosk = _kiosk(tmp_path / "kiosk", broker.port, "kiosk-1")
    database = kiosk._database
    caplog.set_level(logging.DEBUG)
    kiosk.start()
    try:
        wait_until(lambda: kiosk.health()["connected"], 10, "kiosk connected")
        with database.write() as db:
            for number in range(2):
                kiosk.enqueue_event(
                    db, Transition("start", f"ev-{number}", "cam1", ts=1.0, started_at=1.0)
                )
        wait_until(lambda: kiosk.health()["rejected"] == 2, 10, "two rejections")
        outbox = kiosk.health()["outbox"]
        assert isinstance(outbox, dict) and outbox["depth"] == 0
        # Mosquitto 2.0 also drops a client after refusing its publish; the link comes back.
        wait_until(lambda: kiosk.health()["connected"], 10, "kiosk connected again")
    finally:
        kiosk.stop()
        database.close()
    # Refused with a PUBACK error, or (when Mosquitto hangs up before the PUBACK is read)
    # dropped as the message that keeps breaking the connection: counted and logged either way.
    assert "broker rejected" in caplog.text or "the broker closed the connection" in caplog.text
    assert PASSWORDS["kiosk-1"] not in caplog.text


def test_wrong_password_is_reported_without_the_password(
    secured_broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "kiosk"
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    config = kiosk_config(
        data_dir, secured_broker.port, username="kiosk-1", password_file=str(wrong)
    )
    database = Database(data_dir / "kiosk.sqlite3")
    service = AlertService(config, database, RecordingTarget())
    caplog.set_level(logging.DEBUG)
    service.start()
    try:
        wait_until(lambda: "refused" in str(service.health()["last_problem"]), 10, "refusal noted")
        assert service.health()["connected"] is False
    finally:
        service.stop()
        database.close()
    assert "not-the-password" not in caplog.text


def test_a_kiosk_reads_nothing_of_another_kiosk(
    secured_broker: MosquittoBroker, tmp_path: Path
) -> None:
    port = secured_broker.port
    kiosk = _kiosk(tmp_path / "kiosk", port, "kiosk-1")
    database = kiosk._database
    centre = CommandCenter(
        port=port,
        kiosks=["kiosk-1", "kiosk-2"],
        username="command-centre",
        password=PASSWORDS["command-centre"],
    ).start()
    # A kiosk that turned nosy: it asks for everything, another kiosk's tree by name included.
    nosy = _Publisher(port, "kiosk-2")
    nosy.subscribe("#", "village/#", "village/kiosk-1/#", "village/kiosk-2/cmd/+")
    kiosk.start()
    try:
        wait_until(lambda: centre.status("kiosk-1") == "online", 10, "kiosk online")
        with database.write() as db:
            kiosk.enqueue_event(db, Transition("start", "ev-1", "cam1", 1.0, 1.0))
            kiosk.enqueue_report(db, "registration", {"guest": {"id_number": "x"}})
        assert centre.command("kiosk-1", "health")["ok"] is True  # a command and its reply
        wait_until(lambda: centre.events("kiosk-1") and centre.reports("kiosk-1"), 10, "alerts")
        wait_until(lambda: centre.health("kiosk-1"), 10, "health")
        # Mosquitto routes messages in the order it takes them in: once the nosy kiosk has its
        # own command, which the centre sent after all of the above had arrived, anything of
        # kiosk-1 it was allowed to read would already be in front of it.
        centre.send_command("kiosk-2", "ping", {})
        wait_until(lambda: nosy.received, 10, "the nosy kiosk's own command")
    finally:
        nosy.close()
        kiosk.stop()
        database.close()
        centre.stop()
    assert [topic for topic, _ in nosy.received] == ["village/kiosk-2/cmd/ping"] * len(
        nosy.received
    )


def _shipped_setting(name: str) -> str:
    """A line of the shipped broker configuration, so the test runs the broker the way it ships."""
    for line in SHIPPED_CONF.read_text().splitlines():
        if line.split() and line.split()[0] == name:
            return line
    raise AssertionError(f"{name} is missing from {SHIPPED_CONF}")


def test_a_kiosk_cannot_take_over_another_kiosks_session(
    mosquitto_factory: Any, tmp_path: Path
) -> None:
    passwords = make_password_file(tmp_path / "passwd", PASSWORDS)
    broker: MosquittoBroker = mosquitto_factory(
        password_file=passwords,
        acl_file=ACL,
        extra_config=(_shipped_setting("use_username_as_clientid"),),
    )
    kiosk = _kiosk(tmp_path / "kiosk", broker.port, "kiosk-1")
    database = kiosk._database
    centre = CommandCenter(
        port=broker.port,
        kiosks=["kiosk-1"],
        username="command-centre",
        password=PASSWORDS["command-centre"],
    ).start()
    kiosk.start()
    wait_until(lambda: centre.status("kiosk-1") == "online", 10, "kiosk online")
    kiosk.stop()
    request_id = centre.send_command("kiosk-1", "disarm", {"camera": "cam1"})
    assert request_id is not None

    # Another kiosk presents kiosk-1's client id and asks for its session back.
    present: list[bool] = []
    rogue = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=default_client_id(kiosk._config),
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    rogue.username_pw_set("kiosk-2", PASSWORDS["kiosk-2"])
    rogue.on_connect = lambda _c, _u, flags, _r, _p: present.append(flags.session_present)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    rogue.connect("127.0.0.1", broker.port, clean_start=False, properties=properties)
    rogue.loop_start()
    try:
        wait_until(lambda: present, 10, "the rogue's CONNACK")
    finally:
        rogue.disconnect()
        rogue.loop_stop()
    assert present == [False]  # a session of its own, not kiosk-1's

    # kiosk-1 comes back and still finds the command that was queued for it.
    kiosk = _kiosk(tmp_path / "kiosk", broker.port, "kiosk-1")
    kiosk.start()
    try:
        reply = centre.wait_reply(request_id, timeout=15)
    finally:
        kiosk.stop()
        kiosk._database.close()
        database.close()
        centre.stop()
    assert reply["ok"] is True
