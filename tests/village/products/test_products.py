"""Products through the real app: staff list with a photo, tourists browse and filter without
signing in, the seller's phone sealed at rest and shown only as the seller chose."""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.village.photos import UPLOAD_BODY_LIMIT, MiB
from agent.village.products import ProductService
from tests.fixtures.browser import App
from tests.fixtures.loops import run_in_own_loop
from tests.village.products.helpers import GPS_LATITUDE, header_markers, jpeg, jpeg_with_gps

PHONE = "13912345678"


def fields(**overrides: str) -> dict[str, str]:
    data = {
        "name": "高山云雾茶",
        "category": "food",
        "price": "88",
        "unit": "斤",
        "description": "明前采摘，手工炒制。",
        "seller": "王大妈",
        "phone": PHONE,
        "contact": "phone",
    }
    data.update(overrides)
    return data


def list_product(
    client: TestClient, photo: bytes | None = None, filename: str = "photo.jpg", **overrides: str
) -> Any:
    content = io.BytesIO(jpeg() if photo is None else photo)
    files = {"photo": (filename, content, "image/jpeg")}
    return client.post("/api/products", data=fields(**overrides), files=files)


def service(app: App) -> ProductService:
    return app.parts.context.service(ProductService)


def test_staff_list_and_a_tourist_filters_without_signing_in(web_app: App) -> None:
    staff = web_app.session_client("staff")
    tea = list_product(staff)
    assert tea.status_code == 201, tea.text
    basket = list_product(
        staff, filename="竹篮.jpg", name="竹编果篮", category="crafts", price="45.5", unit="个",
        contact="committee",
    )  # fmt: skip
    assert basket.status_code == 201, basket.text
    tourist = TestClient(web_app.asgi)
    every = tourist.get("/api/products").json()["products"]
    assert [p["name"] for p in every] == ["竹编果篮", "高山云雾茶"]
    assert all(p["phone"] is None for p in every), "no number in any list"

    def names(**query: str) -> list[str]:
        return [p["name"] for p in tourist.get("/api/products", params=query).json()["products"]]

    assert names(category="crafts") == ["竹编果篮"]
    assert names(min_price="50") == ["高山云雾茶"]
    assert names(max_price="45.50") == ["竹编果篮"]
    assert names(q="云雾") == ["高山云雾茶"]
    assert names(q="%") == []
    assert (
        tourist.get("/api/products", params={"min_price": "9", "max_price": "1"}).json()["error"][
            "code"
        ]
        == "products.price.order"
    )

    page = tourist.get("/products", params={"category": "crafts"})
    assert page.status_code == 200
    assert "竹编果篮" in page.text and "高山云雾茶" not in page.text
    assert PHONE not in page.text

    # The phone: on the listing of a seller who shows it, nowhere for one who does not.
    shown = tourist.get(f"/products/{tea.json()['id']}")
    assert f'href="tel:{PHONE}"' in shown.text
    assert tourist.get(f"/api/products/{tea.json()['id']}").json()["phone"] == PHONE
    hidden = tourist.get(f"/products/{basket.json()['id']}")
    assert PHONE not in hidden.text and "村委会" in hidden.text
    assert tourist.get(f"/api/products/{basket.json()['id']}").json()["phone"] is None


def test_the_phone_is_sealed_at_rest(web_app: App) -> None:
    staff = web_app.session_client("staff")
    assert list_product(staff).status_code == 201
    database = web_app.parts.context.database
    with database.read() as db:
        dump = "\n".join(db.conn.iterdump())
    assert PHONE not in dump
    assert "139****5678" in dump
    raw = sqlite3.connect(database.path).execute("SELECT * FROM products").fetchall()
    assert raw and PHONE not in repr(raw)
    staff_page = staff.get("/staff/products")
    assert "139****5678" in staff_page.text and PHONE not in staff_page.text


def test_the_stored_photo_is_the_cleaned_one_and_served_as_jpeg(web_app: App) -> None:
    staff = web_app.session_client("staff")
    upload = jpeg_with_gps()
    listed = list_product(staff, photo=upload)
    assert listed.status_code == 201, listed.text
    answer = TestClient(web_app.asgi).get(listed.json()["photo"])
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.content != upload and GPS_LATITUDE not in answer.content
    assert 0xE1 not in header_markers(answer.content)


@pytest.mark.parametrize(
    ("upload", "name", "code"),
    [
        (b"%PDF-1.7 this is a document\n" * 200, "invoice.jpg", "products.photo.not_image"),
        (b"", "empty.jpg", "products.photo.required"),
    ],
)
def test_a_file_that_is_not_a_picture_lists_nothing(
    web_app: App,
    upload: bytes,
    name: str,
    code: str,
) -> None:
    staff = web_app.session_client("staff")
    refused = list_product(staff, photo=upload, filename=name)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == code
    assert service(web_app).staff_list() == []
    assert list(service(web_app).photos.folder.iterdir()) == []


def test_a_bad_form_keeps_what_was_typed(web_app: App) -> None:
    staff = web_app.session_client("staff")
    page = staff.get("/staff/products")
    form = {**fields(price="十块"), "csrf_token": staff.headers["X-CSRF-Token"]}
    del staff.headers["X-CSRF-Token"]
    answer = staff.post(
        "/staff/products", data=form, files={"photo": ("a.jpg", io.BytesIO(jpeg()), "image/jpeg")}
    )
    assert page.status_code == 200
    assert answer.status_code == 422
    assert 'id="price-error"' in answer.text and "请用元填写价格" in answer.text
    assert 'value="高山云雾茶"' in answer.text and "明前采摘" in answer.text


def test_a_withdrawn_product_and_its_photo_leave_the_public_pages(web_app: App) -> None:
    staff = web_app.session_client("staff")
    listed = list_product(staff).json()
    tourist = TestClient(web_app.asgi)
    assert tourist.get(listed["photo"]).status_code == 200
    assert staff.post(f"/api/products/{listed['id']}/withdraw").json()["listed"] is False
    assert tourist.get("/api/products").json()["products"] == []
    assert tourist.get(f"/products/{listed['id']}").status_code == 404
    assert tourist.get(listed["photo"]).status_code == 404
    assert tourist.get("/products/photos/..%2F..%2Fkiosk.sqlite3.jpg").status_code in (404, 422)


def test_only_staff_list_products(web_app: App) -> None:
    for role in ("anonymous", "host", "police", "admin", "family"):
        client = web_app.session_client(role)
        assert list_product(client).status_code in (401, 403), role
    assert service(web_app).staff_list() == []


async def _post_raw(app: Any, headers: list[tuple[bytes, bytes]], total: int) -> tuple[int, int]:
    """POST ``total`` bytes to /api/products straight into the ASGI app, 64 KiB at a time;
    returns the answer's status and how many bytes the app pulled."""
    # A well-formed start: the multipart parser takes the rest as the photo's bytes.
    head = (
        b'--xyz\r\nContent-Disposition: form-data; name="photo"; filename="big.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
    )
    chunk = b"\0" * (64 * 1024)
    pulled = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        body = (head if pulled == 0 else b"") + chunk
        body = body[: total - pulled]
        pulled += len(body)
        return {"type": "http.request", "body": body, "more_body": pulled < total}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/products", "raw_path": b"/api/products",
        "query_string": b"", "root_path": "", "client": ("10.0.0.9", 5000),
        "server": ("testserver", 80), "headers": [(b"host", b"testserver"), *headers],
    }  # fmt: skip
    await app(scope, receive, send)
    return status, pulled


def test_a_50_mb_upload_is_refused_before_its_body_is_read(web_app: App) -> None:
    staff = web_app.session_client("staff")
    cookie = f"vk_session={staff.cookies.get('vk_session')}".encode()
    headers = [
        (b"content-type", b"multipart/form-data; boundary=xyz"),
        (b"cookie", cookie),
        (b"x-csrf-token", staff.headers["X-CSRF-Token"].encode()),
    ]
    size = 50 * MiB
    # A loop of its own: once the session's Playwright runs, this thread has one already.
    sized = [*headers, (b"content-length", str(size).encode())]
    status, pulled = run_in_own_loop(lambda: _post_raw(web_app.asgi, sized, size))
    assert status == 413 and pulled == 0
    # Without a Content-Length (chunked), it stops once the route's limit is passed.
    status, pulled = run_in_own_loop(lambda: _post_raw(web_app.asgi, headers, size))
    assert status == 413 and pulled <= UPLOAD_BODY_LIMIT + 64 * 1024
    assert service(web_app).staff_list() == []


def test_a_photo_above_the_app_wide_body_limit_still_uploads(web_app: App) -> None:
    staff = web_app.session_client("staff")
    big = jpeg(3000, 2200)  # about 3 MB of noise: over [web] max_body_bytes (1 MB)
    assert len(big) > web_app.parts.context.config.web.max_body_bytes
    answer = list_product(staff, photo=big)
    assert answer.status_code == 201, answer.text
    # Other routes keep the app-wide limit.
    other = staff.post("/api/products/1/withdraw", content=b"x" * (2 * MiB))
    assert other.status_code == 413


def test_a_withdrawn_listing_is_purged_with_its_photo_after_the_keep_time(
    web_app: App,
) -> None:
    staff = web_app.session_client("staff")
    gone = list_product(staff).json()
    kept = list_product(staff, name="竹编果篮").json()
    products = service(web_app)
    staff.post(f"/api/products/{gone['id']}/withdraw")
    assert products.purge_expired() == 0, "kept for 30 days after withdrawal"
    later = datetime.now(UTC) + timedelta(days=31)
    products._clock = lambda: later  # the service reads the time only through its clock
    assert products.purge_expired() == 1
    assert [p.id for p in products.staff_list()] == [kept["id"]]
    files = [path.name for path in products.photos.folder.iterdir()]
    assert files == [kept["photo"].rsplit("/", 1)[1]]


def test_the_kiosk_home_shows_the_tourist_tiles(web_app: App) -> None:
    home = TestClient(web_app.asgi).get("/")
    assert home.status_code == 200
    for path in ('href="/products"', 'href="/attractions"', 'href="/stays"'):
        assert path in home.text, path
