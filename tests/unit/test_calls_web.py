"""Calls through the app: who may place, answer, decline and hang up which call; the kiosk's
routes exist only for the kiosk's own screen; busy, missed lists and the pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.browser import form_token
from tests.fixtures.media_browser import CallParts, calls_context
from web_ui.app import create_app
from web_ui.security import CSRF_HEADER, SESSION_COOKIE

CHEN, LIN = "chen.family", "lin.family"
OFFER = {"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 x\r\n"}


class Kiosk:
    """One client for every party: the kiosk screen (127.0.0.1, the visitor's CSRF token) and
    family accounts (their session cookie and token per request). One client keeps one event
    loop for the call service's timers."""

    def __init__(self, call_parts: CallParts, client: TestClient) -> None:
        self.parts = call_parts
        self.client = client
        page = client.get("/kiosk/calls")
        assert page.status_code == 200, page.text
        self.kiosk_token = _meta_token(page.text)
        self.sessions: dict[str, tuple[str, str]] = {}
        accounts = call_parts.parts.context.accounts
        for username in (CHEN, LIN):
            account = accounts.get_user(username)
            assert account is not None
            grant = accounts.start_session(account)
            self.sessions[username] = (grant.token, grant.session.csrf_token)

    def kiosk(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {CSRF_HEADER: self.kiosk_token, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def family(self, username: str, method: str, path: str, **kwargs: Any) -> Any:
        token, csrf = self.sessions[username]
        self.client.cookies.set(SESSION_COOKIE, token)
        try:
            headers = {CSRF_HEADER: csrf, **kwargs.pop("headers", {})}
            return self.client.request(method, path, headers=headers, **kwargs)
        finally:
            self.client.cookies.delete(SESSION_COOKIE)

    def household(self, username: str) -> int:
        return self.parts.households[username].id


def _meta_token(html: str) -> str:
    marker = '<meta name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@pytest.fixture
def kiosk(tmp_path: Path) -> Iterator[Kiosk]:
    call_parts = calls_context(tmp_path)
    app = create_app(call_parts.parts.context)
    with TestClient(app, client=("127.0.0.1", 50000), follow_redirects=False) as client:
        yield Kiosk(call_parts, client)
        client.portal.call(call_parts.calls.close)  # type: ignore[union-attr]
    call_parts.parts.context.database.close()


def test_the_kiosk_side_exists_only_on_the_kiosk_screen(tmp_path: Path) -> None:
    call_parts = calls_context(tmp_path)
    client = TestClient(create_app(call_parts.parts.context), follow_redirects=False)
    for method, path in [
        ("GET", "/kiosk/calls"),
        ("GET", "/api/kiosk/calls"),
        ("GET", "/api/kiosk/calls/events"),
        ("POST", "/api/kiosk/calls"),
        ("POST", "/api/kiosk/calls/abcdefgh1234/answer"),
        ("POST", "/api/kiosk/calls/abcdefgh1234/hangup"),
    ]:
        response = client.request(method, path, json={"household_id": 1, "username": CHEN, **OFFER})
        assert response.status_code == 404, (method, path, response.status_code)
    assert call_parts.calls.live() == []
    assert 'href="/kiosk/calls"' not in client.get("/").text, "only the kiosk screen's menu"
    call_parts.parts.context.database.close()


def test_the_kiosk_screen_needs_its_pages_token_to_place_a_call(kiosk: Kiosk) -> None:
    body = {"household_id": kiosk.household(CHEN), "username": CHEN}
    refused = kiosk.client.post("/api/kiosk/calls", json=body)
    assert refused.status_code == 403
    assert kiosk.parts.calls.live() == []
    # A member of another household, or no member at all, is not someone to call.
    wrong = {"household_id": kiosk.household(LIN), "username": CHEN}
    assert kiosk.kiosk("POST", "/api/kiosk/calls", json=wrong).status_code == 404
    placed = kiosk.kiosk("POST", "/api/kiosk/calls", json=body)
    assert placed.status_code == 201, placed.text
    call = placed.json()["call"]
    assert call["caller"] == "kiosk" and call["family_user"] == CHEN
    assert call["state"] == "ringing" and call["household"]["name"] == "陈家"


def test_a_family_account_calls_and_answers_only_for_its_own_household(kiosk: Kiosk) -> None:
    # Another household's kiosk side: 403, nothing rings.
    other = kiosk.family(CHEN, "POST", "/api/calls", json={"household_id": kiosk.household(LIN)})
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "auth.forbidden"
    assert kiosk.parts.calls.live() == []

    # The kiosk calls lin: chen can neither answer nor decline it, lin can.
    placed = kiosk.kiosk(
        "POST", "/api/kiosk/calls", json={"household_id": kiosk.household(LIN), "username": LIN}
    )
    call_id = placed.json()["call"]["id"]
    for action in ("answer", "decline", "hangup"):
        response = kiosk.family(CHEN, "POST", f"/api/calls/{call_id}/{action}", json=OFFER)
        assert response.status_code == 403, (action, response.status_code)
    # The kiosk cannot answer the call it placed.
    assert kiosk.kiosk("POST", f"/api/kiosk/calls/{call_id}/answer", json=OFFER).status_code == 403
    listed = kiosk.family(LIN, "GET", "/api/calls").json()
    assert [c["id"] for c in listed["calls"]] == [call_id]
    assert kiosk.family(CHEN, "GET", "/api/calls").json()["calls"] == []
    declined = kiosk.family(LIN, "POST", f"/api/calls/{call_id}/decline")
    assert declined.status_code == 200
    assert declined.json()["call"]["reason"] == "declined"
    assert kiosk.parts.calls.live() == []


def test_an_unlinked_member_cannot_answer_a_call_that_rang_before(kiosk: Kiosk) -> None:
    placed = kiosk.kiosk(
        "POST", "/api/kiosk/calls", json={"household_id": kiosk.household(CHEN), "username": CHEN}
    )
    call_id = placed.json()["call"]["id"]
    kiosk.parts.parts.context.family.unlink(kiosk.household(CHEN), CHEN, actor="zhao.admin")
    answer = kiosk.family(CHEN, "POST", f"/api/calls/{call_id}/answer", json=OFFER)
    assert answer.status_code == 403
    # Ending one's own call needs no household.
    assert kiosk.family(CHEN, "POST", f"/api/calls/{call_id}/hangup").status_code == 200


def test_a_second_call_is_busy(kiosk: Kiosk) -> None:
    first = kiosk.family(CHEN, "POST", "/api/calls", json={"household_id": kiosk.household(CHEN)})
    assert first.status_code == 201
    second = kiosk.family(LIN, "POST", "/api/calls", json={"household_id": kiosk.household(LIN)})
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "call.busy"
    assert second.headers["Retry-After"]
    from_kiosk = kiosk.kiosk(
        "POST", "/api/kiosk/calls", json={"household_id": kiosk.household(LIN), "username": LIN}
    )
    assert from_kiosk.status_code == 409
    # Answering with a malformed offer is a 4xx, and the call is then over (failed).
    call_id = first.json()["call"]["id"]
    bad = kiosk.kiosk("POST", f"/api/kiosk/calls/{call_id}/answer", json={"sdp": "hello"})
    assert bad.status_code == 422
    assert kiosk.parts.calls.live() == []
    again = kiosk.kiosk("POST", f"/api/kiosk/calls/{call_id}/answer", json=OFFER)
    assert again.status_code == 404


def test_a_call_the_caller_gave_up_is_missed_at_the_kiosk_until_seen(kiosk: Kiosk) -> None:
    placed = kiosk.family(CHEN, "POST", "/api/calls", json={"household_id": kiosk.household(CHEN)})
    call_id = placed.json()["call"]["id"]
    assert kiosk.family(CHEN, "POST", f"/api/calls/{call_id}/hangup").status_code == 200
    state = kiosk.kiosk("GET", "/api/kiosk/calls").json()
    assert [c["id"] for c in state["missed"]] == [call_id]
    assert state["contacts"][0]["members"] in ([CHEN], [LIN])
    assert kiosk.family(CHEN, "GET", "/api/calls").json()["missed"] == []
    assert kiosk.kiosk("POST", "/api/kiosk/calls/missed/seen").json() == {"seen": 1}
    assert kiosk.kiosk("GET", "/api/kiosk/calls").json()["missed"] == []


def test_the_pages_and_the_event_stream_answer(kiosk: Kiosk) -> None:
    page = kiosk.kiosk("GET", "/kiosk/calls")
    assert "呼叫 chen.family" in page.text and "呼叫 lin.family" in page.text
    assert "/static/call.js" in page.text
    assert "data-kiosk-idle-seconds" not in page.text, "the call screen does not go home"
    phone = kiosk.family(CHEN, "GET", "/family/calls")
    assert phone.status_code == 200
    assert "陈家" in phone.text and "林家" not in phone.text
    assert form_token(phone.text) == kiosk.sessions[CHEN][1]
    home = kiosk.kiosk("GET", "/").text
    assert 'href="/kiosk/calls"' in home, "the kiosk screen's home has its call screen"
    assert 'href="/family/calls"' in phone.text
    # Only EventSource reads the stream; anything else would hold a connection open.
    assert kiosk.family(CHEN, "GET", "/api/calls/events").status_code == 406
    assert kiosk.kiosk("GET", "/api/kiosk/calls/events").status_code == 406
