"""Another website cannot make a signed-in officer's browser perform an audited read.

Headless Debian Chromium: an officer signs in to the kiosk UI; then a page served from a second
origin (another port of 127.0.0.1, which is the same *site*, and http://localhost, a different
site) navigates to a registration's full record, links to the CSV exports and embeds a camera
snapshot and the JSON record as images. None of that may leave a ``guest.view_unmasked``,
``guest.export`` or ``camera.view`` entry in the officer's name. The same reads from the UI's
own pages do leave them, so the test can tell a refusal from a read that never happened.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fixtures.browser import PASSWORD, WebServer, guest_input
from tests.fixtures.servers import free_port, port_open, wait_until

pytestmark = pytest.mark.integration

POLICE, HOST = "li.police", "wang.host"
AUDITED = ("guest.view_unmasked", "guest.export", "camera.view")
TIMEOUT_MS = 15_000


@dataclass
class ForeignSite:
    """A page on another origin that points at the kiosk UI."""

    port: int
    target: str = ""  # the kiosk UI's base URL
    guest_id: int = 0

    def page(self) -> bytes:
        base, guest = html.escape(self.target), self.guest_id
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>抽奖</title></head>
<body>
<h1>恭喜中奖</h1>
<img id="snapshot" src="{base}/cameras/square/snapshot.jpg">
<img id="record" src="{base}/api/guests/{guest}">
<img id="api-export" src="{base}/api/guests.csv">
<a id="detail" href="{base}/police/registrations/{guest}">领奖</a>
<a id="export" href="{base}/police/registrations.csv" download>下载</a>
<a id="api-record" href="{base}/api/guests/{guest}">详情</a>
</body></html>""".encode()


@pytest.fixture(scope="module")
def foreign_site() -> Iterator[ForeignSite]:
    site = ForeignSite(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = site.page()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", site.port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="foreign-site", daemon=True)
    thread.start()
    try:
        wait_until(lambda: port_open(site.port), 10, "the foreign site to listen")
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def audited(server: WebServer) -> dict[str, list[str]]:
    audit = server.parts.context.audit
    return {
        action: [entry.subject for entry in audit.entries(action=action, actor=POLICE)]
        for action in AUDITED
    }


def sign_in(page: Any, server: WebServer) -> None:
    page.goto(server.url("/login?next=/police/registrations"))
    page.fill("#username", POLICE)
    page.fill("#password", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(server.url("/police/registrations")) + r"(\?.*)?$"))


def images_settled(page: Any) -> None:
    """Every image finished, loaded or refused (no timed wait)."""
    page.wait_for_function("() => [...document.images].every(image => image.complete)")


def navigate_by_link(page: Any, selector: str, url: str) -> int:
    with page.expect_response(lambda response: response.url == url) as answer:
        page.click(selector)
    page.wait_for_url(url)
    status: int = answer.value.status
    return status


def test_another_website_cannot_trigger_audited_reads(
    web_server: WebServer, foreign_site: ForeignSite, chromium: Any
) -> None:
    parts = web_server.parts
    parts.add_user(POLICE, "police")
    parts.add_user(HOST, "host")
    homestay = parts.context.homestays.create_homestay("竹林民宿", "竹林村 3 组", 5, HOST)
    guest = parts.context.homestays.check_in(homestay.id, guest_input(), actor=HOST)
    foreign_site.target, foreign_site.guest_id = web_server.base_url, guest.id

    context = chromium.new_context(locale="zh-CN", accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, web_server)
    assert audited(web_server) == {action: [] for action in AUDITED}

    detail_url = web_server.url(f"/police/registrations/{guest.id}")
    export_url = web_server.url("/police/registrations.csv")
    api_record_url = web_server.url(f"/api/guests/{guest.id}")
    for origin in (
        f"http://127.0.0.1:{foreign_site.port}",
        f"http://localhost:{foreign_site.port}",
    ):
        attack = f"{origin}/prize.html"
        page.goto(attack)
        images_settled(page)
        assert navigate_by_link(page, "#detail", detail_url) == 403, origin
        assert "张三丰" not in page.content() and guest_input().id_number not in page.content()
        page.goto(attack)
        assert navigate_by_link(page, "#export", export_url) == 403, origin
        page.goto(attack)
        assert navigate_by_link(page, "#api-record", api_record_url) in (401, 403), origin
        # A script on that page navigating the window is refused the same way.
        page.goto(attack)
        with page.expect_response(lambda response: response.url == detail_url) as answer:
            page.evaluate("url => { window.location.href = url; }", detail_url)
        page.wait_for_url(detail_url)
        assert answer.value.status == 403, origin
        assert audited(web_server) == {action: [] for action in AUDITED}, origin

    # The same reads from the UI's own pages are allowed and audited.
    page.goto(web_server.url("/police/registrations"))
    page.click(f'tr[data-guest="{guest.id}"] a.button')
    page.wait_for_url(detail_url)
    assert page.inner_text('[data-field="name"]') == "张三丰"
    page.goto(web_server.url("/police/registrations"))
    with page.expect_download() as download:
        page.click('a[href^="/police/registrations.csv"]')
    assert guest_input().id_number in download.value.path().read_text(encoding="utf-8-sig")
    page.goto(web_server.url("/"))
    page.wait_for_function(
        "() => { const i = document.querySelector('img[data-snapshot]');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    seen = audited(web_server)
    assert seen["guest.view_unmasked"] == [f"guest:{guest.id}"]
    assert seen["guest.export"] == ["guests"]
    assert seen["camera.view"] == ["camera:square"]
    context.close()
