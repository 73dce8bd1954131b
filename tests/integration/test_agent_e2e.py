"""The whole agent as a process (``python -m agent run``) against real servers: the demo config with
its simulated cameras, a real Mosquitto, the command-centre simulator, the web API over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from agent.village.identity import check_character
from simulators.command_center import CommandCenter
from tests.fixtures.agent import REPO, AgentProcess
from tests.fixtures.mosquitto import MosquittoBroker, centre_keys
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration

DEVICE = "kiosk-e2e"
PASSWORD = "correct horse battery staple"


def add_user(config: Path, data_dir: Path, username: str, role: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "user",
            "add",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--username",
            username,
            "--role",
            role,
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr


def sign_in(agent: AgentProcess, username: str) -> httpx.Client:
    client = httpx.Client(base_url=agent.url, timeout=10)
    anonymous = client.get("/api/session").json()
    response = client.post(
        "/api/session",
        json={"username": username, "password": PASSWORD},
        headers={"X-CSRF-Token": anonymous["csrf_token"]},
    )
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def camera_states(agent: AgentProcess) -> dict[str, dict[str, Any]]:
    return dict(agent.health_details()["parts"]["cameras"])


def kiosk_sections(
    broker: MosquittoBroker, cameras: list[dict[str, Any]], **events: Any
) -> dict[str, Any]:
    return {
        "device": {"id": DEVICE, "name": "测试服务亭"},
        "cameras": cameras,
        "events": {"quiet_seconds": 1.0, "update_interval_seconds": 0.5, **events},
        "mqtt": {
            "enabled": True,
            "host": broker.host,
            "port": broker.port,
            "reconnect_min_seconds": 0.2,
            "reconnect_max_seconds": 1.0,
            "keepalive_seconds": 5,
            # Registration reports are sealed to the command centre's key.
            "report_public_key": str(centre_keys(broker.workdir).public),
        },
    }


def start_quiet_agent(
    agent_factory: Callable[..., AgentProcess], broker: MosquittoBroker
) -> AgentProcess:
    """An agent whose one camera sees an empty scene: every message is the test's own."""
    cameras = [{"id": "gate", "source": "sim://empty", "fps": 5, "resolution": "160x120"}]
    agent = agent_factory(kiosk_sections(broker, cameras))
    agent.start()
    return agent


@pytest.fixture
def command_centre(mosquitto: MosquittoBroker) -> Iterator[CommandCenter]:
    centre = CommandCenter(
        host=mosquitto.host,
        port=mosquitto.port,
        kiosks=[DEVICE],
        report_key=centre_keys(mosquitto.workdir).private,
    )
    centre.start()
    yield centre
    centre.stop()


def test_demo_config_shows_every_camera_online_with_fps_and_snapshot(
    agent_factory: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    """The README's demo: firmware_config/demo.toml, no broker, every simulated camera online."""
    demo = REPO / "firmware_config" / "demo.toml"
    agent = agent_factory({"device": {"id": "unused"}})
    agent.config_path = demo
    add_user(demo, agent.data_dir, "officer", "police")
    agent.start()

    expected = {"square": "村口广场", "road": "进村道路", "orchard": "果园"}
    wait_until(
        lambda: (
            all(
                camera.get("state") == "online" and camera.get("fps", 0) > 0
                for camera in camera_states(agent).values()
            )
            and set(camera_states(agent)) == set(expected)
        ),
        60,
        "every demo camera online with a measured fps",
    )
    assert agent.healthz() == {"status": "ok"}  # a visitor sees whether it is well, no more
    health = agent.health_details()
    assert health["parts"]["mqtt"]["connected"] is False  # no broker in the demo: alerts wait

    status, page = agent.get("/")
    text = page.decode()
    assert status == 200
    for name in expected.values():
        assert name in text
    assert text.count("在线") >= len(expected)

    police = sign_in(agent, "officer")
    for camera_id in expected:
        response = police.get(f"/cameras/{camera_id}/snapshot.jpg")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (480, 640, 3)
        assert float(image.std()) > 5  # a rendered scene, not a blank frame
    police.close()
    # The public kiosk screen shows states, not pictures: a visitor is sent to sign in.
    anonymous = httpx.get(f"{agent.url}/cameras/square/snapshot.jpg", follow_redirects=False)
    assert anonymous.status_code in (303, 401, 403)
    assert anonymous.headers.get("content-type") != "image/jpeg"

    assert agent.stop(signal.SIGTERM) == 0
    assert "Traceback" not in agent.log()


def test_walking_person_reaches_the_command_centre(
    agent_factory: Callable[..., AgentProcess],
    mosquitto: MosquittoBroker,
    command_centre: CommandCenter,
) -> None:
    cameras = [
        {
            "id": "gate",
            "name": "村口",
            "source": "sim://walking_person?seed=1",
            "fps": 10,
            "resolution": "320x240",
        }
    ]
    agent = agent_factory(kiosk_sections(mosquitto, cameras))
    agent.start()
    assert command_centre.wait_for(lambda: command_centre.status(DEVICE) == "online", 30)
    assert command_centre.wait_for(
        lambda: command_centre.camera_state(DEVICE, "gate") == "online", 30
    )
    assert command_centre.wait_for(lambda: command_centre.motion(DEVICE, "gate") == "ON", 90)

    def kinds() -> list[str]:
        return [e["type"] for e in command_centre.events(DEVICE) if e["camera"] == "gate"]

    assert command_centre.wait_for(lambda: "end" in kinds(), 90), kinds()
    assert command_centre.wait_for(lambda: command_centre.motion(DEVICE, "gate") == "OFF", 30)
    events = [e for e in command_centre.events(DEVICE) if e["camera"] == "gate"]
    first_event = events[0]["event_id"]
    lifecycle = [e["type"] for e in events if e["event_id"] == first_event]
    assert lifecycle[0] == "start"
    assert lifecycle[-1] == "end"
    assert "update" in lifecycle
    snapshot = command_centre.snapshot(DEVICE, "gate")
    assert snapshot is not None
    assert snapshot[:3] == b"\xff\xd8\xff"  # JPEG

    assert agent.stop(signal.SIGTERM) == 0
    assert command_centre.wait_for(lambda: command_centre.status(DEVICE) == "stopped", 30)


def test_last_will_on_kill_and_commands_queued_while_the_agent_is_down(
    agent_factory: Callable[..., AgentProcess],
    mosquitto: MosquittoBroker,
    command_centre: CommandCenter,
) -> None:
    agent = start_quiet_agent(agent_factory, mosquitto)
    assert command_centre.wait_for(lambda: command_centre.status(DEVICE) == "online", 30)

    agent.stop(signal.SIGKILL)
    assert command_centre.wait_for(lambda: command_centre.status(DEVICE) == "offline", 30)

    # Sent while nobody is there: the broker keeps it in the kiosk's persistent session.
    request_id = command_centre.send_command(DEVICE, "disarm", {"camera": "gate"})
    assert request_id is not None
    agent.start()
    reply = command_centre.wait_reply(request_id, timeout=60)
    assert reply["ok"] is True
    wait_until(lambda: camera_states(agent)["gate"]["armed"] is False, 30, "camera disarmed")

    bad = command_centre.send_command(DEVICE, "disarm", raw=b"{not json")
    assert bad is None
    unknown = command_centre.command(DEVICE, "self_destruct", {})
    assert unknown["ok"] is False and unknown.get("error")
    out_of_range = command_centre.command(DEVICE, "sensitivity", {"value": 7})
    assert out_of_range["ok"] is False and out_of_range.get("error")
    no_camera = command_centre.command(DEVICE, "arm", {"camera": "nowhere"})
    assert no_camera["ok"] is False
    assert command_centre.command(DEVICE, "arm", {"camera": "gate"})["ok"] is True
    assert agent.process is not None and agent.process.poll() is None  # survived them all
    wait_until(lambda: camera_states(agent)["gate"]["armed"] is True, 30, "camera armed")


def produce_burst(config: Path, data_dir: Path, total: int) -> subprocess.Popen[bytes]:
    """Record ``total`` events into the agent's own database from a second process, in
    small transactions, as a busy camera would; the running agent drains them."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.burst_producer",
            str(config),
            str(data_dir),
            str(total),
        ],
        cwd=REPO,
    )


def test_agent_killed_mid_burst_loses_nothing(
    agent_factory: Callable[..., AgentProcess],
    mosquitto: MosquittoBroker,
    command_centre: CommandCenter,
) -> None:
    agent = start_quiet_agent(agent_factory, mosquitto)
    producer = produce_burst(agent.config_path, agent.data_dir, 1000)
    assert command_centre.wait_for(lambda: len(command_centre.events(DEVICE)) >= 200, 120)
    agent.stop(signal.SIGKILL)
    assert producer.wait(timeout=120) == 0
    mosquitto.stop()
    agent.start()  # starts while the broker is still down: the backlog waits in the outbox
    mosquitto.start()
    assert command_centre.wait_for(lambda: len(command_centre.events(DEVICE)) >= 1000, 120)
    burst = [e for e in command_centre.events(DEVICE) if e["event_id"].startswith("burst-")]
    numbers = [int(e["event_id"].split("-")[1]) for e in burst]
    assert sorted(set(numbers)) == list(range(1000))  # none missing
    assert numbers == sorted(numbers)  # in order for the camera
    assert command_centre.order_violations(DEVICE) == []
    assert command_centre.gaps(DEVICE) == []
    assert agent.stop(signal.SIGTERM) == 0


def test_registration_made_while_the_broker_is_down_arrives_later(
    agent_factory: Callable[..., AgentProcess],
    mosquitto: MosquittoBroker,
    command_centre: CommandCenter,
) -> None:
    # The centre's persistent session (kept by the broker across its restart) is what receives
    # messages published while the centre itself is still reconnecting.
    mosquitto.stop()
    agent = agent_factory(kiosk_sections(mosquitto, []))
    add_user(agent.config_path, agent.data_dir, "admin1", "admin")
    add_user(agent.config_path, agent.data_dir, "host1", "host")
    agent.start()

    admin = sign_in(agent, "admin1")
    created = admin.post(
        "/api/homestays",
        json={"name": "山居民宿", "address": "青山村 8 号", "rooms": 4, "host_username": "host1"},
    )
    assert created.status_code == 201, created.text
    homestay_id = created.json()["id"]

    arrival = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    body = "330106" + "19900307" + "123"
    id_number = body + check_character(body)
    phone = "13912345678"
    host = sign_in(agent, "host1")
    response = host.post(
        f"/api/homestays/{homestay_id}/guests",
        json={
            "name": "张三丰",
            "sex": "male",
            "ethnicity": "汉族",
            "birth_date": "1990-03-07",
            "id_type": "resident_id",
            "id_number": id_number,
            "phone": phone,
            "address": "浙江省杭州市西湖区文三路100号",
            "room": "201",
            # A check-in may be dated a few days back at most: a fixed date would expire.
            "check_in": arrival.isoformat(timespec="seconds"),
            "expected_check_out": (arrival + dt.timedelta(days=2)).date().isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    assert id_number not in response.text  # the host sees it masked

    # Waiting in the outbox, and still no personal data in clear anywhere in the files.
    for path in agent.data_dir.glob("*.sqlite3*"):
        raw = path.read_bytes()
        assert id_number.encode() not in raw, path.name
        assert phone.encode() not in raw, path.name

    mosquitto.start()
    centre = command_centre
    assert centre.wait_for(lambda: centre.reports(DEVICE, "registration"), 60)
    report = centre.reports(DEVICE, "registration")[0]
    assert report["kind"] == "registration"
    assert report["data"]["action"] == "check_in"
    assert report["data"]["guest"]["id_number"] == id_number
    assert json.dumps(report, ensure_ascii=False).count("山居民宿") >= 1
    assert agent.stop(signal.SIGTERM) == 0


def test_a_busy_web_port_is_one_clear_error(
    agent_factory: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    agent = agent_factory({"device": {"id": "k1"}})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", agent.port))
        taken.listen()
        result = agent.run_to_exit()
    assert result.returncode == 1
    assert f"the web UI cannot listen on 127.0.0.1:{agent.port}" in result.stderr
    assert "Traceback" not in result.stderr
