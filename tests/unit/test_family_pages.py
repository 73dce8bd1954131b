"""Family link pages through the app: kiosk invites, redeeming, the family home, admin pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.village.family import ERROR_MESSAGES, Household
from tests.fixtures.browser import (
    PASSWORD,
    USERS,
    App,
    StillCamera,
    build_web_context,
    form_token,
    kiosk_config,
)
from web_ui.i18n import catalog
from web_ui.routes.family import join_link, phone_base_url
from web_ui.security import CSRF_HEADER, SESSION_COOKIE

PIN = "730519"
KIOSK_SCREEN = ("127.0.0.1", 51000)


@pytest.fixture
def households(web_app: App) -> tuple[Household, Household]:
    family = web_app.parts.context.family
    zhang = family.create_household("张家", PIN, ["square"], actor="zhao.admin")
    li = family.create_household("李家", "582913", [], actor="zhao.admin")
    return zhang, li


def kiosk_client(web_app: App) -> TestClient:
    """The kiosk's own touchscreen: a browser on the same machine, over loopback."""
    client = TestClient(web_app.asgi, follow_redirects=False, client=KIOSK_SCREEN)
    client.get("/login")
    token = client.cookies.get("vk_csrf")
    assert token
    client.headers[CSRF_HEADER] = token
    return client


def phone_client(web_app: App, address: str = "10.20.0.7") -> TestClient:
    client = TestClient(web_app.asgi, follow_redirects=False, client=(address, 40000))
    page = client.get("/family/join")
    client.headers[CSRF_HEADER] = form_token(page.text)
    return client


def signed_in(web_app: App, username: str, role: str = "family") -> TestClient:
    """A new account of ``role`` with a session (this file's family accounts start unlinked)."""
    accounts = web_app.parts.context.accounts
    if accounts.get_user(username) is None:
        web_app.parts.add_user(username, role)
    account = accounts.get_user(username)
    assert account is not None
    grant = accounts.start_session(account)
    client = TestClient(web_app.asgi, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, grant.token)
    client.headers[CSRF_HEADER] = grant.session.csrf_token
    return client


def make_invite(web_app: App, household_id: int, pin: str = PIN) -> str:
    page = kiosk_client(web_app).post(f"/kiosk/family/{household_id}/invite", data={"pin": pin})
    assert page.status_code == 200, page.text[:500]
    match = re.search(r"data-invite-code>([A-Z0-9]{4}-[A-Z0-9]{4})<", page.text)
    assert match
    return match.group(1)


def test_error_codes_are_in_both_catalogs() -> None:
    zh, en = catalog("zh-CN"), catalog("en")
    for code in (*ERROR_MESSAGES, "family.pin_mismatch", "family.password_mismatch"):
        assert f"error.{code}" in zh and f"error.{code}" in en, code


def test_kiosk_pages_exist_only_on_the_kiosk_screen(
    web_app: App, households: tuple[Household, Household]
) -> None:
    zhang, _ = households
    before = len(web_app.parts.context.audit.entries(action="family.invite"))
    for client in (phone_client(web_app), web_app.session_client("admin")):
        assert client.get("/kiosk/family").status_code == 404
        assert client.get(f"/kiosk/family/{zhang.id}").status_code == 404
        refused = client.post(f"/kiosk/family/{zhang.id}/invite", data={"pin": PIN})
        assert refused.status_code == 404
    assert len(web_app.parts.context.audit.entries(action="family.invite")) == before
    kiosk = kiosk_client(web_app)
    listing = kiosk.get("/kiosk/family")
    assert listing.status_code == 200
    assert "张家" in listing.text and "李家" in listing.text
    assert kiosk.get(f"/kiosk/family/{zhang.id}").status_code == 200
    assert kiosk.get("/kiosk/family/9999").status_code == 404


def test_kiosk_invite_shows_the_code_and_a_qr_code_once(
    web_app: App, households: tuple[Household, Household]
) -> None:
    zhang, _ = households
    kiosk = kiosk_client(web_app)
    wrong = kiosk.post(f"/kiosk/family/{zhang.id}/invite", data={"pin": "000000"})
    assert wrong.status_code == 422
    assert "家庭密码不对" in wrong.text
    assert "data-invite-code" not in wrong.text
    page = kiosk.post(f"/kiosk/family/{zhang.id}/invite", data={"pin": PIN})
    assert page.status_code == 200
    code = re.search(r"data-invite-code>([A-Z0-9-]+)<", page.text)
    assert code
    assert re.search(r'<svg [^>]*class="qr"', page.text) and "<path" in page.text
    link = re.search(r"data-invite-link>([^<]+)<", page.text)
    assert link and link.group(1).endswith("/family/join?code=" + code.group(1).replace("-", ""))
    assert page.headers["cache-control"] == "no-store"
    entry = web_app.parts.context.audit.entries(action="family.invite")[0]
    assert (entry.actor, entry.subject) == ("anonymous", f"household:{zhang.id}")
    bare = code.group(1).replace("-", "")
    for row in web_app.parts.context.audit.entries(limit=1000):
        assert bare not in f"{row.subject} {row.detail}"


def test_kiosk_pin_form_needs_its_csrf_token(
    web_app: App, households: tuple[Household, Household]
) -> None:
    zhang, _ = households
    kiosk = TestClient(web_app.asgi, follow_redirects=False, client=KIOSK_SCREEN)
    kiosk.get(f"/kiosk/family/{zhang.id}")
    assert kiosk.post(f"/kiosk/family/{zhang.id}/invite", data={"pin": PIN}).status_code == 403


def test_wrong_pins_pause_with_429(web_app: App, households: tuple[Household, Household]) -> None:
    zhang, li = households
    kiosk = kiosk_client(web_app)
    statuses = [
        kiosk.post(f"/kiosk/family/{zhang.id}/invite", data={"pin": "999999"}).status_code
        for _ in range(5)
    ]
    assert statuses == [422, 422, 422, 422, 429]
    paused = kiosk.post(f"/kiosk/family/{zhang.id}/invite", data={"pin": PIN})
    assert paused.status_code == 429 and int(paused.headers["retry-after"]) > 0
    assert "请过几分钟再试" in paused.text
    assert kiosk.post(f"/kiosk/family/{li.id}/invite", data={"pin": "582913"}).status_code == 200


def test_a_phone_creates_a_family_account_with_a_code_and_sees_only_its_cameras(
    web_app: App, households: tuple[Household, Household]
) -> None:
    zhang, li = households
    code = make_invite(web_app, zhang.id)
    phone = phone_client(web_app)
    form = {"code": code.lower(), "username": "zhang.san", "password": PASSWORD}
    mismatch = phone.post("/family/join", data={**form, "password_again": "another-pass-1"})
    assert mismatch.status_code == 422 and "两次输入的密码不一样" in mismatch.text
    weak = phone.post("/family/join", data={**form, "password": "short", "password_again": "short"})
    assert weak.status_code == 422
    assert web_app.parts.context.accounts.get_user("zhang.san") is None
    done = phone.post("/family/join", data={**form, "password_again": PASSWORD})
    assert done.status_code == 303 and done.headers["location"] == "/family?done=linked"
    assert done.cookies.get(SESSION_COOKIE)
    account = web_app.parts.context.accounts.get_user("zhang.san")
    assert account is not None and account.role.value == "family"
    phone.headers[CSRF_HEADER] = phone.get("/api/session").json()["csrf_token"]
    home = phone.get("/family")
    assert home.status_code == 200
    assert '<div data-live-camera="square" data-live-tier="low"></div>' in home.text
    assert "张家" in home.text and "李家" not in home.text
    assert phone.get("/api/family/households").json() == [
        {"id": zhang.id, "name": "张家", "cameras": [{"id": "square", "name": "村口广场"}]}
    ]
    # Another household's pages are not there for this account.
    assert phone.post(f"/family/households/{li.id}/leave").status_code == 404
    # The code is used up.
    again = phone_client(web_app, "10.20.0.8").post(
        "/family/join",
        data={"code": code, "username": "zhang.mei", "password": PASSWORD,
              "password_again": PASSWORD},
    )  # fmt: skip
    assert again.status_code == 422 and "邀请码不对、已用过或已过期" in again.text
    assert web_app.parts.context.accounts.get_user("zhang.mei") is None
    link, add = (
        web_app.parts.context.audit.entries(action="family.link")[0],
        web_app.parts.context.audit.entries(action="user.add")[0],
    )
    assert (link.actor, link.subject, link.detail) == (
        "zhang.san",
        f"household:{zhang.id}",
        "new account",
    )
    assert add.subject == "user:zhang.san"


def test_a_signed_in_family_account_links_and_other_roles_cannot(
    web_app: App, households: tuple[Household, Household]
) -> None:
    _, li = households
    code = make_invite(web_app, li.id, "582913")
    police = web_app.session_client("police")
    refused = police.post("/family/join", data={"code": code})
    assert refused.status_code == 422
    assert "只有亲情通（家人）账号可以绑定家庭" in refused.text
    family = signed_in(web_app, "li.xiaoming")
    page = family.get(f"/family/join?code={code}")
    assert f'value="{code}"' in page.text
    linked = family.post("/family/join", data={"code": code})
    assert linked.status_code == 303
    assert web_app.parts.context.family.cameras_for("li.xiaoming") == frozenset()
    assert [h.name for h in web_app.parts.context.family.households_of("li.xiaoming")] == ["李家"]


def test_wrong_codes_are_limited_per_address(
    web_app: App, households: tuple[Household, Household]
) -> None:
    zhang, _ = households
    code = make_invite(web_app, zhang.id)
    phone = phone_client(web_app)
    form = {"username": "zhang.san", "password": PASSWORD, "password_again": PASSWORD}
    statuses = [
        phone.post("/family/join", data={**form, "code": "WXYZ-2345"}).status_code
        for _ in range(11)
    ]
    assert statuses == [422] * 10 + [429]
    paused = phone.post("/family/join", data={**form, "code": code})
    assert paused.status_code == 429 and "retry-after" in paused.headers
    elsewhere = phone_client(web_app, "10.20.0.9")
    assert elsewhere.post("/family/join", data={**form, "code": code}).status_code == 303


def test_family_member_leaves_from_the_phone(
    web_app: App, households: tuple[Household, Household]
) -> None:
    zhang, _ = households
    family = signed_in(web_app, "zhang.jun")
    family.post("/family/join", data={"code": make_invite(web_app, zhang.id)})
    assert web_app.parts.context.family.cameras_for("zhang.jun") == {"square"}
    left = family.post(f"/family/households/{zhang.id}/leave")
    assert left.status_code == 303
    assert web_app.parts.context.family.cameras_for("zhang.jun") == frozenset()
    assert web_app.parts.context.audit.entries(action="family.leave")[0].actor == "zhang.jun"


def test_admin_creates_edits_and_unlinks(
    web_app: App, households: tuple[Household, Household]
) -> None:
    admin = web_app.session_client("admin")
    page = admin.get("/admin/households")
    assert page.status_code == 200 and "张家" in page.text
    refused = admin.post(
        "/admin/households",
        data={"name": "王家", "pin": "123456", "pin_again": "123456", "cameras": ["square"]},
    )
    assert refused.status_code == 422 and "家庭密码太容易猜" in refused.text
    mismatch = admin.post(
        "/admin/households", data={"name": "王家", "pin": "482915", "pin_again": "482916"}
    )
    assert mismatch.status_code == 422
    unknown = admin.post(
        "/admin/households",
        data={"name": "王家", "pin": "482915", "pin_again": "482915", "cameras": ["nope"]},
    )
    assert unknown.status_code == 422
    created = admin.post(
        "/admin/households",
        data={"name": "王家", "pin": "482915", "pin_again": "482915", "cameras": ["square"]},
    )
    assert created.status_code == 303
    wang = next(h for h in web_app.parts.context.family.list_households() if h.name == "王家")
    assert wang.camera_ids == ("square",)
    family = signed_in(web_app, "wang.er")
    family.post("/family/join", data={"code": make_invite(web_app, wang.id, "482915")})
    detail = admin.get(f"/admin/households/{wang.id}")
    assert "wang.er" in detail.text
    assert admin.post(f"/admin/households/{wang.id}", data={"name": "王家老宅"}).status_code == 303
    assert web_app.parts.context.family.cameras_for("wang.er") == frozenset()
    assert (
        admin.post(
            f"/admin/households/{wang.id}/pin", data={"pin": "902714", "pin_again": "902714"}
        ).status_code
        == 303
    )
    removed = admin.post(f"/admin/households/{wang.id}/members/wang.er/remove")
    assert removed.status_code == 303
    assert web_app.parts.context.family.households_of("wang.er") == []
    assert admin.post(f"/admin/households/{wang.id}/members/nobody/remove").status_code == 404
    assert admin.post(f"/admin/households/{wang.id}/delete").status_code == 303
    assert admin.get(f"/admin/households/{wang.id}").status_code == 404
    actions = {entry.action for entry in web_app.parts.context.audit.entries(limit=200)}
    assert {
        "family.household_add",
        "family.household_edit",
        "family.pin_set",
        "family.unlink",
        "family.household_delete",
    } <= actions


def test_admin_error_is_in_english_for_an_english_reader(
    web_app: App, households: tuple[Household, Household]
) -> None:
    admin = web_app.session_client("admin")
    admin.cookies.set("vk_lang", "en")
    page = admin.post("/admin/households", data={"name": "", "pin": PIN, "pin_again": PIN})
    assert page.status_code == 422
    assert "Enter the household&#39;s name." in page.text


def test_phone_link_names_the_kiosk_as_phones_reach_it(tmp_path: Path) -> None:
    from starlette.requests import Request

    request = Request({"type": "http", "scheme": "http", "server": ("127.0.0.1", 8080),
                       "path": "/", "headers": [(b"host", b"127.0.0.1:8080")]})  # fmt: skip
    for web, expected in (
        ({}, "http://127.0.0.1:8080"),
        ({"allowed_hosts": ["localhost", "kiosk.qingshan.lan"], "https": True, "port": 8443},
         "https://kiosk.qingshan.lan:8443"),
        ({"allowed_hosts": ["kiosk.qingshan.lan"], "trusted_proxies": ["127.0.0.1"]},
         "https://kiosk.qingshan.lan"),
        ({"allowed_hosts": ["192.168.8.20"], "port": 8080}, "http://192.168.8.20:8080"),
    ):  # fmt: skip
        parts = build_web_context(tmp_path, config=kiosk_config(tmp_path, **web))
        context = parts.context
        assert phone_base_url(context, request) == expected, web
        assert join_link(context, request, "ABCD2345") == expected + "/family/join?code=ABCD2345"
        context.database.close()


def test_a_web_context_without_a_family_service_builds_one(tmp_path: Path) -> None:
    from web_ui.context import WebContext

    parts = build_web_context(tmp_path, {"square": StillCamera("square")})
    context = parts.context
    bare = WebContext(
        config=context.config,
        database=context.database,
        cameras=context.cameras,
        homestays=context.homestays,
        audit=context.audit,
        accounts=context.accounts,
        health=context.health,
    )
    assert bare.family is not None and bare.family.camera_ids == {"square"}
    assert bare.family.cameras_for(USERS["family"]) == frozenset()
    context.database.close()


def test_a_code_taken_while_the_account_is_made_leaves_no_account(
    web_app: App, households: tuple[Household, Household], monkeypatch: pytest.MonkeyPatch
) -> None:
    zhang, _ = households
    code = make_invite(web_app, zhang.id)
    family = web_app.parts.context.family
    create_user = web_app.parts.context.accounts.create_user
    other = signed_in(web_app, "zhang.mei")

    def create_and_lose_the_race(*args: object, **kwargs: object) -> None:
        create_user(*args, **kwargs)  # type: ignore[arg-type]
        assert other.post("/family/join", data={"code": code}).status_code == 303

    monkeypatch.setattr(web_app.parts.context.accounts, "create_user", create_and_lose_the_race)
    phone = phone_client(web_app)
    form = {"code": code, "username": "zhang.san", "password": PASSWORD}
    late = phone.post("/family/join", data={**form, "password_again": PASSWORD})
    assert late.status_code == 422 and "邀请码不对、已用过或已过期" in late.text
    assert SESSION_COOKIE not in late.cookies
    assert web_app.parts.context.accounts.get_user("zhang.san") is None
    assert family.members_of(zhang.id) == ["zhang.mei"]
