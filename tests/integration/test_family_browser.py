"""The family link in headless Chromium (Debian's): a villager makes an invite at the kiosk
screen with the household PIN, a phone redeems it with a new family account and lands on the
family page with that household's cameras only.

Screenshots (kiosk-family-*.png at 1024x600, phone-family-*.png at 360x740) go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.browser import PASSWORD, WebServer
from tests.integration.test_web_ui import KIOSK, PHONE, assert_touch_friendly, new_page, shoot

pytestmark = pytest.mark.integration

PIN = "730519"


def tap_pin(page: Any, digits: str) -> None:
    for digit in digits:
        page.click(f'[data-keypad] [data-key="{digit}"]')


def test_a_household_links_a_phone_at_the_kiosk(
    web_server: WebServer, chromium: Any, screenshots_dir: Path
) -> None:
    family = web_server.parts.context.family
    zhang = family.create_household("张家", PIN, ["square"], actor="zhao.admin")
    li = family.create_household("李家", "582913", [], actor="zhao.admin")

    # --- the kiosk screen: pick the household, type the PIN on the keypad ----------------------
    kiosk = new_page(chromium, KIOSK)
    kiosk.goto(web_server.url("/family/join"))
    kiosk.click('a[href="/kiosk/family"]')
    kiosk.wait_for_url(re.compile(r"/kiosk/family$"))
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-family-households")
    kiosk.click(f'[data-household="{zhang.id}"]')
    kiosk.wait_for_url(re.compile(rf"/kiosk/family/{zhang.id}$"))
    tap_pin(kiosk, "000000")
    assert kiosk.input_value("#pin") == "000000"
    kiosk.click("form.form button[type=submit]")
    assert "家庭密码不对" in kiosk.inner_text(".error-box")
    assert kiosk.locator("[data-invite-code]").count() == 0
    kiosk.click('[data-key="clear"]')
    tap_pin(kiosk, PIN + "9")
    kiosk.click('[data-key="back"]')
    assert kiosk.input_value("#pin") == PIN
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-family-pin")
    kiosk.click("form.form button[type=submit]")
    code = kiosk.inner_text("[data-invite-code]").strip()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    link = kiosk.inner_text("[data-invite-link]").strip()
    assert link.endswith("/family/join?code=" + code.replace("-", ""))
    qr = kiosk.locator("svg.qr").bounding_box()
    assert qr is not None and qr["width"] >= 200, "a QR code big enough to scan"
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-family-invite")
    kiosk.context.close()

    # --- the phone: the QR link, a new family account -----------------------------------------
    phone = new_page(chromium, PHONE, phone=True)
    phone.goto(link)
    assert phone.input_value("#code") == code.replace("-", "")
    phone.fill("#username", "zhang.san")
    phone.fill("#password", PASSWORD)
    phone.fill("#password_again", PASSWORD)
    assert_touch_friendly(phone, PHONE["width"])
    shoot(phone, screenshots_dir, "phone-family-join")
    phone.click("form.form button[type=submit]")
    phone.wait_for_url(re.compile(r"/family\?done=linked$"))
    main = phone.inner_text("main")
    assert "张家" in main and "李家" not in main
    cameras = phone.locator("[data-live-camera]")
    assert cameras.count() == 1
    assert cameras.first.get_attribute("data-live-camera") == "square"
    assert cameras.first.get_attribute("data-live-tier") == "low"
    assert_touch_friendly(phone, PHONE["width"])
    shoot(phone, screenshots_dir, "phone-family-home")

    # Another household is not there for this account: not in the API, not to leave.
    households = phone.request.get(web_server.url("/api/family/households")).json()
    assert [household["name"] for household in households] == ["张家"]
    token = phone.get_attribute('meta[name="csrf-token"]', "content") or phone.get_attribute(
        'input[name="csrf_token"]', "value"
    )
    refused = phone.request.post(
        web_server.url(f"/family/households/{li.id}/leave"), headers={"X-CSRF-Token": token}
    )
    assert refused.status == 404
    assert family.cameras_for("zhang.san") == {"square"}

    # The code was used once: a second phone gets a refusal.
    other = new_page(chromium, PHONE, phone=True)
    other.goto(link)
    other.fill("#username", "zhang.mei")
    other.fill("#password", PASSWORD)
    other.fill("#password_again", PASSWORD)
    other.click("form.form button[type=submit]")
    assert "邀请码不对、已用过或已过期" in other.inner_text(".error-box")
    assert web_server.parts.context.accounts.get_user("zhang.mei") is None
    other.context.close()
    phone.context.close()
