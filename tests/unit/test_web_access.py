"""Every route against every role, CSRF refusals and sign-in lockout, through the real app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.browser import (
    PASSWORD,
    USERS,
    App,
    build_web_context,
    form_token,
    guest_input,
    kiosk_config,
)
from tests.village import ACCESS_ROLES, service_access
from web_ui.app import create_app
from web_ui.security import (
    ANONYMOUS,
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    new_anonymous_csrf,
)
from web_ui.throttle import LoginThrottle

A, H, P, AD, F, S = ANONYMOUS, "host", "police", "admin", "family", "staff"
EVERYONE = ACCESS_ROLES
SIGNED_IN = EVERYONE - {A}

# Written out by hand on purpose: a route whose guard changes, or a new route, fails here until
# this table (the access policy) is updated with it.
CORE: dict[tuple[str, str], set[str]] = {
    ("GET", "/"): EVERYONE,
    ("GET", "/status"): EVERYONE,
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/api/cameras"): EVERYONE,
    ("GET", "/cameras/{camera_id}/snapshot.jpg"): {P, AD},
    ("GET", "/login"): EVERYONE,
    ("POST", "/login"): EVERYONE,
    ("POST", "/logout"): SIGNED_IN,
    ("POST", "/language"): EVERYONE,
    ("POST", "/api/session"): EVERYONE,
    ("GET", "/api/session"): EVERYONE,
    ("DELETE", "/api/session"): SIGNED_IN,
    ("GET", "/account/password"): SIGNED_IN,
    ("POST", "/account/password"): SIGNED_IN,
    ("GET", "/police/audit"): {P, AD},
    ("GET", "/police/patrol"): {P, AD},
    ("POST", "/api/live/{camera_id}/offer"): {P, AD, F},
    ("DELETE", "/api/live/sessions/{session_id}"): {P, AD, F},
    ("GET", "/live/{camera_id}/mjpeg"): {P, AD, F},
    # Calls: the kiosk's side answers 404 to any client but the kiosk's own screen (loopback).
    ("GET", "/kiosk/calls"): EVERYONE,
    ("GET", "/api/kiosk/calls"): EVERYONE,
    ("GET", "/api/kiosk/calls/events"): EVERYONE,
    ("POST", "/api/kiosk/calls"): EVERYONE,
    ("POST", "/api/kiosk/calls/{call_id}/answer"): EVERYONE,
    ("POST", "/api/kiosk/calls/{call_id}/join"): EVERYONE,
    ("POST", "/api/kiosk/calls/{call_id}/decline"): EVERYONE,
    ("POST", "/api/kiosk/calls/{call_id}/hangup"): EVERYONE,
    ("POST", "/api/kiosk/calls/missed/seen"): EVERYONE,
    ("GET", "/family/calls"): {F},
    ("GET", "/api/calls"): {F},
    ("GET", "/api/calls/events"): {F},
    ("POST", "/api/calls"): {F},
    ("POST", "/api/calls/{call_id}/answer"): {F},
    ("POST", "/api/calls/{call_id}/join"): {F},
    ("POST", "/api/calls/{call_id}/decline"): {F},
    ("POST", "/api/calls/{call_id}/hangup"): {F},
    ("POST", "/api/calls/missed/seen"): {F},
    ("GET", "/api/audit"): {P, AD},
    # Also a bearer token (web.metrics_token) for a scraper: tests/unit/test_metrics.py.
    ("GET", "/metrics"): {AD},
    # Family link: the kiosk pages are public but answer 404 anywhere but the kiosk's screen.
    ("GET", "/kiosk/family"): EVERYONE,
    ("GET", "/kiosk/family/{household_id}"): EVERYONE,
    ("POST", "/kiosk/family/{household_id}/invite"): EVERYONE,
    ("GET", "/family/join"): EVERYONE,
    ("POST", "/family/join"): EVERYONE,
    ("GET", "/family"): {F},
    ("POST", "/family/households/{household_id}/leave"): {F},
    ("GET", "/api/family/households"): {F},
    ("GET", "/admin/households"): {AD},
    ("POST", "/admin/households"): {AD},
    ("GET", "/admin/households/{household_id}"): {AD},
    ("POST", "/admin/households/{household_id}"): {AD},
    ("POST", "/admin/households/{household_id}/pin"): {AD},
    ("POST", "/admin/households/{household_id}/members/{username}/remove"): {AD},
    ("POST", "/admin/households/{household_id}/delete"): {AD},
}
# Each village service writes its own table (tests/village/<name>/__init__.py, ACCESS).
EXPECTED = {**CORE, **service_access()}


def test_every_route_declares_the_expected_roles(web_app: App) -> None:
    declared = web_app.asgi.state.access_table
    assert set(declared) == set(EXPECTED), "every route must be listed in EXPECTED"
    for key, roles in EXPECTED.items():
        assert set(declared[key]) == roles, key


def test_openapi_lists_only_routes_of_the_access_table(web_app: App) -> None:
    paths = web_app.client.get("/api/openapi.json").json()["paths"]
    declared = web_app.asgi.state.access_table
    for path, operations in paths.items():
        for method in operations:
            assert (method.upper(), path) in declared, (method, path)


def test_a_route_without_a_guard_is_refused() -> None:
    from fastapi import APIRouter

    from web_ui.security import access_table

    router = APIRouter()

    @router.get("/unguarded")
    def unguarded() -> dict[str, str]:
        return {}

    with pytest.raises(LookupError):
        access_table([("", router)])


def _concrete(path: str, web_app: App) -> str:
    return (
        path.replace("{homestay_id}", str(web_app.homestay_id))
        .replace("{guest_id}", str(web_app.guest_id))
        .replace("{camera_id}", "square")
    )


def _error_code(response: Any) -> str | None:
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return str(body["error"].get("code"))
    return None


@pytest.mark.parametrize("role", [A, H, P, AD, F])
def test_route_role_matrix_enforced(web_app: App, role: str) -> None:
    """Each route answers each role as EXPECTED says: allowed never 401/403, denied always."""
    for (method, path), allowed in sorted(EXPECTED.items()):
        if (method, path) in {("POST", "/logout"), ("DELETE", "/api/session")}:
            continue  # checked below: they would end the session the loop is using
        client = web_app.session_client(role)
        response = client.request(method, _concrete(path, web_app))
        location = response.headers.get("location", "")
        # A 401 from the sign-in routes themselves (wrong password) is an answer, not a refusal.
        refused = (
            response.status_code == 403
            or location.startswith("/login?next=")
            or (response.status_code == 401 and _error_code(response) == "auth.required")
        )
        if role in allowed:
            assert not refused, (method, path, role, response.status_code)
            assert response.status_code < 500, (method, path, role, response.text[:300])
        elif role == A:
            expected = 401 if path.startswith("/api/") else 303
            assert response.status_code == expected, (method, path, response.status_code)
            if expected == 303:
                assert location.startswith("/login?next=")
        else:
            assert response.status_code == 403, (method, path, role, response.status_code)


@pytest.mark.parametrize("role", [H, P, AD, F])
def test_sign_out_ends_the_session(web_app: App, role: str) -> None:
    client = web_app.session_client(role)
    assert client.get("/api/session").json()["role"] == role
    assert client.post("/logout").status_code == 303
    assert client.get("/api/session").json()["role"] == ANONYMOUS
    api = web_app.session_client(role)
    assert api.delete("/api/session").status_code == 204
    assert api.get("/api/session").json()["role"] == ANONYMOUS


def test_form_without_csrf_token_is_refused(web_app: App) -> None:
    host = web_app.session_client(H)
    del host.headers[CSRF_HEADER]
    page = host.get("/host/homestays")
    assert page.status_code == 200
    checkout = f"/host/guests/{web_app.guest_id}/checkout"

    assert host.post(checkout).status_code == 403
    assert host.post(checkout, data={"csrf_token": "forged-token-forged-token"}).status_code == 403
    assert web_app.parts.context.homestays.search(active_only=True), "the guest must still be in"

    done = host.post(checkout, data={"csrf_token": form_token(page.text)})
    assert done.status_code == 303
    assert web_app.parts.context.homestays.search(active_only=True) == []


def test_sign_in_form_needs_the_visitor_csrf_token(web_app: App) -> None:
    client = TestClient(web_app.asgi, follow_redirects=False)
    page = client.get("/login")
    credentials = {"username": USERS[P], "password": PASSWORD}
    assert client.post("/login", data=credentials).status_code == 403
    signed_in = client.post("/login", data={**credentials, "csrf_token": form_token(page.text)})
    assert signed_in.status_code == 303
    assert client.get("/api/session").json()["username"] == USERS[P]


def test_a_planted_visitor_csrf_cookie_is_not_accepted(web_app: App) -> None:
    """Login CSRF: someone who can set a cookie for the kiosk's host (another port of it, a
    shared parent domain) plants a token and posts a form with the same value. Only tokens the
    kiosk signed count; a planted one is replaced, and the form with it is refused."""
    client = TestClient(web_app.asgi, follow_redirects=False)
    planted = "attacker-chosen-token-attacker-chosen"
    client.cookies.set(CSRF_COOKIE, planted)
    page = client.get("/login")
    assert form_token(page.text) != planted, "the kiosk issued its own signed token"
    assert page.cookies.get(CSRF_COOKIE) not in (None, planted)
    client.cookies.clear()
    client.cookies.set(CSRF_COOKIE, planted)
    credentials = {"username": USERS[P], "password": PASSWORD, "csrf_token": planted}
    assert client.post("/login", data=credentials).status_code == 403
    assert client.get("/api/session").json()["role"] == ANONYMOUS
    # A token signed by another kiosk (another key) is planted just the same.
    other = new_anonymous_csrf(b"k" * 32)
    client.cookies.clear()
    client.cookies.set(CSRF_COOKIE, other)
    assert client.post("/login", data={**credentials, "csrf_token": other}).status_code == 403


def test_state_changes_started_by_another_site_are_refused(web_app: App) -> None:
    """Even with the right token (a page that learned it), a POST that another site's page
    made is refused: the browser says so in Sec-Fetch-Site, or in Origin."""
    host = web_app.session_client(H)
    page = host.get("/host/homestays")
    token = form_token(page.text)
    checkout = f"/host/guests/{web_app.guest_id}/checkout"
    for headers in (
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},  # another port of the kiosk's own host
        {"origin": "http://evil.example"},
        {"referer": "http://127.0.0.1:9999/trap.html"},
    ):
        refused = host.post(checkout, data={"csrf_token": token}, headers=headers)
        assert refused.status_code == 403, headers
    assert web_app.parts.context.homestays.search(active_only=True), "the guest is still in"
    done = host.post(
        checkout, data={"csrf_token": token}, headers={"sec-fetch-site": "same-origin"}
    )
    assert done.status_code == 303


def test_json_api_with_session_cookie_needs_csrf_header(web_app: App) -> None:
    admin = web_app.session_client(AD)
    token = admin.headers.pop(CSRF_HEADER)
    body = {"name": "山居", "address": "竹林村 5 组", "rooms": 3, "host_username": USERS[H]}
    refused = admin.post("/api/homestays", json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf.invalid"
    created = admin.post("/api/homestays", json=body, headers={CSRF_HEADER: token})
    assert created.status_code == 201
    assert created.json()["host_username"] == USERS[H]


def test_session_cookie_flags(web_app: App, tmp_path: Path) -> None:
    client = TestClient(web_app.asgi, follow_redirects=False)
    response = client.post("/api/session", json={"username": USERS[P], "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie
    # A browser-session cookie: it goes when the browser closes; the server ends it earlier.
    assert "max-age" not in cookie.lower() and "expires" not in cookie.lower()

    secure_parts = build_web_context(
        tmp_path / "secure",
        config=kiosk_config(tmp_path / "secure", secure_cookies=True),
    )
    secure_parts.add_user(USERS[P], P)
    secure = TestClient(create_app(secure_parts.context), base_url="https://testserver")
    cookie = secure.post("/api/session", json={"username": USERS[P], "password": PASSWORD}).headers[
        "set-cookie"
    ]
    assert "Secure" in cookie


def test_fifth_wrong_password_pauses_this_address_only(web_app: App) -> None:
    client = TestClient(web_app.asgi, follow_redirects=False)
    token = form_token(client.get("/login").text)
    wrong = {"username": USERS[P], "password": "not-the-password", "csrf_token": token}
    answers = []
    for _ in range(5):
        response = client.post("/login", data=wrong)
        assert response.status_code == 401
        answers.append(response.text)
    right = client.post("/login", data={**wrong, "password": PASSWORD})
    assert right.status_code == 401, "paused here: even the right password is refused"
    ghost = client.post("/login", data={**wrong, "username": "no.such.user"})
    # One answer for all: it helps the real user and tells a stranger nothing.
    for text in [*answers, right.text, ghost.text]:
        assert "用户名或密码错误。连续输错几次后，本设备将暂停登录几分钟。" in text
        assert "锁定" not in text
    assert SESSION_COOKIE not in client.cookies
    api = client.post("/api/session", json={"username": USERS[P], "password": PASSWORD})
    assert (api.status_code, api.json()["error"]["code"]) == (401, "auth.wrong")
    # The officer on another device is not locked out by whoever guessed here.
    elsewhere = TestClient(web_app.asgi, client=("198.51.100.20", 40000))
    signed_in = elsewhere.post("/api/session", json={"username": USERS[P], "password": PASSWORD})
    assert signed_in.status_code == 200
    failures = web_app.parts.context.audit.entries(action="auth.login_failed")
    details = [entry.detail for entry in reversed(failures)]
    assert details == ["", "", "", "", "", "paused", "paused"]
    assert all(entry.actor == USERS[P] for entry in failures), "unknown names are not audited"


def test_paused_sign_in_is_lifted_by_unlock(web_app: App) -> None:
    client = TestClient(web_app.asgi, follow_redirects=False)
    wrong = {"username": USERS[P], "password": "not-the-password"}
    for _ in range(5):
        assert client.post("/api/session", json=wrong).status_code == 401
    right = {**wrong, "password": PASSWORD}
    assert client.post("/api/session", json=right).status_code == 401
    web_app.parts.context.accounts.unlock(USERS[P])
    assert client.post("/api/session", json=right).status_code == 200


def test_sign_in_attempts_are_throttled_per_address(web_app: App) -> None:
    web_app.asgi.state.login_throttle = LoginThrottle(max_failures=3)
    client = TestClient(web_app.asgi, follow_redirects=False)
    for name in ("ghost1", "ghost2", "ghost3"):
        response = client.post("/api/session", json={"username": name, "password": "x"})
        assert response.status_code == 401
    throttled = client.post("/api/session", json={"username": USERS[P], "password": PASSWORD})
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0


def test_open_redirect_after_sign_in_is_refused(web_app: App) -> None:
    client = TestClient(web_app.asgi, follow_redirects=False)
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": USERS[H], "password": PASSWORD, "csrf_token": token,
              "next": "//evil.example/"},
    )  # fmt: skip
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_host_cannot_touch_another_hosts_homestay(web_app: App) -> None:
    web_app.parts.add_user("sun.host", H)
    other = web_app.parts.context.homestays.create_homestay("山居", "竹林村 9 组", 2, "sun.host")
    host = web_app.session_client(H)
    assert host.get(f"/host/homestays/{other.id}/register").status_code == 404
    body = guest_input().model_dump(mode="json")
    assert host.post(f"/api/homestays/{other.id}/guests", json=body).status_code == 404
    assert [h["id"] for h in host.get("/api/homestays").json()] == [web_app.homestay_id]


def test_app_applies_the_configured_lockout_to_any_account_store(tmp_path: Path) -> None:
    from agent.accounts import AccountStore
    from tests.fixtures.browser import FAST_HASHER

    parts = build_web_context(tmp_path, config=kiosk_config(tmp_path, login_max_failures=2))
    parts.context.accounts = AccountStore(parts.context.database, hasher=FAST_HASHER)
    parts.add_user(USERS[P], P)
    client = TestClient(create_app(parts.context))
    wrong = {"username": USERS[P], "password": "wrong-wrong-wrong"}
    assert client.post("/api/session", json=wrong).json()["error"]["code"] == "auth.wrong"
    assert client.post("/api/session", json=wrong).json()["error"]["code"] == "auth.wrong"
    right = {**wrong, "password": PASSWORD}
    assert client.post("/api/session", json=right).status_code == 401, "paused after two"
