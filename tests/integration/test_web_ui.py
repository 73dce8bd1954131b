"""A host and a police officer use the real web UI in headless Chromium (Debian's).

Screenshots at the kiosk size (1024x600) and the phone size (360x740) are saved into
test-artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agent.village.identity import check_character
from tests.fixtures.browser import PASSWORD, WebServer

pytestmark = pytest.mark.integration

KIOSK = {"width": 1024, "height": 600}
PHONE = {"width": 360, "height": 740}
HOST, POLICE, ADMIN = "wang.host", "li.police", "zhao.admin"
TIMEOUT_MS = 15_000


def resident_id(first17: str = "11010519900307001") -> str:
    return first17 + check_character(first17)


def wrong_check_digit(number: str) -> str:
    last = "0" if number[-1] != "0" else "1"
    return number[:-1] + last


def new_page(chromium: Any, viewport: dict[str, int], *, phone: bool = False) -> Any:
    context = chromium.new_context(
        viewport=viewport, locale="zh-CN", is_mobile=phone, has_touch=True,
        device_scale_factor=1,
    )  # fmt: skip
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def sign_in(page: Any, server: WebServer, username: str, target: str) -> None:
    page.goto(server.url(f"/login?next={target}"))
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(target) + r"(\?.*)?$"))


def assert_touch_friendly(page: Any, width: int) -> None:
    """Every visible control is at least 48 px high and nothing overflows the screen width."""
    controls = "button, .button, input:not([type=hidden]):not([type=checkbox]), select"
    small = page.evaluate(
        f"""() => [...document.querySelectorAll('{controls}')]
             .filter(e => e.offsetParent !== null)
             .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect().height])
             .filter(([, h]) => h < 47.5)"""
    )
    assert small == [], small
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= width, f"page is {scroll_width}px wide on a {width}px screen"


def shoot(page: Any, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"), full_page=False)


def fill_guest(page: Any, id_number: str) -> None:
    page.fill("#name", "张三丰")
    page.select_option("#sex", "male")
    page.fill("#ethnicity", "汉")
    page.fill("#birth_date", "1990-03-07")
    page.select_option("#id_type", "resident_id")
    page.fill("#id_number", id_number)
    page.fill("#phone", "13800138000")
    page.fill("#address", "北京市朝阳区幸福路 1 号")
    page.fill("#room", "101")


def test_host_registers_and_police_reviews(
    web_server: WebServer, chromium: Any, screenshots_dir: Path
) -> None:
    parts = web_server.parts
    parts.add_user(HOST, "host")
    parts.add_user(POLICE, "police")
    parts.add_user(ADMIN, "admin")
    good_id = resident_id()

    # --- the kiosk screen before anyone signs in -------------------------------------------
    kiosk = new_page(chromium, KIOSK)
    kiosk.goto(web_server.url("/"))
    card = kiosk.locator('[data-camera="square"]')
    assert card.locator("[data-camera-state]").inner_text() == "在线"
    assert float(card.locator("[data-camera-fps]").inner_text()) > 0
    assert kiosk.locator("img[data-snapshot]").count() == 0, "no live picture for the public"
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-status-public")

    # --- the admin creates the homestay and assigns the host ---------------------------------
    admin = new_page(chromium, KIOSK)
    admin.goto(web_server.url("/login"))
    shoot(admin, screenshots_dir, "kiosk-login")
    sign_in(admin, web_server, ADMIN, "/admin/homestays")
    admin.fill("#name", "竹林民宿")
    admin.fill("#rooms", "5")
    admin.fill("#address", "竹林村 3 组 8 号")
    admin.select_option("#host_username", HOST)
    admin.click("form.form button.primary")
    admin.wait_for_url(re.compile(r"/admin/homestays\?done=created$"))
    assert_touch_friendly(admin, KIOSK["width"])
    shoot(admin, screenshots_dir, "kiosk-admin-homestays")
    (homestay,) = parts.context.homestays.list_homestays(host_username=HOST)
    assert (homestay.name, homestay.rooms) == ("竹林民宿", 5)
    admin.context.close()

    # --- the host at the kiosk ---------------------------------------------------------------
    sign_in(kiosk, web_server, HOST, "/host/homestays")
    assert "竹林民宿" in kiosk.inner_text("main")
    shoot(kiosk, screenshots_dir, "kiosk-host-homestays")
    kiosk.click(f'a[href="/host/homestays/{homestay.id}/register"]')
    kiosk.wait_for_url(re.compile(r"/register$"))
    assert_touch_friendly(kiosk, KIOSK["width"])
    shoot(kiosk, screenshots_dir, "kiosk-register-form")

    fill_guest(kiosk, wrong_check_digit(good_id))
    kiosk.click('button.primary[value="register"]')
    alert = kiosk.locator('.error-box[role="alert"]')
    alert.wait_for()
    message = alert.inner_text()
    assert "证件号码" in message and "校验码" in message, message
    assert kiosk.get_attribute("#id_number", "aria-invalid") == "true"
    assert kiosk.input_value("#name") == "张三丰", "the form keeps what was typed"
    kiosk.locator("#id_number").scroll_into_view_if_needed()
    shoot(kiosk, screenshots_dir, "kiosk-register-refused")
    assert parts.context.homestays.search() == []

    kiosk.fill("#id_number", good_id)
    kiosk.click('button.primary[value="register"]')
    kiosk.wait_for_url(re.compile(r"/host/homestays\?done=registered&guest=\d+$"))
    row = kiosk.locator("tr[data-guest]")
    assert row.count() == 1
    assert "张*丰" in row.inner_text() and "张三丰" not in row.inner_text()
    shoot(kiosk, screenshots_dir, "kiosk-host-registered")
    guest_id = int(row.get_attribute("data-guest") or 0)
    assert [kind for kind, _ in parts.reports] == ["registration"]

    kiosk.click(f'a[href="/host/guests/{guest_id}/checkout"]')
    kiosk.wait_for_url(re.compile(rf"/host/guests/{guest_id}/checkout$"))
    assert parts.context.homestays.search(active_only=True) != [], "nothing before confirming"
    kiosk.click("[data-confirm-yes]")
    kiosk.wait_for_url(re.compile(r"/host/homestays\?done=checked_out$"))
    assert kiosk.locator("tr[data-guest]").count() == 0
    assert parts.context.homestays.search(active_only=True) == []
    assert parts.context.homestays.search()[0].checked_out_at is not None

    # --- the police officer ------------------------------------------------------------------
    officer = new_page(chromium, KIOSK)
    sign_in(officer, web_server, POLICE, "/police/registrations")
    listed = officer.locator(f'tr[data-guest="{guest_id}"]')
    listed_text = listed.inner_text()
    assert "张*丰" in listed_text and "*" in listed.locator(".mono").inner_text()
    assert good_id not in officer.content() and "张三丰" not in officer.content()
    shoot(officer, screenshots_dir, "kiosk-police-registrations")

    listed.locator("a.button").click()
    officer.wait_for_url(re.compile(rf"/police/registrations/{guest_id}$"))
    assert officer.inner_text('[data-field="id_number"]') == good_id
    assert officer.inner_text('[data-field="name"]') == "张三丰"
    assert officer.inner_text('[data-field="phone"]') == "13800138000"
    shoot(officer, screenshots_dir, "kiosk-police-detail")

    officer.goto(web_server.url("/police/audit"))
    view = officer.locator(
        f'tr[data-action="guest.view_unmasked"][data-subject="guest:{guest_id}"]'
    )
    assert view.count() == 1
    assert POLICE in view.inner_text()
    shoot(officer, screenshots_dir, "kiosk-police-audit")

    # Police see the live picture; the view is audited.
    officer.goto(web_server.url("/"))
    officer.wait_for_function(
        "() => { const i = document.querySelector('img[data-snapshot]');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    shoot(officer, screenshots_dir, "kiosk-status-police")
    views = parts.context.audit.entries(action="camera.view", actor=POLICE)
    assert [entry.subject for entry in views] == ["camera:square"]

    # --- the same pages on a phone -----------------------------------------------------------
    phone = new_page(chromium, PHONE, phone=True)
    sign_in(phone, web_server, POLICE, "/police/registrations")
    assert_touch_friendly(phone, PHONE["width"])
    shoot(phone, screenshots_dir, "phone-police-registrations")
    phone.goto(web_server.url(f"/police/registrations/{guest_id}"))
    assert_touch_friendly(phone, PHONE["width"])
    shoot(phone, screenshots_dir, "phone-police-detail")
    phone.goto(web_server.url("/"))
    phone.wait_for_function(
        "() => { const i = document.querySelector('img[data-snapshot]');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert_touch_friendly(phone, PHONE["width"])
    shoot(phone, screenshots_dir, "phone-status-police")

    host_phone = new_page(chromium, PHONE, phone=True)
    sign_in(host_phone, web_server, HOST, "/host/homestays")
    host_phone.goto(web_server.url(f"/host/homestays/{homestay.id}/register"))
    host_phone.click('button[value="add_companion"]')
    host_phone.locator('[data-companion="0"]').wait_for()
    host_phone.click('button.primary[value="register"]')
    host_phone.locator(".error-box").wait_for()
    assert_touch_friendly(host_phone, PHONE["width"])
    shoot(host_phone, screenshots_dir, "phone-register-refused")

    # English on request.
    host_phone.click('button[name="language"][value="en"]')
    host_phone.wait_for_load_state()
    assert "Guest registration" in host_phone.inner_text("h1") or "My homestays" in (
        host_phone.inner_text("h1")
    )
    shoot(host_phone, screenshots_dir, "phone-english")

    for page in (kiosk, officer, phone, host_phone):
        page.context.close()
