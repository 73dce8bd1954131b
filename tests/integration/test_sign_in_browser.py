"""Sign-in pages in headless Chromium: the kiosk's own screen, left alone, signs out and goes
home; the change-password page works by touch on a phone.

Chromium connects over loopback, which is what makes it the kiosk screen to the server. The
page's timer is driven with Playwright's clock, so the test does not wait the two minutes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.fixtures.browser import PASSWORD, WebServer
from tests.integration.test_web_ui import PHONE, assert_touch_friendly, new_page, shoot, sign_in

pytestmark = pytest.mark.integration

KIOSK = {"width": 1024, "height": 600}
OFFICER = "zhou.police"
TIMEOUT_MS = 15_000


def kiosk_page(chromium: Any) -> Any:
    context = chromium.new_context(viewport=KIOSK, locale="zh-CN", has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.clock.install()
    return page


@pytest.fixture(scope="module")
def server(web_server: WebServer) -> WebServer:
    web_server.parts.add_user(OFFICER, "police")
    return web_server


def idle_seconds(server: WebServer) -> int:
    return int(server.parts.context.config.web.kiosk_idle_seconds)


def test_an_officer_left_signed_in_on_the_kiosk_is_signed_out(
    server: WebServer, chromium: Any
) -> None:
    page = kiosk_page(chromium)
    page.goto(server.url("/login?next=/police/audit"))
    page.fill("#username", OFFICER)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(r"/police/audit$"))
    assert page.locator("body").get_attribute("data-kiosk-idle-seconds") == str(
        idle_seconds(server)
    )
    idle_ms = idle_seconds(server) * 1000

    # Someone still at the screen: each touch starts the wait again.
    page.clock.run_for(idle_ms - 20_000)
    page.locator("h1").click()
    page.clock.run_for(idle_ms - 20_000)
    assert page.url.endswith("/police/audit")
    assert page.locator("form[data-logout]").count() == 1

    # Nobody there: the page signs out through its own form and the kiosk is home.
    page.clock.run_for(25_000)
    page.wait_for_url(server.url("/"))
    assert page.locator("form[data-logout]").count() == 0
    assert page.locator('a[href="/login"]').count() == 1
    session = page.evaluate("() => fetch('/api/session').then(r => r.json())")
    assert session["role"] == "anonymous"
    logouts = server.parts.context.audit.entries(action="auth.logout", actor=OFFICER)
    assert len(logouts) == 1, "signed out by the server, not just sent home"
    page.context.close()


def test_a_half_filled_form_on_the_kiosk_goes_home(server: WebServer, chromium: Any) -> None:
    page = kiosk_page(chromium)
    page.goto(server.url("/login"))
    page.fill("#username", "wang")
    page.clock.run_for(idle_seconds(server) * 1000 - 5_000)
    assert page.url.endswith("/login")
    page.clock.run_for(10_000)
    page.wait_for_url(server.url("/"))
    # Home stays home: nothing more happens however long it is left.
    page.clock.run_for(idle_seconds(server) * 3000)
    assert page.url == server.url("/")
    page.context.close()


def test_changing_a_password_on_a_phone(
    server: WebServer, chromium: Any, screenshots_dir: Any
) -> None:
    server.parts.add_user("sun.host", "host")
    page = new_page(chromium, PHONE, phone=True)
    sign_in(page, server, "sun.host", "/account/password")
    assert_touch_friendly(page, PHONE["width"])
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", "terraced-fields-81")
    page.fill("#new_password_again", "terraced-fields-82")
    page.click("form.form button[type=submit]")
    assert "两次输入的新密码不一致" in page.locator("[role=alert]").inner_text()
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", "terraced-fields-81")
    page.fill("#new_password_again", "terraced-fields-81")
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(r"/account/password\?done=1$"))
    assert "密码已修改" in page.locator("[role=status]").inner_text()
    shoot(page, screenshots_dir, "phone-change-password")
    assert server.parts.context.accounts.authenticate("sun.host", "terraced-fields-81")
    page.context.close()
