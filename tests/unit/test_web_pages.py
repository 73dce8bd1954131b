"""Pages and their behaviour through the real app (TestClient), one role at a time."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.config import CameraConfig, Polygon
from agent.village.services import error_messages
from tests.fixtures.browser import (
    App,
    StillCamera,
    build_web_context,
    form_token,
    kiosk_config,
    recent_check_in,
    resident_id,
)
from web_ui.app import create_app
from web_ui.i18n import LOCALES_DIR, Translator, catalog
from web_ui.security import SESSION_COOKIE
from web_ui.view_audit import ViewAuditThrottle

H, P, AD, F = "host", "police", "admin", "family"
TEMPLATES = Path(__file__).resolve().parents[2] / "web_ui" / "templates"


def guest_form(token: str, **overrides: str) -> dict[str, str]:
    check_in, check_out = recent_check_in()
    form = {
        "csrf_token": token,
        "companion_count": "0",
        "name": "李四",
        "sex": "female",
        "ethnicity": "苗",
        "birth_date": "1985-12-01",
        "id_type": "resident_id",
        "id_number": resident_id("19851201", "520102", "024"),
        "phone": "13912345678",
        "address": "贵州省贵阳市南明区",
        "room": "202",
        "check_in": check_in,
        "expected_check_out": check_out,
        "nationality": "CHN",
        "action": "register",
    }
    form.update(overrides)
    return form


def test_catalogs_have_the_same_keys_and_every_domain_code() -> None:
    zh, en = catalog("zh-CN"), catalog("en")
    assert set(zh) == set(en)
    # Every service's error codes have their text in both catalogs.
    for code in error_messages():
        assert f"error.{code}" in zh, code
    for code in ("username.format", "password.too_short", "role.unknown", "username.taken"):
        assert f"error.{code}" in zh
    assert sorted(path.name for path in LOCALES_DIR.glob("*.json")) == ["en.json", "zh-CN.json"]


def test_every_literal_key_in_templates_is_in_the_catalogs() -> None:
    keys = set()
    services = TEMPLATES.parent / "village"
    for template in [*TEMPLATES.glob("*.html"), *services.glob("*/templates/*.html")]:
        keys |= set(
            re.findall(r"""\bt\('([a-z_.]*[a-z_])'\s*[,)]""", template.read_text(encoding="utf-8"))
        )
    assert keys, "the scan must find keys"
    missing = sorted(key for key in keys if key not in catalog("zh-CN") or key not in catalog("en"))
    assert missing == []


def test_field_labels_of_companions_read_naturally() -> None:
    assert Translator("zh-CN").field_label("companions[1].id_number") == "同住人 2 的证件号码"
    assert Translator("en").field_label("companions[0].name") == "Companion 1, Name"
    message = Translator("en").field_error("id_number", "id_number.check_digit")
    assert message.startswith("ID number: ") and "check digit" in message


def test_status_page_is_public_without_pictures(web_app: App) -> None:
    page = web_app.client.get("/")
    assert page.status_code == 200
    assert "村口广场" in page.text and "在线" in page.text
    assert "snapshot.jpg" not in page.text
    cameras = web_app.client.get("/api/cameras").json()
    assert cameras[0]["id"] == "square" and cameras[0]["state"] == "online"


def test_status_page_shows_pictures_to_police(web_app: App) -> None:
    page = web_app.session_client(P).get("/")
    assert "/cameras/square/snapshot.jpg" in page.text


def test_snapshot_is_jpeg_and_every_police_view_is_audited(web_app: App) -> None:
    police = web_app.session_client(P)
    first = police.get("/cameras/square/snapshot.jpg")
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(first.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3)
    police.get("/cameras/square/snapshot.jpg")  # a refresh a moment later
    views = web_app.parts.context.audit.entries(action="camera.view")
    assert [(v.actor, v.subject) for v in views] == [("li.police", "camera:square")]
    web_app.session_client(AD).get("/cameras/square/snapshot.jpg")
    assert len(web_app.parts.context.audit.entries(action="camera.view")) == 2
    assert police.get("/cameras/nowhere/snapshot.jpg").status_code == 404


def test_view_audit_throttle_records_again_after_the_window() -> None:
    now = [0.0]
    throttle = ViewAuditThrottle(window_seconds=300, clock=lambda: now[0])
    assert throttle.should_record("li.police", "square")
    now[0] = 299
    assert not throttle.should_record("li.police", "square")
    assert throttle.should_record("li.police", "gate")
    now[0] = 301
    assert throttle.should_record("li.police", "square")


def test_snapshot_without_a_frame_yet_is_503(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from agent.accounts import Role
    from agent.village.homestay import HomestayService  # noqa: F401 - same wiring as the web_app

    parts = build_web_context(tmp_path, {"gate": StillCamera("gate", frame=False)})
    parts.add_user("li.police", Role.POLICE)
    client = TestClient(create_app(parts.context))
    accounts = parts.context.accounts
    grant = accounts.start_session(accounts.get_user("li.police"))
    client.cookies.set("vk_session", grant.token)
    response = client.get("/cameras/gate/snapshot.jpg")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "camera.no_frame"


def test_snapshot_applies_the_cameras_privacy_masks(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    mask = Polygon(name="house", points=[(0.0, 0.0), (1.0, 0.0), (1.0, 0.5), (0.0, 0.5)])
    camera = CameraConfig(id="square", source="sim://walking_person", privacy_masks=[mask])
    parts = build_web_context(
        tmp_path, {"square": StillCamera("square")}, kiosk_config(tmp_path, [camera])
    )
    parts.add_user("li.police", "police")
    client = TestClient(create_app(parts.context))
    grant = parts.context.accounts.start_session(parts.context.accounts.get_user("li.police"))
    client.cookies.set("vk_session", grant.token)
    body = client.get("/cameras/square/snapshot.jpg").content
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image[:100].mean() < 10, "the masked top half is black"
    assert image[140:].mean() > 180, "the rest is the grey frame"


@pytest.mark.parametrize(
    ("health", "overall"),
    [
        ({"database": {"ok": True}, "mqtt": {"status": "connected"}}, "ok"),
        ({"database": {"ok": True}, "mqtt": {"ok": False, "error": "refused"}}, "degraded"),
        ({"cameras": {"square": {"state": "offline"}}, "disk": False}, "degraded"),
        ({"status": "ok", "problems": [], "parts": {"mqtt": {"connected": True}}}, "ok"),
        ({"status": "degraded", "problems": ["mqtt"], "parts": {"mqtt": {}}}, "degraded"),
    ],
)
def test_healthz_reports_every_part(
    tmp_path: Path, health: dict[str, object], overall: str
) -> None:
    from fastapi.testclient import TestClient

    parts = build_web_context(tmp_path, health=health)
    parts.add_user("zhao.admin", "admin")
    client = TestClient(create_app(parts.context))
    anonymous = client.get("/healthz")
    assert anonymous.status_code == 200
    # A visitor learns whether the kiosk is well, not what its parts are or why.
    assert anonymous.json() == {"status": overall}

    accounts = parts.context.accounts
    account = accounts.get_user("zhao.admin")
    assert account is not None
    client.cookies.set(SESSION_COOKIE, accounts.start_session(account).token)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == overall
    expected_parts = health.get("parts", health)
    assert body["parts"] == json.loads(json.dumps(expected_parts))
    if "problems" in health:
        assert body["problems"] == health["problems"]


def test_register_refusal_names_the_field_in_the_chosen_language(web_app: App) -> None:
    host = web_app.session_client(H)
    token = form_token(host.get(f"/host/homestays/{web_app.homestay_id}/register").text)
    good = guest_form(token)["id_number"]
    bad = good[:-1] + ("1" if good[-1] != "1" else "2")
    url = f"/host/homestays/{web_app.homestay_id}/register"

    refused = host.post(url, data=guest_form(token, id_number=bad))
    assert refused.status_code == 422
    assert "证件号码：最后一位校验码不符" in refused.text
    assert (
        'id="id_number" name="id_number"' in refused.text and 'aria-invalid="true"' in refused.text
    )

    host.cookies.set("vk_lang", "en")
    english = host.post(url, data=guest_form(token, id_number=bad))
    assert "ID number: The document number is mistyped" in english.text

    missing_phone = host.post(url, data=guest_form(token, phone=""))
    assert "Phone: Enter a phone number." in missing_phone.text

    before = len(web_app.parts.context.homestays.search())
    done = host.post(url, data=guest_form(token))
    assert done.status_code == 303
    assert len(web_app.parts.context.homestays.search()) == before + 1


def test_companions_are_added_and_validated(web_app: App) -> None:
    host = web_app.session_client(H)
    url = f"/host/homestays/{web_app.homestay_id}/register"
    token = form_token(host.get(url).text)
    added = host.post(url, data=guest_form(token, action="add_companion"))
    assert added.status_code == 200
    assert 'name="companions-0-id_number"' in added.text
    assert 'value="李四"' in added.text, "what was typed stays"

    companion = {
        "companion_count": "1",
        "companions-0-name": "李小四",
        "companions-0-id_type": "resident_id",
        "companions-0-id_number": resident_id("20150601", "520102", "031")[:-1] + "0",
        "companions-0-birth_date": "2015-06-01",
    }
    if resident_id("20150601", "520102", "031").endswith("0"):
        companion["companions-0-id_number"] = resident_id("20150601", "520102", "031")[:-1] + "1"
    refused = host.post(url, data={**guest_form(token), **companion})
    assert refused.status_code == 422
    assert "同住人 1 的证件号码" in refused.text
    assert 'id="companions-0-id_number"' in refused.text

    companion["companions-0-id_number"] = resident_id("20150601", "520102", "031")
    done = host.post(url, data={**guest_form(token), **companion})
    assert done.status_code == 303
    newest = web_app.parts.context.homestays.search(homestay_id=web_app.homestay_id)[0]
    assert len(newest.companions) == 1


def test_admin_creates_a_homestay_for_a_host(web_app: App) -> None:
    admin = web_app.session_client(AD)
    page = admin.get("/admin/homestays")
    assert "wang.host" in page.text
    token = form_token(page.text)
    form = {"csrf_token": token, "name": "山居", "address": "竹林村 5 组", "rooms": "3"}
    refused = admin.post("/admin/homestays", data={**form, "host_username": "li.police"})
    assert refused.status_code == 422
    assert "没有这个民宿经营者账号" in refused.text
    bad_rooms = admin.post(
        "/admin/homestays", data={**form, "rooms": "lots", "host_username": "wang.host"}
    )
    assert bad_rooms.status_code == 422 and "客房数必须是整数" in bad_rooms.text
    done = admin.post("/admin/homestays", data={**form, "host_username": "wang.host"})
    assert done.status_code == 303
    names = [
        h.name for h in web_app.parts.context.homestays.list_homestays(host_username="wang.host")
    ]
    assert "山居" in names


def test_police_list_is_masked_and_detail_is_full_and_audited(web_app: App) -> None:
    police = web_app.session_client(P)
    full_id = resident_id()
    listing = police.get("/police/registrations")
    assert "张*丰" in listing.text and full_id not in listing.text and "张三丰" not in listing.text
    token = form_token(listing.text)
    posted = police.post(
        "/police/registrations/search", data={"csrf_token": token, "id_number": full_id}
    )
    assert posted.status_code == 303 and full_id not in posted.headers["location"]
    found = police.get(posted.headers["location"])
    assert f'data-guest="{web_app.guest_id}"' in found.text
    posted = police.post("/police/registrations/search", data={"csrf_token": token, "name": "王五"})
    none = police.get(posted.headers["location"])
    assert 'data-guest="' not in none.text
    bad = police.get("/police/registrations", params={"date_from": "yesterday"})
    assert bad.status_code == 200 and "日期格式不正确" in bad.text

    assert web_app.parts.context.audit.entries(action="guest.view_unmasked") == []
    detail = police.get(f"/police/registrations/{web_app.guest_id}")
    assert full_id in detail.text and "张三丰" in detail.text
    entries = web_app.parts.context.audit.entries(action="guest.view_unmasked")
    assert [(e.actor, e.subject) for e in entries] == [("li.police", f"guest:{web_app.guest_id}")]
    assert police.get("/police/registrations/999999").status_code == 404


def test_police_csv_export_is_full_and_audited(web_app: App) -> None:
    police = web_app.session_client(P)
    response = police.get("/police/registrations.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert resident_id() in response.text
    assert len(web_app.parts.context.audit.entries(action="guest.export")) == 1


def test_language_switch_sets_a_cookie(web_app: App) -> None:
    client = web_app.session_client(F)
    token = form_token(client.get("/").text)
    response = client.post("/language", data={"csrf_token": token, "language": "en", "next": "/"})
    assert response.status_code == 303
    assert "Video patrol status" in client.get("/").text
    client.post("/language", data={"csrf_token": token, "language": "xx", "next": "/"})
    assert "Video patrol status" in client.get("/").text, "an unknown language changes nothing"


def test_pages_send_security_headers(web_app: App) -> None:
    response = web_app.client.get("/login")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
