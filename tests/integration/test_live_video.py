"""Live video in headless Chromium against the real agent: an officer opens the patrol page and
watches cameras over WebRTC; the browser decodes the frames, a privacy-masked camera is black
inside its mask in the browser's own pixels, one viewer over the limit is told "busy" while the
others keep playing, every view is in the audit log with its start and end, and the relay-only
path through a real TURN server (coturn) works too.

The time from offer to first decoded frame is printed (a figure, not an assertion).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.agent import REPO, AgentProcess
from tests.fixtures.turn import TURN_PASSWORD, TURN_USER, TurnServer

pytestmark = pytest.mark.integration

PASSWORD = "patrol-password-2024"
OFFICER, OTHER = "wu.police", "sun.police"
FPS = 10
TIMEOUT_MS = 20_000
# The left third of the "yard" camera is someone's window.
MASK = [[0.0, 0.0], [0.33, 0.0], [0.33, 1.0], [0.0, 1.0]]


def add_user(agent: AgentProcess, username: str, role: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent", "user", "add", "--config", str(agent.config_path),
         "--data-dir", str(agent.data_dir), "--username", username, "--role", role],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def sections(**rtc: Any) -> dict[str, Any]:
    return {
        "device": {"id": "live-test"},
        "cameras": [
            {
                "id": "square",
                "name": "村口广场",
                "source": "sim://walking_person?seed=1",
                "fps": FPS,
                "resolution": "640x480",
            },
            {
                "id": "yard",
                "name": "院子",
                "source": "sim://walking_person?seed=2",
                "fps": FPS,
                "resolution": "640x480",
                "privacy_masks": [{"name": "window", "points": MASK}],
            },
        ],
        "rtc": {"max_viewers_per_camera": 2, **rtc},
    }


def start_agent(factory: Callable[..., AgentProcess], **rtc: Any) -> AgentProcess:
    agent = factory(sections(**rtc))
    agent.data_dir.mkdir(parents=True, exist_ok=True)
    for username in (OFFICER, OTHER):
        add_user(agent, username, "police")
    agent.start()
    return agent


def patrol_page(chromium: Any, agent: AgentProcess, username: str) -> Any:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{agent.url}/login?next=/police/patrol")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(r"/police/patrol$"))
    return page


def watch(page: Any, camera: str) -> float:
    """Tap "watch live"; returns the seconds from the tap to the first decoded frame."""
    started = time.monotonic()
    page.click(f'[data-live-camera="{camera}"] [data-live-start]')
    page.wait_for_function(
        """camera => window.kioskLive.decoded(camera).then(
               s => s !== null && s.mode === "webrtc" && s.framesDecoded > 0)""",
        arg=camera,
        polling=50,
    )
    return time.monotonic() - started


def frames(page: Any, camera: str) -> int:
    stats = page.evaluate("camera => window.kioskLive.decoded(camera)", camera)
    assert stats is not None and stats["mode"] == "webrtc", stats
    return int(stats["framesDecoded"])


def decoded_over(page: Any, camera: str, seconds: float) -> float:
    """Frames per second the browser decoded over ``seconds`` (the page keeps playing)."""
    before = frames(page, camera)
    page.wait_for_timeout(seconds * 1000)
    return (frames(page, camera) - before) / seconds


def audit_rows(agent: AgentProcess, action: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=agent.url, timeout=10) as client:
        token = client.get("/api/session").json()["csrf_token"]
        response = client.post(
            "/api/session",
            json={"username": OTHER, "password": PASSWORD},
            headers={"X-CSRF-Token": token},
        )
        assert response.status_code == 200, response.text
        rows = client.get("/api/audit", params={"action": action, "limit": 100}).json()
    return [dict(row) for row in rows]


def test_an_officer_watches_live_and_each_view_is_audited(
    agent_factory: Callable[..., AgentProcess], chromium: Any
) -> None:
    agent = start_agent(agent_factory)
    page = patrol_page(chromium, agent, OFFICER)
    assert page.locator('[data-live-camera="square"]').count() == 1

    first_frame = watch(page, "square")
    print(f"offer to first decoded frame: {first_frame * 1000:.0f} ms (loopback, headless)")
    rate = decoded_over(page, "square", 3.0)
    print(f"decoded {rate:.1f} frames/s of a {FPS} fps camera")
    assert rate >= FPS * 0.5, f"the browser decodes {rate:.1f} fps of {FPS}"

    page.click('[data-live-camera="square"] [data-live-stop]')
    page.wait_for_function("() => Object.keys(window.kioskLive.players).length === 0")
    ends: list[dict[str, Any]] = []

    def ended() -> bool:
        ends[:] = [r for r in audit_rows(agent, "camera.live_end") if r["actor"] == OFFICER]
        return bool(ends)

    deadline = time.monotonic() + 20
    while not ended() and time.monotonic() < deadline:
        time.sleep(0.2)
    starts = [r for r in audit_rows(agent, "camera.live") if r["actor"] == OFFICER]
    assert [r["subject"] for r in starts] == ["camera:square"]
    assert [r["subject"] for r in ends] == ["camera:square"]
    assert "reason=hangup" in ends[0]["detail"]
    page.context.close()
    assert agent.stop() == 0


def test_a_masked_camera_is_black_inside_the_mask_in_the_browser(
    agent_factory: Callable[..., AgentProcess], chromium: Any
) -> None:
    agent = start_agent(agent_factory)
    page = patrol_page(chromium, agent, OFFICER)
    watch(page, "yard")
    page.wait_for_function(
        """() => { const v = document.querySelector('[data-live-camera="yard"] video');
                   return v && v.videoWidth > 0 && v.readyState >= 2; }"""
    )
    page.wait_for_timeout(1500)  # a few frames in, past the first keyframe
    levels = page.evaluate(
        """() => {
          const video = document.querySelector('[data-live-camera="yard"] video');
          const canvas = document.createElement("canvas");
          canvas.width = video.videoWidth; canvas.height = video.videoHeight;
          const g = canvas.getContext("2d");
          g.drawImage(video, 0, 0);
          const w = canvas.width, h = canvas.height;
          // Inside the mask, away from its edge (video compression blurs a few pixels).
          const inside = g.getImageData(4, 4, Math.floor(w * 0.33) - 12, h - 8).data;
          const outside = g.getImageData(Math.floor(w * 0.45), 0, Math.floor(w * 0.5), h).data;
          let maxInside = 0, sum = 0, sumSq = 0, n = 0;
          for (let i = 0; i < inside.length; i += 4) {
            maxInside = Math.max(maxInside, inside[i], inside[i + 1], inside[i + 2]);
          }
          for (let i = 0; i < outside.length; i += 4) {
            const y = (outside[i] + outside[i + 1] + outside[i + 2]) / 3;
            sum += y; sumSq += y * y; n += 1;
          }
          const mean = sum / n;
          return {maxInside, mean, std: Math.sqrt(sumSq / n - mean * mean), w, h};
        }"""
    )
    print(f"yard in the browser: {levels}")
    assert levels["maxInside"] <= 24, levels
    assert levels["std"] > 5, "outside the mask the scene shows"
    page.context.close()
    assert agent.stop() == 0


def test_one_viewer_over_the_limit_is_busy_while_the_others_play(
    agent_factory: Callable[..., AgentProcess], chromium: Any
) -> None:
    agent = start_agent(agent_factory)
    viewers = [patrol_page(chromium, agent, name) for name in (OFFICER, OTHER, OFFICER)]
    for page in viewers[:2]:
        watch(page, "square")
    late = viewers[2]
    late.click('[data-live-camera="square"] [data-live-start]')
    late.wait_for_function(
        """() => document.querySelector('[data-live-camera="square"] [data-live-status]')
                   .textContent.length > 0 && !window.kioskLive.players["square"]"""
    )
    status = late.locator('[data-live-camera="square"] [data-live-status]').inner_text()
    assert "人数已满" in status, status
    for page in viewers[:2]:
        assert decoded_over(page, "square", 2.0) >= FPS * 0.5
    for page in viewers:
        page.context.close()
    assert agent.stop() == 0


def test_the_relay_path_through_turn(
    agent_factory: Callable[..., AgentProcess],
    chromium: Any,
    turn_server: TurnServer,
    tmp_path: Any,
) -> None:
    credential = tmp_path / "turn-credential"
    credential.write_text(TURN_PASSWORD + "\n")
    agent = start_agent(
        agent_factory,
        ice_servers=[
            {"urls": [turn_server.url], "username": TURN_USER, "credential_file": str(credential)},
        ],
    )
    page = patrol_page(chromium, agent, OFFICER)
    # As a phone behind a 4G NAT: the browser may use nothing but the TURN relay.
    page.evaluate(
        """() => document.querySelector('[data-live-camera="square"]')
                   .setAttribute("data-live-policy", "relay")"""
    )
    first_frame = watch(page, "square")
    print(f"relay path: first decoded frame after {first_frame * 1000:.0f} ms")
    rate = decoded_over(page, "square", 3.0)
    print(f"relay path: {rate:.1f} frames/s")
    assert rate >= FPS * 0.3, "frames keep arriving through the relay"
    assert turn_server.allocations() > 0, "coturn holds a relay for the view"
    pair = page.evaluate(
        """() => window.kioskLive.players["square"].pc.getStats().then(report => {
              let pair = null, local = {};
              report.forEach(s => { if (s.type === "local-candidate") local[s.id] = s; });
              report.forEach(s => {
                if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded")
                  pair = local[s.localCandidateId];
              });
              return pair && pair.candidateType;
           })"""
    )
    assert pair == "relay", pair
    page.context.close()
    assert agent.stop() == 0


def test_a_browser_without_webrtc_gets_the_stills_with_the_same_audit(
    agent_factory: Callable[..., AgentProcess], chromium: Any
) -> None:
    agent = start_agent(agent_factory)
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    # A browser (or a network) where WebRTC is not there at all.
    context.add_init_script("delete window.RTCPeerConnection;")
    page = context.new_page()
    page.goto(f"{agent.url}/login?next=/police/patrol")
    page.fill("#username", OFFICER)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(r"/police/patrol$"))
    page.click('[data-live-camera="yard"] [data-live-start]')
    page.wait_for_function(
        """() => { const img = document.querySelector('[data-live-camera="yard"] img.live-video');
                   return img && img.complete && img.naturalWidth === 640; }"""
    )
    status = page.locator('[data-live-camera="yard"] [data-live-status]').inner_text()
    assert "图片" in status, status  # the viewer is told why it is stills
    starts = [r for r in audit_rows(agent, "camera.live") if r["actor"] == OFFICER]
    assert [r["subject"] for r in starts] == ["camera:yard"]
    assert starts[0]["detail"].endswith("mjpeg")
    page.click('[data-live-camera="yard"] [data-live-stop]')
    deadline = time.monotonic() + 20
    ends: list[dict[str, Any]] = []
    while not ends and time.monotonic() < deadline:
        ends = [r for r in audit_rows(agent, "camera.live_end") if r["actor"] == OFFICER]
        time.sleep(0.2)
    assert ends and ends[0]["subject"] == "camera:yard"
    context.close()
    assert agent.stop() == 0
