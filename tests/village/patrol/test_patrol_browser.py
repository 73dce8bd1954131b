"""An admin defines a patrol route and an officer walks a round in headless Chromium (Debian's)
against the web UI with a real simulated camera: the camera is shown (live video, or its
snapshot where live video is off), "next" waits for the minimum look time, the note is kept,
the round is recorded completed and the weekly report counts it.

Screenshots at the kiosk size (1024x600) and the phone size (360x740) go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agent.village.patrol import PatrolService, RoundStatus
from tests.fixtures.browser import WebServer
from tests.integration.test_web_ui import assert_touch_friendly, new_page, shoot, sign_in

pytestmark = pytest.mark.integration

KIOSK = {"width": 1024, "height": 600}
PHONE = {"width": 360, "height": 740}
ADMIN, OFFICER = "zhao.admin", "li.police"
TIMEOUT_MS = 15_000
NOTE = "村口路灯不亮，已记录"
# The camera is on screen: a decoded WebRTC frame, or the snapshot picture loaded.
CAMERA_SHOWN = """async (camera) => {
  const still = document.querySelector('[data-patrol-still]');
  if (still && !still.hidden && still.complete && still.naturalWidth > 0) { return "snapshot"; }
  if (window.kioskLive) {
    const stats = await window.kioskLive.decoded(camera);
    if (stats && stats.framesDecoded > 0) { return "video"; }
  }
  return false;
}"""


def watch_console(page: Any) -> list[str]:
    """Console errors (a script refused by the page's CSP shows up here)."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def test_admin_defines_a_route_and_an_officer_walks_a_round(
    web_server: WebServer, chromium: Any, screenshots_dir: Path
) -> None:
    from playwright.sync_api import expect

    parts = web_server.parts
    parts.add_user(ADMIN, "admin")
    parts.add_user(OFFICER, "police")
    service = parts.context.service(PatrolService)

    # --- the admin defines a one-camera route with a short minimum look time ---------------
    admin = new_page(chromium, KIOSK)
    sign_in(admin, web_server, ADMIN, "/admin/patrol/routes")
    admin.fill("#name", "夜间必巡线")
    admin.select_option("#point_1", "square")
    admin.fill("#min_look_seconds", "2")
    admin.fill("#schedule", "22:00-23:00, 01:00-02:00, 04:00-05:00")
    admin.click("form[data-route-form] button.primary")
    admin.wait_for_url(re.compile(r"/admin/patrol/routes\?done=created$"))
    assert_touch_friendly(admin, KIOSK["width"])
    shoot(admin, screenshots_dir, "patrol-admin-routes")
    (route,) = service.list_routes()
    assert (route.cameras, route.min_look_seconds) == (("square",), 2)
    admin.context.close()

    # --- the officer walks a round -----------------------------------------------------------
    officer = new_page(chromium, KIOSK)
    problems = watch_console(officer)
    sign_in(officer, web_server, OFFICER, "/police/patrol/rounds")
    officer.click(f'[data-start-route="{route.id}"] button')
    officer.wait_for_url(re.compile(r"/police/patrol/rounds/\d+$"))
    round_id = int(officer.url.rsplit("/", 1)[1])
    next_button = officer.locator("[data-patrol-next]")
    shown = officer.wait_for_function(CAMERA_SHOWN, arg="square", timeout=TIMEOUT_MS)
    assert shown.json_value() in {"snapshot", "video"}
    officer.fill("#note", NOTE)
    expect(next_button).to_be_enabled(timeout=TIMEOUT_MS)
    assert_touch_friendly(officer, KIOSK["width"])
    shoot(officer, screenshots_dir, "patrol-round-point")
    next_button.click()
    officer.wait_for_url(re.compile(rf"/police/patrol/rounds/{round_id}\?done=completed$"))
    expect(officer.locator("[data-round-status]")).to_have_attribute(
        "data-round-status", "completed"
    )
    expect(officer.locator('[data-point="0"] [data-point-note]')).to_have_text(NOTE)
    shoot(officer, screenshots_dir, "patrol-round-done")

    walked = service.get_round(round_id)
    assert walked.status is RoundStatus.COMPLETED
    assert walked.officer == OFFICER
    assert [point.note for point in walked.points] == [NOTE]
    look = walked.points[0].look_seconds
    assert look is not None and look >= 2
    reported = [payload for kind, payload in parts.reports if kind == "patrol_round"]
    assert [(p["round_id"], p["status"], p["notes"]) for p in reported] == [
        (round_id, "completed", 1)
    ]

    # --- the weekly report counts it -----------------------------------------------------
    officer.goto(web_server.url("/police/patrol/report"))
    row = officer.locator(f'[data-report-row][data-officer="{OFFICER}"]')
    expect(row.locator("[data-completed]")).to_have_text("1")
    expect(row.locator("[data-partial]")).to_have_text("0")
    shoot(officer, screenshots_dir, "patrol-report")
    assert problems == [], problems
    officer.context.close()

    # --- the records on a phone ------------------------------------------------------------
    phone = new_page(chromium, PHONE, phone=True)
    sign_in(phone, web_server, OFFICER, "/police/patrol/rounds")
    expect(phone.locator(f'[data-round="{round_id}"]')).to_have_attribute(
        "data-status", "completed"
    )
    assert_touch_friendly(phone, PHONE["width"])
    shoot(phone, screenshots_dir, "patrol-records-phone")
    phone.context.close()
