"""Products in headless Chromium: staff list a product with a photo chosen in the file input,
and a tourist on a 360 px phone finds it by filter without signing in.

Screenshots (phone-products-*.png) go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.browser import WebServer
from tests.integration.test_web_ui import (
    KIOSK,
    PHONE,
    assert_touch_friendly,
    new_page,
    shoot,
    sign_in,
)
from tests.village.products.helpers import GPS_LATITUDE, jpeg_with_gps

pytestmark = pytest.mark.integration


def test_staff_list_a_product_and_a_tourist_finds_it_on_a_phone(
    web_server: WebServer, chromium: Any, screenshots_dir: Path, tmp_path: Path
) -> None:
    photo = tmp_path / "茶园.jpg"
    photo.write_bytes(jpeg_with_gps(1200, 900))

    web_server.parts.add_user("sun.staff", "staff")
    staff = new_page(chromium, KIOSK)
    sign_in(staff, web_server, "sun.staff", "/staff/products")
    staff.fill("#name", "高山云雾茶")
    staff.select_option("#category", "food")
    staff.fill("#price", "88")
    staff.fill("#unit", "斤")
    staff.fill("#seller", "王大妈")
    staff.fill("#phone", "13912345678")
    staff.select_option("#contact", "phone")
    staff.fill("#description", "明前采摘，手工炒制。")
    staff.set_input_files("#photo", str(photo))
    staff.click("form.form button[type=submit]")
    staff.wait_for_url(re.compile(r"/staff/products\?done=listed$"))
    assert "139****5678" in staff.inner_text("table")
    staff.context.close()

    phone = new_page(chromium, PHONE, phone=True)
    phone.goto(web_server.url("/products"))
    phone.select_option("#category", "food")
    phone.fill("#max_price", "100")
    assert_touch_friendly(phone, PHONE["width"])
    phone.click("[data-product-filter] button[type=submit]")
    phone.wait_for_url(re.compile(r"/products\?.*category=food"))
    card = phone.locator(".product-card", has_text="高山云雾茶")
    card.wait_for(timeout=15000)
    phone.wait_for_function("() => [...document.images].every(image => image.complete)")
    width = phone.evaluate("() => document.querySelector('.product-card img').naturalWidth")
    assert width == 1200, "the photo loaded (re-encoded, same size)"
    assert_touch_friendly(phone, PHONE["width"])
    shoot(phone, screenshots_dir, "phone-products-browse")

    # A filter it does not match leaves it out.
    phone.fill("#max_price", "50")
    phone.click("[data-product-filter] button[type=submit]")
    phone.locator("[data-no-products]").wait_for(timeout=15000)

    phone.goto(web_server.url("/products?q=云雾"))
    phone.click(".product-card a")
    phone.wait_for_url(re.compile(r"/products/\d+$"))
    assert phone.get_attribute("[data-contact] a", "href") == "tel:13912345678"
    src = phone.get_attribute(".product-detail img", "src")
    served = phone.request.get(web_server.url(src))
    assert served.headers["content-type"] == "image/jpeg"
    assert GPS_LATITUDE not in served.body()
    assert_touch_friendly(phone, PHONE["width"])
    shoot(phone, screenshots_dir, "phone-products-listing")
    phone.context.close()
