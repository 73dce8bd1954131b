"""Notice pages and their JSON twins, the kiosk screen's urgent-notice routes, the home page's
tiles and where each role lands after signing in."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from agent.village.notices import NoticeService
from tests.fixtures.browser import PASSWORD, USERS, App, form_token
from web_ui.security import CSRF_COOKIE, CSRF_HEADER

KIOSK_ADDRESS = ("127.0.0.1", 50000)


def later(hours: float = 2) -> str:
    """A datetime-local value (kiosk time) ``hours`` from now."""
    moment = dt.datetime.now().replace(second=0, microsecond=0) + dt.timedelta(hours=hours)
    return moment.isoformat(timespec="minutes")


def kiosk_screen(web_app: App) -> TestClient:
    """The kiosk's own browser: loopback, nobody signed in, the visitor's CSRF token in hand."""
    client = TestClient(web_app.asgi, client=KIOSK_ADDRESS, follow_redirects=False)
    client.get("/")
    token = client.cookies.get(CSRF_COOKIE)
    assert token
    client.headers[CSRF_HEADER] = token
    return client


def notices(web_app: App) -> NoticeService:
    return web_app.parts.context.service(NoticeService)


def publish_form(client: TestClient, **fields: str) -> tuple[int, str]:
    token = form_token(client.get("/notices/manage").text)
    response = client.post("/notices/manage", data={"csrf_token": token, **fields})
    return response.status_code, response.text


# -- publishing from the web ------------------------------------------------------------------


def test_staff_publish_a_notice_that_the_board_shows(web_app: App) -> None:
    staff = web_app.session_client("staff")
    status, _ = publish_form(
        staff, title="村民大会", text="周六上午九点\n在村委会开会", urgency="normal",
        expires_at=later(),
    )  # fmt: skip
    assert status == 303
    (notice,) = notices(web_app).active()
    assert (notice.title, notice.text, notice.created_by) == (
        "村民大会",
        "周六上午九点\n在村委会开会",
        USERS["staff"],
    )
    (entry,) = web_app.parts.context.audit.entries(action="notice.publish")
    assert entry.actor == USERS["staff"]
    board = web_app.client.get("/notices").text
    assert "村民大会" in board and "周六上午九点" in board
    assert web_app.client.get("/api/notices").json()[0]["title"] == "村民大会"
    assert "村民大会" in staff.get("/notices/manage").text


@pytest.mark.parametrize(
    ("fields", "bad_input", "message"),
    [
        ({"title": "", "text": "停水"}, "title", "请填写标题。"),
        ({"title": "停水通知", "text": "   "}, "text", "请填写公告内容。"),
        ({"title": "停水通知", "text": "字" * 2001}, "text", "内容不能超过 2000 个字。"),
        ({"title": "停水通知", "text": "停水", "urgency": "panic"}, "urgency", "类别只能是"),
        ({"title": "停水通知", "text": "停水", "expires_at": ""}, "expires_at", "请填写有效期"),
        (
            {"title": "停水通知", "text": "停水", "expires_at": later(-1)},
            "expires_at",
            "有效期已经过去",
        ),
    ],
)
def test_a_refused_form_keeps_what_was_typed_and_points_at_the_field(
    web_app: App, fields: dict[str, str], bad_input: str, message: str
) -> None:
    typed = {"urgency": "urgent", "expires_at": later(), **fields}
    status, html = publish_form(web_app.session_client("police"), **typed)
    assert status == 422
    assert re.search(rf'id="{bad_input}"[^>]*aria-invalid="true"', html), bad_input
    error = re.search(rf'<p class="field-error" id="{bad_input}-error">([^<]+)</p>', html)
    assert error and message in error.group(1)
    if typed["title"]:
        assert f'value="{typed["title"]}"' in html
    if typed["text"].strip():
        assert f">{typed['text']}</textarea>" in html
    if typed["urgency"] == "urgent":
        assert '<option value="urgent" selected>' in html
    assert notices(web_app).recent() == []


def test_the_json_twin_publishes_and_refuses_alike(web_app: App) -> None:
    admin = web_app.session_client("admin")
    body = {"title": "停电", "text": "今晚检修", "urgency": "normal", "expires_at": later()}
    created = admin.post("/api/notices", json=body)
    assert created.status_code == 201 and created.json()["title"] == "停电"
    refused = admin.post("/api/notices", json={**body, "urgency": "panic"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "notices.urgency_invalid"
    assert refused.json()["error"]["field"] == "urgency"
    assert len(notices(web_app).recent()) == 1


def test_an_expired_notice_leaves_the_board(web_app: App) -> None:
    service = notices(web_app)
    admin = web_app.session_client("admin")
    body = {"title": "旧通知", "text": "已经过去", "urgency": "urgent", "expires_at": later()}
    notice_id = admin.post("/api/notices", json=body).json()["id"]
    kiosk = kiosk_screen(web_app)
    assert kiosk.get("/api/kiosk/notices").json()["urgent"]["id"] == notice_id
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat(timespec="seconds")
    with web_app.parts.context.database.write() as db:
        db.table("notices").update(notice_id, {"expires_at": past})
    assert service.active() == []
    assert "旧通知" not in web_app.client.get("/notices").text
    assert web_app.client.get("/api/notices").json() == []
    assert kiosk.get("/api/kiosk/notices").json()["urgent"] is None
    assert kiosk.post(f"/api/kiosk/notices/{notice_id}/ack").status_code == 404


# -- the kiosk screen ------------------------------------------------------------------------


def test_only_the_kiosk_screen_sees_and_acknowledges_urgent_notices(web_app: App) -> None:
    police = web_app.session_client("police")
    body = {"title": "山洪预警", "text": "请立即转移", "urgency": "urgent", "expires_at": later()}
    notice_id = police.post("/api/notices", json=body).json()["id"]
    remote = web_app.session_client("anonymous")
    assert remote.get("/api/kiosk/notices").status_code == 404
    assert remote.post(f"/api/kiosk/notices/{notice_id}/ack").status_code == 404

    kiosk = kiosk_screen(web_app)
    page = kiosk.get("/notices").text
    assert 'data-kiosk-notices="/api/kiosk/notices"' in page
    assert "data-kiosk-notices" not in remote.get("/notices").text
    polled = kiosk.get("/api/kiosk/notices").json()
    assert polled["urgent"]["title"] == "山洪预警"
    assert polled["labels"] == {"heading": "紧急通知", "ack": "已知晓"}

    # The screen's own page sends its token; a request without it changes nothing.
    forged = kiosk.post(f"/api/kiosk/notices/{notice_id}/ack", headers={CSRF_HEADER: ""})
    assert forged.status_code == 403
    assert [kind for kind, _ in web_app.parts.reports if kind == "notice_ack"] == []
    acknowledged = kiosk.post(f"/api/kiosk/notices/{notice_id}/ack")
    assert acknowledged.status_code == 200
    assert acknowledged.json()["acknowledged_at"] is not None
    (ack,) = [payload for kind, payload in web_app.parts.reports if kind == "notice_ack"]
    assert ack == {"notice": notice_id, "acknowledged_at": acknowledged.json()["acknowledged_at"]}
    assert kiosk.get("/api/kiosk/notices").json()["urgent"] is None
    (entry,) = web_app.parts.context.audit.entries(action="notice.acknowledge")
    assert (entry.actor, entry.subject) == ("anonymous", f"notice:{notice_id}")


# -- home page and landing --------------------------------------------------------------------


def tiles(html: str) -> list[str]:
    return re.findall(r'data-tile="([^"]+)"', html)


def test_the_kiosk_home_has_a_tile_per_anonymous_service_and_still_the_cameras(
    web_app: App,
) -> None:
    kiosk = kiosk_screen(web_app)
    home = kiosk.get("/").text
    expected = [
        entry.path
        for web in web_app.asgi.state.service_webs
        for entry in web.nav
        if entry.tile and None in entry.roles
    ]
    assert "/notices" in expected
    assert tiles(home) == expected, "calls are off in this kiosk: no call tile"
    assert 'data-camera="square"' in home, "camera status below the tiles"
    assert tiles(kiosk.get("/status").text) == [], "/status is the camera status alone"
    # A phone gets the public tiles, not the kiosk's own (filing a dispute, the check-in).
    remote = web_app.client.get("/").text
    public = [e.path for w in web_app.asgi.state.service_webs for e in w.nav
              if e.tile and None in e.roles and not e.kiosk_only]  # fmt: skip
    assert tiles(remote) == public and 'data-camera="square"' in remote


@pytest.mark.parametrize(
    ("role", "start"),
    [
        ("host", "/host/homestays"),
        ("family", "/family"),
        ("police", "/police/patrol"),
        ("staff", "/"),
        ("admin", "/"),
    ],
)
def test_each_role_lands_on_its_own_start_page(web_app: App, role: str, start: str) -> None:
    client = TestClient(web_app.asgi, follow_redirects=False)
    token = form_token(client.get("/login").text)
    signed_in = client.post(
        "/login", data={"username": USERS[role], "password": PASSWORD, "csrf_token": token}
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == start
    assert client.get(start).status_code == 200
    home = client.get("/").text
    assert "请登录" not in home and "please sign in" not in home.lower()
    if role == "staff":
        assert "/notices/manage" in tiles(home), "staff start on their services' tiles"


def test_a_sign_in_asked_for_by_a_page_goes_back_to_it(web_app: App) -> None:
    client = TestClient(web_app.asgi, follow_redirects=False)
    token = form_token(client.get("/login").text)
    signed_in = client.post(
        "/login",
        data={"username": USERS["host"], "password": PASSWORD, "csrf_token": token,
              "next": "/notices"},
    )  # fmt: skip
    assert signed_in.headers["location"] == "/notices"


# -- the optional picture ---------------------------------------------------------------------


def png(width: int = 64, height: int = 48) -> bytes:
    picture = np.zeros((height, width, 3), dtype=np.uint8)
    picture[:, : width // 2] = (0, 0, 255)
    ok, data = cv2.imencode(".png", picture)
    assert ok
    return bytes(data)


def publish_with_photo(client: TestClient, photo: tuple[str, bytes, str], **fields: str) -> Any:
    token = form_token(client.get("/notices/manage").text)
    return client.post(
        "/notices/manage",
        data={"csrf_token": token, "urgency": "urgent", "expires_at": later(), **fields},
        files={"photo": photo},
    )


def test_a_notice_may_carry_a_picture_shown_while_it_is(web_app: App) -> None:
    staff = web_app.session_client("staff")
    response = publish_with_photo(
        staff, ("river.png", png(), "image/png"), title="河道涨水", text="请勿靠近河边"
    )
    assert response.status_code == 303, response.text
    (notice,) = notices(web_app).active()
    url = f"/notices/{notice.id}/photo.jpg"
    assert f'src="{url}"' in web_app.client.get("/notices").text
    picture = web_app.client.get(url)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert picture.content.startswith(b"\xff\xd8"), "re-encoded as JPEG"
    assert kiosk_screen(web_app).get("/api/kiosk/notices").json()["urgent"]["photo"] == url
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat(timespec="seconds")
    with web_app.parts.context.database.write() as db:
        db.table("notices").update(notice.id, {"expires_at": past})
    assert web_app.client.get(url).status_code == 404


def test_a_file_that_is_no_picture_is_refused_and_the_text_kept(web_app: App) -> None:
    staff = web_app.session_client("staff")
    response = publish_with_photo(
        staff, ("list.pdf", b"%PDF-1.4 not a picture", "application/pdf"), title="河道涨水",
        text="请勿靠近河边",
    )  # fmt: skip
    assert response.status_code == 422
    assert re.search(r'id="photo"[^>]*aria-invalid="true"', response.text)
    assert "不是 JPEG、PNG 或 WebP 图片" in response.text
    assert 'value="河道涨水"' in response.text and ">请勿靠近河边</textarea>" in response.text
    assert notices(web_app).recent() == []
