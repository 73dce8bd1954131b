"""Dispute mediation in headless Chromium (Debian's): disputes filed on the kiosk screen at
1024x600, taken by a staff member and walked to every outcome, then the statistics page with
the period's resolution rate.

Screenshots (kiosk-disputes-*.png, staff-disputes-*.png) go to test-artifacts/screenshots/.
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


def file_at_kiosk(page: Any, server: WebServer, category: str, name: str, text: str) -> str:
    # Home (the one menu entry the kiosk screen keeps), then the service's tile.
    page.click('nav a[href="/"]')
    page.click('[data-home-tiles] a[data-tile="/kiosk/disputes"]')
    page.wait_for_url(re.compile(r"/kiosk/disputes$"))
    page.click(f'label.choice:has(input[value="{category}"])')
    page.fill("#party-0-name", name)
    page.fill("#party-0-phone", "13912345678")
    page.fill("#party-1-name", "对方")
    page.fill("#description", text)
    page.click("form[data-dispute-form] button[type=submit]")
    reference = page.locator("[data-reference]")
    reference.wait_for(timeout=15000)
    return reference.inner_text().strip()


def open_dispute(page: Any, server: WebServer, reference: str) -> None:
    page.goto(server.url("/disputes"))
    page.click(f'tr[data-dispute="{reference}"] a')
    page.wait_for_url(re.compile(r"/disputes/\d+$"))


def step(page: Any, state: str, department: str = "") -> None:
    if department:
        page.fill("#department", department)
    page.click(f'[data-state-form] button[data-to="{state}"]')
    page.wait_for_url(re.compile(r"\?done=changed$"))
    page.locator(f'[data-state="{state}"]').wait_for(timeout=15000)


def test_disputes_are_filed_mediated_to_every_outcome_and_counted(
    web_server: WebServer, chromium: Any, screenshots_dir: Path
) -> None:
    from playwright.sync_api import expect

    web_server.parts.add_user(STAFF, "staff")

    # --- the kiosk screen: an empty description first, then four disputes --------------------
    kiosk = new_page(chromium, KIOSK)
    kiosk.goto(web_server.url("/kiosk/disputes"))
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-disputes-form")
    kiosk.click('label.choice:has(input[value="neighbour"])')
    kiosk.fill("#party-0-name", "张三")
    kiosk.fill("#description", "   ")
    kiosk.click("form[data-dispute-form] button[type=submit]")
    expect(kiosk.locator(".error-box")).to_contain_text("请填写事情经过")
    assert kiosk.input_value("#party-0-name") == "张三"
    references = [
        file_at_kiosk(kiosk, web_server, category, name, text)
        for category, name, text in (
            ("neighbour", "张三", "邻居排水沟堵住了我家的院子。"),
            ("land", "李四", "承包地界桩被移动。"),
            ("debt", "王五", "借了两万元一年没还。"),
            ("family", "赵六", "兄弟分家产意见不一。"),
        )
    ]
    assert all(re.fullmatch(r"JF-[A-Z2-9]{6}", r) for r in references)
    assert len(set(references)) == 4
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-disputes-filed")
    kiosk.context.close()

    # --- a staff member takes each and walks it to an outcome --------------------------------
    staff = new_page(chromium, KIOSK)
    sign_in(staff, web_server, STAFF, "/disputes")
    expect(staff.locator("[data-disputes]")).to_contain_text(references[0])
    resolved, judicial, transferred, continuing = references
    open_dispute(staff, web_server, resolved)
    expect(staff.locator("main")).to_contain_text("张三")
    expect(staff.locator("main")).to_contain_text("139****5678")
    step(staff, "mediating")
    step(staff, "resolved")
    expect(staff.locator("[data-state-form]")).to_have_count(0)

    open_dispute(staff, web_server, judicial)
    step(staff, "mediating")
    step(staff, "continuing")
    step(staff, "mediating")
    step(staff, "judicial")

    open_dispute(staff, web_server, transferred)
    step(staff, "mediating")
    staff.click('[data-state-form] button[data-to="transferred"]')  # no department yet
    expect(staff.locator("[data-error]")).to_contain_text("请填写部门名称")
    step(staff, "transferred", department="镇人民政府信访办")
    expect(staff.locator("main")).to_contain_text("镇人民政府信访办")

    open_dispute(staff, web_server, continuing)
    step(staff, "mediating")
    step(staff, "continuing")
    expect(staff.locator("[data-history] tbody tr")).to_have_count(3)
    assert_touch_friendly(staff, KIOSK["width"])
    shoot(staff, screenshots_dir, "staff-disputes-detail")

    # --- the statistics of the period: 1 resolved of 4 with an outcome -------------------------
    staff.goto(web_server.url("/disputes/stats"))
    expect(staff.locator("[data-rate]")).to_have_text("25.0%")
    for state, count in (("resolved", 1), ("continuing", 1), ("judicial", 1),
                         ("transferred", 1), ("filed", 4), ("with_outcome", 4)):  # fmt: skip
        expect(staff.locator(f'[data-count="{state}"]')).to_have_text(str(count))
    expect(staff.locator("[data-definition]")).to_contain_text("化解率 = 化解成功的纠纷数")
    assert_touch_friendly(staff, KIOSK["width"])
    shoot(staff, screenshots_dir, "staff-disputes-stats")
    # A reversed period is refused with a message.
    start = staff.input_value("#date_from")
    end = staff.input_value("#date_to")
    staff.fill("#date_from", end)
    staff.fill("#date_to", start)
    staff.click("form.search button[type=submit]")
    expect(staff.locator("[data-error]")).to_contain_text("结束日期早于开始日期")
    staff.context.close()

    reports = [p for kind, p in web_server.parts.reports if kind == "dispute"]
    assert {p["state"] for p in reports} >= {"resolved", "judicial", "transferred", "continuing"}
    assert all("张三" not in str(p) and "1391234" not in str(p) for p in reports)
