"""Sign-in limits, sessions and the change-password page through the real app."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent.accounts import AccountStore
from tests.fixtures.browser import (
    PASSWORD,
    USERS,
    App,
    WebParts,
    build_web_context,
    form_token,
    kiosk_config,
)
from tests.fixtures.loops import run_in_own_loop
from tests.fixtures.passwords import CountingHasher
from web_ui.app import create_app
from web_ui.errors import TooManyAttemptsError
from web_ui.security import ANONYMOUS, SESSION_COOKIE
from web_ui.throttle import GateBusyError, LoginThrottle, PasswordCheckGate

H, P = "host", "police"
REMOTE = ("192.0.2.5", 40000)
NEW_PASSWORD = "terraced-fields-81"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def kiosk_parts(
    tmp_path: Path, hasher: CountingHasher | None = None, clock: Any = None, **web: Any
) -> tuple[WebParts, FastAPI]:
    parts = build_web_context(tmp_path, config=kiosk_config(tmp_path, **web))
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    parts.context.accounts = AccountStore(
        parts.context.database, hasher=hasher or CountingHasher(), **extra
    )
    parts.add_user(USERS[P], P)
    return parts, create_app(parts.context)


def stored_hash(parts: WebParts, username: str) -> str:
    with parts.context.database.read() as db:
        row = db.execute("SELECT password_hash FROM users WHERE username = ?", [username])
        return str(row.fetchone()[0])


def send_together(
    asgi: FastAPI, bodies: list[dict[str, str]], client: tuple[str, int] = REMOTE
) -> list[httpx.Response]:
    """Every sign-in in flight at once, as a flood of browsers would send them."""

    async def flood() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=asgi, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return list(
                await asyncio.gather(*(http.post("/api/session", json=body) for body in bodies))
            )

    return run_in_own_loop(flood)


# -- the per-address window and the gate, alone ------------------------------------------------


def test_address_window_counts_before_the_check_under_one_lock() -> None:
    throttle = LoginThrottle(max_failures=30)
    start = threading.Barrier(50)
    granted: list[float] = []

    def attempt() -> None:
        start.wait()
        with contextlib.suppress(TooManyAttemptsError):
            granted.append(throttle.reserve("192.0.2.1"))

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 30
    assert throttle.retry_after("192.0.2.1") > 0
    assert throttle.retry_after("192.0.2.2") == 0


def test_a_successful_sign_in_gives_its_place_back() -> None:
    now = [0.0]
    throttle = LoginThrottle(max_failures=2, window_seconds=60, clock=lambda: now[0])
    for _ in range(10):
        throttle.release("192.0.2.1", throttle.reserve("192.0.2.1"))
    throttle.reserve("192.0.2.1")
    throttle.reserve("192.0.2.1")
    with pytest.raises(TooManyAttemptsError) as full:
        throttle.reserve("192.0.2.1")
    assert 0 < full.value.retry_after_seconds <= 61
    now[0] = 60.0
    throttle.reserve("192.0.2.1")


def test_gate_refuses_at_once_when_full_and_never_runs_more_at_once() -> None:
    gate = PasswordCheckGate(2)
    release = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def check() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(10)
        with lock:
            running -= 1
        return threading.current_thread().name

    async def scenario() -> list[str]:
        first = asyncio.ensure_future(gate.run(check))
        second = asyncio.ensure_future(gate.run(check))
        await asyncio.sleep(0)
        with pytest.raises(GateBusyError):
            await gate.run(check)
        # A caller that stops waiting does not free its place while its check still runs.
        second.cancel()
        await asyncio.sleep(0.05)
        assert gate.running == 2
        with pytest.raises(GateBusyError):
            await gate.run(check)
        release.set()
        names = [await first]
        while gate.running:
            await asyncio.sleep(0.01)
        names.append(await gate.run(check))
        return names

    names = run_in_own_loop(scenario)
    assert most == 2
    assert all(name.startswith("password-check") for name in names)


# -- through the app -----------------------------------------------------------------------------


def test_parallel_sign_ins_check_at_most_the_configured_number(tmp_path: Path) -> None:
    """24 wrong passwords and the right one at once: at most five reach the real hash."""
    hasher = CountingHasher(delay=0.05)
    parts, asgi = kiosk_parts(tmp_path, hasher, login_max_failures=5)
    real = stored_hash(parts, USERS[P])
    # A gate as wide as the burst: here the count is under test, not the gate.
    asgi.state.password_gate = PasswordCheckGate(25)
    bodies = [{"username": USERS[P], "password": "guess-guess-guess"}] * 24
    responses = send_together(asgi, [*bodies, {"username": USERS[P], "password": PASSWORD}])
    assert {r.status_code for r in responses} <= {200, 401}
    assert hasher.verified.count(real) <= 5
    assert len(hasher.verified) == 25, "each attempt costs one argon2 check, evaluated or not"
    if responses[-1].status_code == 401:
        again = send_together(asgi, [{"username": USERS[P], "password": PASSWORD}])
        assert again[0].status_code == 401, "the pause holds: a success did not clear it"


def test_parallel_guesses_from_one_address_respect_its_window(tmp_path: Path) -> None:
    hasher = CountingHasher(delay=0.05)
    _, asgi = kiosk_parts(tmp_path, hasher)
    asgi.state.login_throttle = LoginThrottle(max_failures=3)
    asgi.state.password_gate = PasswordCheckGate(25)
    bodies = [{"username": f"ghost{n}", "password": "guess-guess-guess"} for n in range(25)]
    responses = send_together(asgi, bodies)
    codes = sorted(r.json()["error"]["code"] for r in responses)
    assert codes == ["auth.throttled"] * 22 + ["auth.wrong"] * 3
    assert len(hasher.verified) == 3


def test_a_full_gate_answers_429_at_once(tmp_path: Path) -> None:
    hasher = CountingHasher()
    hasher.hold = threading.Event()
    _, asgi = kiosk_parts(tmp_path, hasher, login_concurrency=1)

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=asgi, client=REMOTE)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            wrong = {"username": USERS[P], "password": "guess-guess-guess"}
            first = asyncio.ensure_future(http.post("/api/session", json=wrong))
            await asyncio.to_thread(hasher.entered.wait, 10)
            busy = await http.post("/api/session", json={**wrong, "username": "ghost"})
            page = await http.get("/login")
            token = form_token(page.text)
            form = await http.post(
                "/login", data={"username": "ghost", "password": "x", "csrf_token": token}
            )
            assert not first.done(), "the busy answers came while the first check still ran"
            hasher.hold.set()  # type: ignore[union-attr]
            return await first, busy, form

    first, busy, form = run_in_own_loop(scenario)
    assert first.status_code == 401
    assert (busy.status_code, busy.json()["error"]["code"]) == (429, "auth.busy")
    assert busy.headers["retry-after"] == "1"
    assert form.status_code == 429 and "请过几秒再试" in form.text
    assert len(hasher.verified) == 1, "a refused sign-in is not checked at all"


def test_sign_out_is_audited(web_app: App) -> None:
    page = web_app.session_client(H)
    assert page.post("/logout").status_code == 303
    api = web_app.session_client(P)
    assert api.delete("/api/session").status_code == 204
    logouts = web_app.parts.context.audit.entries(action="auth.logout")
    assert [(e.actor, e.subject) for e in reversed(logouts)] == [
        (USERS[H], f"user:{USERS[H]}"),
        (USERS[P], f"user:{USERS[P]}"),
    ]


def test_sign_in_is_audited_and_an_unknown_name_is_not(web_app: App) -> None:
    client = TestClient(web_app.asgi, client=REMOTE)
    assert client.post("/api/session", json={"username": USERS[P], "password": PASSWORD}).is_success
    typo = {"username": "Bamboo-grove-2024", "password": "x"}
    assert (
        TestClient(web_app.asgi, client=REMOTE).post("/api/session", json=typo).status_code == 401
    )
    entries = web_app.parts.context.audit.entries()
    assert ("auth.login", USERS[P]) in [(e.action, e.actor) for e in entries]
    assert "Bamboo" not in repr(entries)


# -- sessions -----------------------------------------------------------------------------------


def test_idle_and_absolute_expiry_through_the_app(tmp_path: Path) -> None:
    clock = FakeClock()
    _, asgi = kiosk_parts(tmp_path, clock=clock, idle_minutes=15, session_hours=1)
    client = TestClient(asgi, client=REMOTE, follow_redirects=False)
    body = {"username": USERS[P], "password": PASSWORD}
    assert client.post("/api/session", json=body).status_code == 200
    clock.now += 14 * 60
    assert client.get("/api/session").json()["role"] == P
    clock.now += 15 * 60 + 1
    assert client.get("/api/session").json()["role"] == ANONYMOUS
    assert client.get("/police/audit").headers["location"].startswith("/login?next=")

    assert client.post("/api/session", json=body).status_code == 200
    for _ in range(5):  # busy, but the absolute hour still ends it
        clock.now += 10 * 60
        assert client.get("/api/session").json()["role"] == P
    clock.now += 10 * 60
    assert client.get("/api/session").json()["role"] == ANONYMOUS


def test_kiosk_screen_sign_ins_are_short_and_its_pages_carry_the_idle_timer(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    _, asgi = kiosk_parts(tmp_path, clock=clock, kiosk_session_minutes=5, kiosk_idle_seconds=30)
    kiosk = TestClient(asgi, client=("127.0.0.1", 50000), follow_redirects=False)
    remote = TestClient(asgi, client=REMOTE, follow_redirects=False)
    assert 'data-kiosk-idle-seconds="30"' in kiosk.get("/").text
    assert "data-kiosk-idle-seconds" not in remote.get("/").text
    assert "data-session-idle-seconds" not in kiosk.get("/").text  # nobody signed in

    body = {"username": USERS[P], "password": PASSWORD}
    for client in (kiosk, remote):
        assert client.post("/api/session", json=body).status_code == 200
    page = kiosk.get("/")
    assert 'data-kiosk-idle-seconds="30"' in page.text
    assert 'data-session-idle-seconds="900"' in page.text
    assert "data-logout" in page.text
    clock.now += 4 * 60
    assert kiosk.get("/api/session").json()["role"] == P
    clock.now += 60
    assert kiosk.get("/api/session").json()["role"] == ANONYMOUS, "kiosk sign-ins end sooner"
    assert remote.get("/api/session").json()["role"] == P


# -- change of password -------------------------------------------------------------------------


def password_form(
    token: str, current: str = PASSWORD, new: str = NEW_PASSWORD, **extra: str
) -> dict[str, str]:
    form = {"csrf_token": token, "current_password": current, "new_password": new}
    form["new_password_again"] = extra.get("again", new)
    return form


@pytest.mark.parametrize("role", ["host", "police", "admin", "family"])
def test_every_role_can_open_the_change_password_page(web_app: App, role: str) -> None:
    page = web_app.session_client(role).get("/account/password")
    assert page.status_code == 200
    assert 'name="current_password"' in page.text and 'name="new_password_again"' in page.text
    assert 'href="/account/password"' in page.text


def test_change_password_page(web_app: App) -> None:
    accounts = web_app.parts.context.accounts
    other = accounts.start_session(accounts.get_user(USERS[H]))  # type: ignore[arg-type]
    client = web_app.session_client(H)
    token = form_token(client.get("/account/password").text)

    def submit(form: dict[str, str]) -> Any:
        return client.post("/account/password", data=form, headers={"X-CSRF-Token": ""})

    assert submit({**password_form(token), "csrf_token": "forged"}).status_code == 403
    mismatch = submit(password_form(token, again="something-else-9"))
    assert mismatch.status_code == 400 and "两次输入的新密码不一致" in mismatch.text
    weak = submit(password_form(token, new="short", again="short"))
    assert weak.status_code == 400 and "密码至少需要 10 个字符" in weak.text
    wrong = submit(password_form(token, current="not-my-password"))
    assert wrong.status_code == 400 and "当前密码不正确" in wrong.text
    done = submit(password_form(token))
    assert (done.status_code, done.headers["location"]) == (303, "/account/password?done=1")
    assert "密码已修改" in client.get("/account/password?done=1").text

    assert client.get("/api/session").json()["username"] == USERS[H], "this session stays"
    assert accounts.session(other.token) is None, "the other sessions end"
    fresh = TestClient(web_app.asgi, client=REMOTE)
    assert (
        fresh.post("/api/session", json={"username": USERS[H], "password": PASSWORD}).status_code
        == 401
    )
    assert fresh.post(
        "/api/session", json={"username": USERS[H], "password": NEW_PASSWORD}
    ).is_success
    entries = web_app.parts.context.audit.entries(actor=USERS[H])
    actions = [e.action for e in entries]
    assert "user.password" in actions and "user.password_refused" in actions
    assert NEW_PASSWORD not in repr(entries) and PASSWORD not in repr(entries)


def test_change_password_needs_a_session(web_app: App) -> None:
    anonymous = web_app.session_client(ANONYMOUS)
    response = anonymous.get("/account/password")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert SESSION_COOKIE not in anonymous.cookies
