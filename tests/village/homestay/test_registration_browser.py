"""What a host meets at the kiosk's registration form, in a real Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.browser import PASSWORD, WebServer, resident_id

pytestmark = pytest.mark.integration

KIOSK = {"width": 1024, "height": 600}
HOST = "sun.host"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def homestay_id(web_server: WebServer) -> int:
    web_server.parts.add_user(HOST, "host")
    return web_server.parts.context.homestays.create_homestay("云上民宿", "云顶村 1 组", 4, HOST).id


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=KIOSK, locale="zh-CN", has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def sign_in(page: Any, server: WebServer, target: str) -> None:
    page.goto(server.url(f"/login?next={target}"))
    page.fill("#username", HOST)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(target) + r"(\?.*)?$"))


def fill_guest(page: Any, id_number: str, name: str) -> None:
    page.select_option("#id_type", "resident_id")
    page.fill("#id_number", id_number)
    page.fill("#name", name)
    page.fill("#ethnicity", "汉")
    page.fill("#phone", "13800138000")
    page.fill("#address", "北京市朝阳区幸福路 1 号")
    page.fill("#room", "101")


def guests_named(server: WebServer, masked_name: str) -> list[Any]:
    return [g for g in server.parts.context.homestays.search() if g.name == masked_name]


def test_enter_registers_once_with_birth_date_and_sex_from_the_id(
    web_server: WebServer, homestay_id: int, page: Any
) -> None:
    url = f"/host/homestays/{homestay_id}/register"
    sign_in(page, web_server, url)
    fill_guest(page, resident_id("19880512", "110105", "024"), "周晓梅")
    assert page.input_value("#birth_date") == "1988-05-12"
    assert page.input_value("#sex") == "female"
    page.press("#room", "Enter")
    page.wait_for_url(re.compile(r"/host/homestays\?done=registered&guest=\d+$"))
    assert page.locator("[data-companion]").count() == 0
    (guest,) = guests_named(web_server, "周*梅")
    assert guest.companions == ()
    row = page.locator(f'tr[data-guest="{guest.id}"]')
    assert row.locator("[data-report-state]").get_attribute("data-report-state") == "not_sent"
    assert "已报送" not in page.inner_text("main")


def test_a_double_submit_of_one_form_registers_one_guest(
    web_server: WebServer, homestay_id: int, page: Any
) -> None:
    url = f"/host/homestays/{homestay_id}/register"
    sign_in(page, web_server, url)
    fill_guest(page, resident_id("19770101", "110105", "031"), "吴大海")
    # Two submits of the same rendered form, as a double tap over a slow link sends them.
    statuses = page.evaluate(
        """async () => {
            const form = document.querySelector('form[data-register-form]');
            const send = () => {
                const body = new FormData(form);
                body.set('action', 'register');
                return fetch(form.getAttribute('action'),
                             {method: 'POST', body, redirect: 'manual'});
            };
            const answers = await Promise.all([send(), send()]);
            return answers.map(a => a.type);
        }"""
    )
    assert statuses == ["opaqueredirect", "opaqueredirect"]
    assert len(guests_named(web_server, "吴*海")) == 1


def test_every_error_is_listed_in_page_order_and_the_language_switch_keeps_the_form(
    web_server: WebServer, homestay_id: int, page: Any
) -> None:
    url = f"/host/homestays/{homestay_id}/register"
    sign_in(page, web_server, url)
    page.fill("#id_number", resident_id("19600202", "110105", "011"))
    page.fill("#phone", "12")
    page.click('button.primary[value="register"]')
    errors = page.locator("[data-errors] a[data-error-field]")
    errors.first.wait_for()
    fields = [errors.nth(i).get_attribute("data-error-field") for i in range(errors.count())]
    assert fields == ["name", "ethnicity", "phone", "address", "room"]
    assert page.get_attribute("#phone", "aria-invalid") == "true"

    page.fill("#name", "郑老伯")
    page.click('button[name="language"][value="en"]')
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert page.input_value("#name") == "郑老伯", "the typed name survives the switch"
    assert page.input_value("#birth_date") == "1960-02-02"
    stored = page.evaluate("() => localStorage.length + sessionStorage.length")
    assert stored == 0, "nothing typed is kept in the kiosk's browser"


def test_a_foreign_guest_picks_the_nationality_by_name(
    web_server: WebServer, homestay_id: int, page: Any
) -> None:
    url = f"/host/homestays/{homestay_id}/register"
    sign_in(page, web_server, url)
    page.select_option("#id_type", "passport")
    page.fill("#id_number", "P55501234")
    page.fill("#name", "Anna Smith")
    page.select_option("#sex", "female")
    page.fill("#birth_date", "1992-04-05")
    page.fill("#nationality", "美国")
    page.fill("#phone", "+12025550123")
    page.fill("#address", "New York")
    page.fill("#room", "102")
    page.click('button.primary[value="register"]')
    page.wait_for_url(re.compile(r"/host/homestays\?done=registered"))
    (guest,) = [g for g in web_server.parts.context.homestays.search() if g.room == "102"]
    assert guest.nationality == "USA" and guest.foreign


def test_what_was_typed_comes_back_after_the_session_ended(
    web_server: WebServer, homestay_id: int, page: Any
) -> None:
    url = f"/host/homestays/{homestay_id}/register"
    sign_in(page, web_server, url)
    with page.expect_response(re.compile(r"/draft$")) as saved:
        page.fill("#name", "冯小刚")
    assert saved.value.status == 204
    page.context.clear_cookies()  # the session ended (idle reset, expiry)
    page.click('button.primary[value="register"]')
    page.wait_for_url(re.compile(r"/login"))
    page.fill("#username", HOST)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(url) + "$"))
    assert page.input_value("#name") == "冯小刚"
    assert page.locator("[data-draft-restored]").count() == 1
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
