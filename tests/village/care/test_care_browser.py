"""The kiosk check-in in headless Chromium at the kiosk's 1024x600: tap the name, type the PIN
on the keypad, "我很好"; the carer's list then shows the person checked in.

Screenshots (kiosk-care-*.png, staff-care-*.png) go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from agent.village.care import CareService, PersonInput
from tests.fixtures.browser import USERS, WebServer
from tests.integration.test_web_ui import (
    KIOSK,
    PHONE,
    TIMEOUT_MS,
    assert_touch_friendly,
    new_page,
    shoot,
    sign_in,
)

pytestmark = pytest.mark.integration

PIN = "4826"
GUARDIAN, CARER = USERS["family"], USERS["staff"]


def tap_pin(page: Any, digits: str) -> None:
    for digit in digits:
        page.click(f'[data-keypad] [data-key="{digit}"]')


def test_an_elder_checks_in_at_the_kiosk_and_the_carer_sees_it(
    web_server: WebServer, chromium: Any, screenshots_dir: Path
) -> None:
    for username, role in ((GUARDIAN, "family"), (CARER, "staff")):
        if web_server.parts.context.accounts.get_user(username) is None:
            web_server.parts.add_user(username, role)
    care = web_server.parts.context.service(CareService)
    granny = care.register(
        PersonInput("王奶奶", "elder", GUARDIAN, CARER, PIN, deadline="23:59"), actor=CARER
    )
    care.register(PersonInput("小明", "child", GUARDIAN, CARER, "9371"), actor=CARER)

    kiosk = new_page(chromium, KIOSK)
    kiosk.goto(web_server.url("/"))
    kiosk.click('[data-home-tiles] a[data-tile="/kiosk/care"]')
    kiosk.wait_for_url(re.compile(r"/kiosk/care$"))
    tile = kiosk.locator(f'[data-person="{granny.id}"]')
    expect(tile).to_have_text("王奶奶", timeout=TIMEOUT_MS)
    box = tile.bounding_box()
    assert box is not None and box["height"] >= 100, "a tile an elder can hit"
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-care-names")

    tile.click()
    kiosk.wait_for_url(re.compile(rf"/kiosk/care/{granny.id}$"))
    tap_pin(kiosk, "1357")
    kiosk.click(".care-fine")
    expect(kiosk.locator(".error-box")).to_contain_text("密码不对", timeout=TIMEOUT_MS)
    kiosk.click('[data-key="clear"]')
    tap_pin(kiosk, PIN + "9")
    kiosk.click('[data-key="back"]')
    assert kiosk.input_value("#pin") == PIN
    fine = kiosk.locator(".care-fine")
    fine_box = fine.bounding_box()
    assert fine_box is not None and fine_box["height"] >= 64
    assert fine_box["y"] + fine_box["height"] <= KIOSK["height"], "'我很好' fits without scrolling"
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-care-pin")
    fine.click()
    expect(kiosk.locator(f'[data-checked-in="{granny.id}"]')).to_have_text(
        "王奶奶，今天已打卡", timeout=TIMEOUT_MS
    )
    shoot(kiosk, screenshots_dir, "kiosk-care-done")
    kiosk.context.close()

    staff = new_page(chromium, PHONE, phone=True)
    sign_in(staff, web_server, CARER, "/care")
    row = staff.locator(f'tr[data-person="{granny.id}"] [data-state]')
    expect(row).to_have_attribute("data-state", "checked_in", timeout=TIMEOUT_MS)
    expect(row).to_have_text("已打卡")
    assert_touch_friendly(staff, PHONE["width"])
    shoot(staff, screenshots_dir, "staff-care-today")
    staff.context.close()
