"""A round on the real agent (``python -m agent run``) in headless Chromium: each point's
camera plays live over WebRTC (frames decoded in the browser), the snapshot stands aside while
it plays, every live view is audited like any other, and the round ends completed."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.fixtures.agent import REPO, AgentProcess

pytestmark = pytest.mark.integration

PASSWORD = "patrol-password-2024"
OFFICER, ADMIN = "wu.police", "qian.admin"
TIMEOUT_MS = 20_000
PLAYING = """camera => window.kioskLive && window.kioskLive.decoded(camera).then(
    s => s !== null && s.mode === "webrtc" && s.framesDecoded > 0)"""


def add_user(agent: AgentProcess, username: str, role: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent", "user", "add", "--config", str(agent.config_path),
         "--data-dir", str(agent.data_dir), "--username", username, "--role", role],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def signed_in(agent: AgentProcess, username: str) -> httpx.Client:
    client = httpx.Client(base_url=agent.url, timeout=10)
    token = client.get("/api/session").json()["csrf_token"]
    response = client.post(
        "/api/session",
        json={"username": username, "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def test_each_point_of_a_round_plays_live_on_the_real_agent(
    agent_factory: Callable[..., AgentProcess], chromium: Any
) -> None:
    from playwright.sync_api import expect

    cameras = [
        {"id": camera, "name": name, "source": f"sim://walking_person?seed={seed}", "fps": 10,
         "resolution": "320x240"}
        for seed, (camera, name) in enumerate((("square", "村口广场"), ("yard", "院子")), 1)
    ]  # fmt: skip
    agent = agent_factory(
        {
            "device": {"id": "patrol-live"},
            "cameras": cameras,
            "services": {"patrol": {"timezone": "Asia/Shanghai"}},
        }
    )
    agent.data_dir.mkdir(parents=True, exist_ok=True)
    add_user(agent, OFFICER, "police")
    add_user(agent, ADMIN, "admin")
    agent.start()
    with closing(signed_in(agent, ADMIN)) as admin:
        made = admin.post(
            "/api/patrol/routes",
            json={"name": "夜间必巡线", "cameras": ["square", "yard"], "min_look_seconds": 1},
        )
        assert made.status_code == 201, made.text
        route_id = made.json()["id"]

    context = chromium.new_context(viewport={"width": 1024, "height": 600}, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{agent.url}/login?next=/police/patrol/rounds")
    page.fill("#username", OFFICER)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(r"/police/patrol/rounds$"))
    page.click(f'[data-start-route="{route_id}"] button')
    page.wait_for_url(re.compile(r"/police/patrol/rounds/\d+$"))
    round_id = int(page.url.rsplit("/", 1)[1])

    for camera in ("square", "yard"):
        expect(page.locator("[data-patrol-walk]")).to_have_attribute("data-patrol-camera", camera)
        page.wait_for_function(PLAYING, arg=camera, timeout=TIMEOUT_MS)
        expect(page.locator("[data-patrol-still]")).to_be_hidden()
        next_button = page.locator("[data-patrol-next]")
        expect(next_button).to_be_enabled()
        next_button.click()
        page.wait_for_load_state()
    page.wait_for_url(re.compile(rf"/police/patrol/rounds/{round_id}\?done=completed$"))
    context.close()

    with closing(signed_in(agent, ADMIN)) as admin:
        walked = admin.get(f"/api/patrol/rounds/{round_id}").json()
        assert walked["status"] == "completed"
        assert [p["camera_id"] for p in walked["points"]] == ["square", "yard"]
        views = admin.get(
            "/api/audit", params={"actor": OFFICER, "action": "camera.live", "limit": 50}
        ).json()
    assert {row["subject"] for row in views} == {"camera:square", "camera:yard"}
