"""In Chromium: an urgent notice from the county command centre, over a real broker and the real
agent, takes the kiosk screen until acknowledged there, and the acknowledgement reaches the
centre; the kiosk's home tiles at 1024x600; where each role lands after signing in."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulators.command_center import CommandCenter
from tests.fixtures.agent import AgentProcess
from tests.fixtures.browser import PASSWORD, WebServer
from tests.fixtures.mosquitto import MosquittoBroker, centre_keys
from tests.integration.test_agent_e2e import DEVICE, kiosk_sections

pytestmark = pytest.mark.integration

KIOSK = {"width": 1024, "height": 600}
TIMEOUT_MS = 15_000
# Big enough for an elder to hit and read at arm's length.
MIN_TILE_HEIGHT = 120


def new_page(chromium: Any, base_url: str) -> Any:
    context = chromium.new_context(
        viewport=KIOSK, locale="zh-CN", has_touch=True, device_scale_factor=1, base_url=base_url
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def test_an_urgent_notice_from_the_command_centre_holds_the_kiosk_until_acknowledged(
    agent_factory: Callable[..., AgentProcess],
    mosquitto: MosquittoBroker,
    chromium: Any,
    screenshots_dir: Path,
) -> None:
    keys = centre_keys(mosquitto.workdir)
    cameras = [{"id": "gate", "source": "sim://empty", "fps": 5, "resolution": "160x120"}]
    agent = agent_factory(kiosk_sections(mosquitto, cameras))
    centre = CommandCenter(port=mosquitto.port, kiosks=[DEVICE], report_key=keys.private).start()
    try:
        agent.start()
        assert centre.wait_for(lambda: centre.status(DEVICE) == "online", 30)
        # The kiosk's own browser: the agent's web UI on loopback, nobody signed in.
        page = new_page(chromium, agent.url)
        page.goto("/")
        page.locator("[data-home-tiles]").wait_for()
        overlay = page.locator("[data-urgent-notice]")
        assert overlay.count() == 0

        refused = centre.command(DEVICE, "notice", {"title": "山洪预警", "urgency": "urgent"}, 30)
        assert refused["ok"] is False
        assert refused["error"].startswith("text: Enter the text of the notice.")

        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        body = {
            "title": "山洪预警",
            "text": "上游降雨，沿河住户请立即转移到村委会。",
            "urgency": "urgent",
            "expires_at": expires.isoformat(timespec="seconds"),
        }
        reply = centre.command(DEVICE, "notice", body, timeout=30)
        assert reply["ok"] is True, reply
        notice_id = reply["result"]["notice"]

        overlay.wait_for(state="visible")
        assert overlay.locator(".urgent-title").inner_text() == "山洪预警"
        assert "沿河住户" in overlay.locator(".urgent-text").inner_text()
        box = overlay.bounding_box()
        assert box is not None and (box["width"], box["height"]) == (1024, 600), "whole screen"
        ack = overlay.locator("[data-urgent-ack]")
        assert ack.inner_text() == "已知晓"
        page.screenshot(path=str(screenshots_dir / "kiosk-urgent-notice.png"))
        # Whatever page the screen shows: the notice is there too.
        page.goto("/notices")
        overlay.wait_for(state="visible")
        assert page.locator(f'[data-notice="{notice_id}"].notice-item.urgent').count() == 1

        ack.click()
        overlay.wait_for(state="hidden")
        assert centre.wait_for(lambda: centre.reports(DEVICE, "notice_ack"), 30)
        (report,) = centre.reports(DEVICE, "notice_ack")
        assert report["data"]["notice"] == notice_id
        acknowledged = dt.datetime.fromisoformat(report["data"]["acknowledged_at"])
        assert abs(acknowledged - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
        # Acknowledged, it stays away from the screen (the next polls find nothing to show).
        page.reload()
        page.locator("[data-notice-board]").wait_for()
        with page.expect_response(lambda r: r.url.endswith("/api/kiosk/notices")) as polled:
            pass  # the page's next poll, within a few seconds
        assert polled.value.json()["urgent"] is None
        assert overlay.is_hidden()
        page.context.close()
    finally:
        centre.stop()
        agent.stop()


def test_the_kiosk_home_shows_big_tiles_for_the_anonymous_services(
    web_server: WebServer, chromium: Any, screenshots_dir: Path
) -> None:
    page = new_page(chromium, web_server.base_url)
    page.goto("/")
    expected = [
        entry.path
        for web in page_webs(web_server)
        for entry in web.nav
        if entry.tile and None in entry.roles
    ]
    tiles = page.locator("[data-home-tiles] a[data-tile]")
    tiles.first.wait_for()
    assert [tiles.nth(i).get_attribute("data-tile") for i in range(tiles.count())] == expected
    assert "/notices" in expected
    for index in range(tiles.count()):
        tile = tiles.nth(index)
        box = tile.bounding_box()
        assert box is not None and box["height"] >= MIN_TILE_HEIGHT, tile.inner_text()
        assert box["x"] >= 0 and box["x"] + box["width"] <= KIOSK["width"]
        assert tile.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 28
    # The first row of tiles is on the screen without scrolling.
    first = tiles.first.bounding_box()
    assert first is not None and first["y"] + first["height"] <= KIOSK["height"]
    # Camera status stays below.
    assert page.locator('[data-camera="square"]').count() == 1
    page.screenshot(path=str(screenshots_dir / "kiosk-home.png"))
    page.locator('a[data-tile="/notices"]').click()
    page.wait_for_url(re.compile(r"/notices$"))
    page.context.close()


def page_webs(web_server: WebServer) -> list[Any]:
    from web_ui.village import service_webs

    return service_webs(web_server.parts.context.services)


@pytest.mark.parametrize(
    ("role", "start"),
    [("host", r"/host/homestays$"), ("police", r"/police/patrol$"), ("staff", r"/$")],
)
def test_each_role_lands_on_its_start_page(
    web_server: WebServer, chromium: Any, role: str, start: str
) -> None:
    username = f"landing.{role}"
    web_server.parts.add_user(username, role)
    page = new_page(chromium, web_server.base_url)
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(start))
    page.locator("form[data-logout]").wait_for()
    page.goto("/")
    assert "请登录" not in page.inner_text("main")
    if role == "staff":
        assert page.locator('[data-home-tiles] a[data-tile="/notices/manage"]').count() == 1
    page.context.close()


def test_the_kiosk_screen_returns_home_from_a_service_page_when_left_alone(
    web_server: WebServer, chromium: Any
) -> None:
    page = new_page(chromium, web_server.base_url)
    page.clock.install()
    page.goto("/")
    page.locator('a[data-tile="/notices"]').click()
    page.wait_for_url(re.compile(r"/notices$"))
    idle_ms = int(web_server.parts.context.config.web.kiosk_idle_seconds) * 1000
    page.clock.run_for(idle_ms - 5_000)
    assert page.url.endswith("/notices"), "not before the idle time"
    page.clock.run_for(10_000)
    page.wait_for_url(web_server.url("/"))
    page.locator("[data-home-tiles]").wait_for()
    page.context.close()
