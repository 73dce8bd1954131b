"""Feedback in headless Chromium (Debian's): left anonymously on the kiosk screen at 1024x600,
answered by a staff member, read back on the kiosk screen with the code.

Screenshots (kiosk-feedback-*.png, staff-feedback-*.png) go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.browser import USERS, WebServer
from tests.integration.test_web_ui import KIOSK, assert_touch_friendly, new_page, shoot, sign_in

pytestmark = pytest.mark.integration

STAFF = USERS["staff"]


def test_feedback_is_left_at_the_kiosk_answered_and_read_back_by_code(
    web_server: WebServer, chromium: Any, screenshots_dir: Path
) -> None:
    from playwright.sync_api import expect

    web_server.parts.add_user(STAFF, "staff")

    # --- the kiosk screen: an empty text first, then the feedback ------------------------------
    kiosk = new_page(chromium, KIOSK)
    kiosk.goto(web_server.url("/feedback/reply"))
    kiosk.click('nav a[href="/"]')
    kiosk.click('[data-home-tiles] a[data-tile="/feedback"]')
    kiosk.wait_for_url(re.compile(r"/feedback$"))
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-feedback-form")
    kiosk.click('label.choice:has(input[value="suggestion"])')
    kiosk.fill("#text", "   ")  # passes the browser's "required", not the service
    kiosk.click("form[data-feedback-form] button[type=submit]")
    expect(kiosk.locator(".error-box")).to_contain_text("请填写意见内容")
    kiosk.fill("#text", "希望在村口装一盏路灯，晚上回家太黑。")
    kiosk.click("form[data-feedback-form] button[type=submit]")
    code_box = kiosk.locator("[data-feedback-code]")
    code_box.wait_for(timeout=15000)
    code = code_box.inner_text().strip()
    assert re.fullmatch(r"[A-Z2-9]{6}", code)
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-feedback-code")
    # Not answered yet.
    kiosk.click('a[href="/feedback/reply"] >> nth=-1')
    kiosk.fill("#code", code)
    kiosk.click("form[data-lookup-form] button[type=submit]")
    expect(kiosk.locator("[data-no-reply]")).to_be_visible()

    # --- staff answer ----------------------------------------------------------------------------
    staff = new_page(chromium, KIOSK)
    sign_in(staff, web_server, STAFF, "/staff/feedback")
    staff.select_option("#state", "new")
    staff.click("form.search button[type=submit]")
    row = staff.locator("[data-feedback-list] tbody tr").filter(has_text="路灯")
    expect(row).to_have_count(1)
    row.locator("a").click()
    staff.wait_for_url(re.compile(r"/staff/feedback/\d+$"))
    expect(staff.locator("[data-text]")).to_contain_text("村口装一盏路灯")
    staff.fill("#reply", "已列入下月村务计划，月底前安装。")
    assert_touch_friendly(staff, KIOSK["width"])
    shoot(staff, screenshots_dir, "staff-feedback-reply")
    staff.click("form[data-reply-form] button[type=submit]")
    staff.wait_for_url(re.compile(r"\?done=replied$"))
    expect(staff.locator('[data-state="answered"]')).to_be_visible()
    staff.context.close()

    # --- read back on the kiosk screen: a wrong code, then the right one ----------------------
    kiosk.goto(web_server.url("/feedback/reply"))
    kiosk.fill("#code", "ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY")
    kiosk.click("form[data-lookup-form] button[type=submit]")
    expect(kiosk.locator(".error-box")).to_contain_text("没有这个查询码")
    kiosk.fill("#code", code.lower())
    kiosk.click("form[data-lookup-form] button[type=submit]")
    expect(kiosk.locator("[data-reply]")).to_have_text("已列入下月村务计划，月底前安装。")
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-feedback-reply")
    kiosk.context.close()
