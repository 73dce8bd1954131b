"""The live-video routes through the app: who may watch which camera, busy answers, sessions
that only their viewer can end, and the MJPEG fallback under the same rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection
from fastapi.testclient import TestClient

from agent.config import CameraConfig, RtcConfig
from agent.rtc.peers import PeerSessions
from agent.rtc.views import LiveViews
from tests.fixtures.browser import USERS, App, StillCamera, build_web_context, kiosk_config
from tests.fixtures.loops import run_in_own_loop
from tests.unit.test_rtc_views import _Source
from web_ui.app import create_app
from web_ui.security import CSRF_HEADER, SESSION_COOKIE

PIN = "135790"


def _offer() -> str:
    async def make() -> str:
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return run_in_own_loop(make)


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[App]:
    cameras = [CameraConfig(id=camera_id, source="sim://empty") for camera_id in ("square", "road")]
    config = kiosk_config(tmp_path, cameras).model_copy(
        update={"rtc": RtcConfig(max_viewers_per_camera=1, connect_timeout_seconds=60)}
    )
    parts = build_web_context(tmp_path, {c.id: StillCamera(c.id) for c in cameras}, config)
    for role, username in USERS.items():
        parts.add_user(username, role)
    parts.add_user("lin.family", "family")
    family = parts.context.family
    zhang = family.create_household("张家", PIN, ["square"], actor="zhao.admin")
    family.redeem(
        family.create_invite(zhang.id, PIN, address="127.0.0.1", actor="kiosk").code,
        USERS["family"],
        address="127.0.0.1",
    )
    lin = family.create_household("林家", PIN, ["road"], actor="zhao.admin")
    family.redeem(
        family.create_invite(lin.id, PIN, address="127.0.0.1", actor="kiosk").code,
        "lin.family",
        address="127.0.0.1",
    )
    source = _Source()
    parts.context.live = LiveViews(
        PeerSessions(config.rtc),
        source,
        parts.context.audit,
        config.rtc,
        cameras=lambda: frozenset({"square", "road"}),
    )
    asgi = create_app(parts.context)
    with TestClient(asgi, follow_redirects=False) as client:
        yield App(parts, client, asgi, 0, 0)
    parts.context.database.close()


def _client(app: App, username: str) -> TestClient:
    client = TestClient(app.asgi, follow_redirects=False)
    accounts = app.parts.context.accounts
    account = accounts.get_user(username)
    assert account is not None
    grant = accounts.start_session(account)
    client.cookies.set(SESSION_COOKIE, grant.token)
    client.headers[CSRF_HEADER] = grant.session.csrf_token
    return client


def _live_audit(app: App) -> list[tuple[str, str, str]]:
    return [
        (e.actor, e.action, e.subject)
        for e in app.parts.context.audit.entries(limit=200)
        if e.action.startswith("camera.live")
    ]


def test_a_family_account_watches_only_its_households_cameras(live_app: App) -> None:
    family = _client(live_app, USERS["family"])
    with family:
        refused = family.post("/api/live/road/offer", json={"sdp": _offer(), "tier": "low"})
        assert refused.status_code == 403
        assert not _live_audit(live_app), "a refused view leaves no trace of watching"
        answered = family.post("/api/live/square/offer", json={"sdp": _offer(), "tier": "low"})
        assert answered.status_code == 201, answered.text
        body = answered.json()
        assert body["type"] == "answer" and "H264" in body["sdp"]
        assert body["session"]
        assert family.get("/live/road/mjpeg").status_code == 403
    assert (USERS["family"], "camera.live", "camera:square") in _live_audit(live_app)


def test_busy_is_a_clear_409_and_sessions_end_only_by_their_viewer(live_app: App) -> None:
    police, admin = _client(live_app, USERS["police"]), _client(live_app, USERS["admin"])
    with police, admin:
        first = police.post("/api/live/road/offer", json={"sdp": _offer()})
        assert first.status_code == 201
        busy = admin.post("/api/live/road/offer", json={"sdp": _offer()})
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "live.busy"
        assert busy.headers["retry-after"]
        assert admin.get("/live/road/mjpeg").status_code == 409
        session = first.json()["session"]
        assert admin.delete(f"/api/live/sessions/{session}").status_code == 404
        assert police.delete(f"/api/live/sessions/{session}").status_code == 204
        assert police.delete(f"/api/live/sessions/{session}").status_code == 404
        again = admin.post("/api/live/road/offer", json={"sdp": _offer()})
        assert again.status_code == 201


def test_bad_offers_unknown_cameras_and_tiers_are_4xx(live_app: App) -> None:
    police = _client(live_app, USERS["police"])
    with police:
        for body, status in (
            ({"sdp": "not sdp"}, 422),
            ({"sdp": _offer(), "type": "answer"}, 422),
            ({"sdp": _offer(), "tier": "ultra"}, 422),
            ({"sdp": _offer(), "tier": "../x"}, 422),
            ({}, 422),
        ):
            response = police.post("/api/live/square/offer", json=body)
            assert response.status_code == status, (body, response.text)
            assert response.json()["error"]["code"]
        unknown = police.post("/api/live/nowhere/offer", json={"sdp": _offer()})
        assert unknown.status_code == 422
        assert unknown.json()["error"]["code"] == "live.camera_unknown"
    assert _live_audit(live_app) == []


def test_roles_without_live_video_are_refused(live_app: App) -> None:
    host = _client(live_app, USERS["host"])
    with host:
        assert host.post("/api/live/square/offer", json={"sdp": _offer()}).status_code == 403
        assert host.get("/police/patrol").status_code == 403
    anonymous = TestClient(live_app.asgi, follow_redirects=False)
    assert anonymous.post("/api/live/square/offer", json={"sdp": "v=0"}).status_code == 401


def test_the_mjpeg_fallback_refuses_other_websites(live_app: App) -> None:
    police = _client(live_app, USERS["police"])
    with police:
        refused = police.get("/live/square/mjpeg", headers={"sec-fetch-site": "cross-site"})
        assert refused.status_code == 403
    assert _live_audit(live_app) == []


def test_the_patrol_page_lists_cameras_with_players(live_app: App) -> None:
    police = _client(live_app, USERS["police"])
    with police:
        page = police.get("/police/patrol")
    assert page.status_code == 200
    assert 'data-live-camera="square"' in page.text and 'data-live-camera="road"' in page.text
    assert "data-live-config" in page.text and "/static/live.js" in page.text
