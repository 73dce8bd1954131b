"""Booking a homestay in headless Chromium: the host adds a room type, a tourist on a 360 px
phone asks for tonight, the host confirms, and "办理入住" in the host's booking list opens the
guest registration pre-filled from the booking, which then completes.

Screenshots (phone-tourism-*.png, kiosk-tourism-*.png) go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.village.homestay import HomestayService
from agent.village.tourism import TourismService
from tests.fixtures.browser import WebServer, resident_id
from tests.integration.test_web_ui import (
    KIOSK,
    PHONE,
    assert_touch_friendly,
    new_page,
    shoot,
    sign_in,
)

pytestmark = pytest.mark.integration

HOST = "qian.host"
GUEST_PHONE = "13700001111"


def test_a_tourist_books_the_host_confirms_and_checks_the_guest_in(
    web_server: WebServer, chromium: Any, screenshots_dir: Path
) -> None:
    parts = web_server.parts
    parts.add_user(HOST, "host")
    homestay = parts.context.service(HomestayService).create_homestay(
        "溪边民宿", "竹林村 7 组", 4, HOST
    )
    tourism = parts.context.service(TourismService)
    today = tourism.today()
    tomorrow = today + timedelta(days=1)

    # --- the host adds a room type -----------------------------------------------------------
    host = new_page(chromium, KIOSK)
    sign_in(host, web_server, HOST, f"/host/homestays/{homestay.id}/rooms")
    host.fill("#room_name", "山景大床房")
    host.fill("#price", "280")
    host.fill("#count", "1")
    host.fill("#max_guests", "2")
    host.click("form.form button[type=submit]")
    host.wait_for_url(re.compile(rf"/host/homestays/{homestay.id}/rooms\?done=added$"))
    assert "山景大床房" in host.inner_text("table")

    # --- the tourist's phone -----------------------------------------------------------------
    phone = new_page(chromium, PHONE, phone=True)
    phone.goto(web_server.url("/stays"))
    phone.click(f'[data-stay="{homestay.id}"] a')
    phone.wait_for_url(re.compile(rf"/stays/{homestay.id}$"))
    tonight = phone.locator(f'[data-calendar] li[data-day="{today.isoformat()}"]')
    assert tonight.get_attribute("data-free") == "1"
    phone.fill("#check_in", today.isoformat())
    phone.fill("#check_out", tomorrow.isoformat())
    phone.fill("#guests", "2")
    phone.fill("#name", "林小雨")
    phone.fill("#phone", GUEST_PHONE)
    assert_touch_friendly(phone, PHONE["width"])
    shoot(phone, screenshots_dir, "phone-tourism-stay")
    phone.click("[data-booking-form] button[type=submit]")
    phone.wait_for_url(re.compile(r"/stays/requests/[A-Za-z0-9_-]+$"))
    phone.locator('[data-booking-status="pending"]').wait_for(timeout=15000)
    assert GUEST_PHONE not in phone.inner_text("main")
    status_url = phone.url
    shoot(phone, screenshots_dir, "phone-tourism-requested")

    # --- the host confirms, then checks the guest in -----------------------------------------
    host.goto(web_server.url("/host/bookings"))
    row = host.locator("tr[data-booking]")
    assert row.count() == 1 and row.get_attribute("data-status") == "pending"
    booking_id = int(row.get_attribute("data-booking") or 0)
    assert "林*雨" in row.inner_text() and GUEST_PHONE not in row.inner_text()
    host.click("tr[data-booking] [data-confirm]")
    host.wait_for_url(re.compile(r"/host/bookings\?done=confirmed$"))
    assert host.get_attribute("tr[data-booking]", "data-status") == "confirmed"
    link = host.get_attribute("tr[data-booking] a[data-check-in]", "href")
    assert link == f"/host/homestays/{homestay.id}/register?booking={booking_id}"
    assert_touch_friendly(host, KIOSK["width"])
    shoot(host, screenshots_dir, "kiosk-tourism-bookings")

    host.click("tr[data-booking] a[data-check-in]")
    host.wait_for_url(re.compile(rf"/register\?booking={booking_id}$"))
    assert host.input_value("#name") == "林小雨"
    assert host.input_value("#phone") == GUEST_PHONE
    assert host.input_value("#room") == "山景大床房"
    assert host.input_value("#expected_check_out") == tomorrow.isoformat()
    assert host.input_value("#check_in").startswith(today.isoformat())
    host.select_option("#sex", "female")
    host.fill("#ethnicity", "汉")
    host.fill("#birth_date", "1995-06-12")
    host.select_option("#id_type", "resident_id")
    host.fill("#id_number", resident_id("19950612", serial="022"))
    host.fill("#address", "浙江省杭州市西湖区文三路 8 号")
    shoot(host, screenshots_dir, "kiosk-tourism-register-prefilled")
    host.click('button.primary[value="register"]')
    host.wait_for_url(re.compile(r"/host/homestays\?done=registered&guest=\d+$"))
    guests = parts.context.service(HomestayService).search(homestay_id=homestay.id)
    assert len(guests) == 1
    assert guests[0].room == "山景大床房" and guests[0].name == "林*雨"
    assert guests[0].expected_check_out == tomorrow
    host.context.close()

    # --- the tourist sees the answer -------------------------------------------------------
    phone.goto(status_url)
    phone.locator('[data-booking-status="confirmed"]').wait_for(timeout=15000)
    phone.goto(web_server.url(f"/stays/{homestay.id}"))
    assert phone.get_attribute(f'li[data-day="{today.isoformat()}"]', "data-free") == "0"
    phone.context.close()
