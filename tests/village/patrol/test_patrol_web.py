"""The patrol pages and JSON twins through the real app: routes by the admin, a round by an
officer (minimum look time, snapshot from the camera's masked pictures), another officer
refused, records and report for police and admin, both catalogs complete."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent.config import CameraConfig
from agent.village.patrol import PatrolService, RoundStatus
from tests.fixtures.browser import StillCamera, WebParts, build_web_context, kiosk_config
from web_ui.app import create_app
from web_ui.i18n import LANGUAGE_COOKIE
from web_ui.security import CSRF_HEADER, SESSION_COOKIE

OFFICER, OTHER, ADMIN = "li.police", "wu.police", "zhao.admin"
RAW_KEY = re.compile(r"(?<![/\w])patrol\.[a-z_]+(\.[a-z_]+)?\b")


@dataclass
class Site:
    parts: WebParts
    asgi: FastAPI

    @property
    def patrol(self) -> PatrolService:
        return self.parts.context.service(PatrolService)

    def client(self, username: str, language: str = "zh-CN") -> TestClient:
        client = TestClient(self.asgi, follow_redirects=False)
        accounts = self.parts.context.accounts
        user = accounts.get_user(username)
        assert user is not None
        grant = accounts.start_session(user)
        client.cookies.set(SESSION_COOKIE, grant.token)
        client.cookies.set(LANGUAGE_COOKIE, language)
        client.headers[CSRF_HEADER] = grant.session.csrf_token
        return client


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    cameras = [
        CameraConfig(id="square", name="村口广场", source="sim://walker"),
        CameraConfig(id="yard", name="院子", source="sim://walker"),
    ]
    parts = build_web_context(
        tmp_path,
        {"square": StillCamera("square"), "yard": StillCamera("yard")},
        kiosk_config(tmp_path, cameras),
    )
    for username, role in ((OFFICER, "police"), (OTHER, "police"), (ADMIN, "admin")):
        parts.add_user(username, role)
    yield Site(parts, create_app(parts.context))
    parts.context.database.close()


def route_form(**fields: str) -> dict[str, str]:
    return {
        "name": "夜间必巡线", "point_1": "yard", "point_2": "square",
        "min_look_seconds": "30", "schedule": "22:00-23:00, 01:00-02:00", **fields,
    }  # fmt: skip


def test_admin_defines_routes_and_a_bad_form_keeps_what_was_typed(site: Site) -> None:
    admin = site.client(ADMIN)
    page = admin.get("/admin/patrol/routes")
    assert page.status_code == 200
    assert 'name="point_2"' in page.text and "院子 (yard)" in page.text

    unknown = admin.post("/admin/patrol/routes", data=route_form(point_2="nowhere"))
    assert unknown.status_code == 422
    assert "所选摄像头不是本服务亭的摄像头" in unknown.text
    assert 'value="夜间必巡线"' in unknown.text

    overlapping = route_form(schedule="22:00-23:00,22:30-23:30")
    overlap = admin.post("/admin/patrol/routes", data=overlapping)
    assert overlap.status_code == 422
    assert 'id="schedule-error"' in overlap.text and "时段之间有重叠" in overlap.text
    assert site.patrol.list_routes() == []

    made = admin.post("/admin/patrol/routes", data=route_form())
    assert made.status_code == 303
    (route,) = site.patrol.list_routes()
    assert (route.cameras, route.schedule_text) == (("yard", "square"), "01:00-02:00, 22:00-23:00")

    changed = admin.post(f"/admin/patrol/routes/{route.id}", data=route_form(point_2=""))
    assert changed.status_code == 303
    assert site.patrol.get_route(route.id).cameras == ("yard",)


def test_the_api_refuses_a_route_with_an_unknown_camera(site: Site) -> None:
    admin = site.client(ADMIN)
    body = {"name": "白天", "cameras": ["square", "ghost"], "min_look_seconds": 5}
    refused = admin.post("/api/patrol/routes", json=body)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "cameras"
    assert refused.json()["error"]["code"] == "patrol.cameras.unknown"
    made = admin.post("/api/patrol/routes", json={**body, "cameras": ["square"]})
    assert made.status_code == 201
    assert made.json()["cameras"] == ["square"]
    police = site.client(OFFICER)
    assert police.post("/api/patrol/routes", json=body).status_code == 403


def test_an_officer_walks_and_nobody_else_writes_into_the_round(site: Site) -> None:
    route = site.patrol.create_route(
        name="夜间必巡线", cameras=["square", "yard"], min_look_seconds=60, schedule="",
        actor=ADMIN,
    )  # fmt: skip
    officer = site.client(OFFICER)
    started = officer.post("/police/patrol/rounds", data={"route_id": str(route.id)})
    assert started.status_code == 303
    round_path = started.headers["location"]
    round_id = int(round_path.rsplit("/", 1)[1])
    page = officer.get(round_path)
    assert page.status_code == 200
    assert 'src="/cameras/square/snapshot.jpg"' in page.text
    assert re.search(r"data-patrol-next[^>]*disabled", page.text), "next waits for the look"
    assert '<script src="/static/patrol.js"' in page.text

    # The server refuses "next" before the minimum look time, and keeps the note.
    early = officer.post(f"{round_path}/points/0", data={"action": "next", "note": "路灯不亮"})
    assert early.status_code == 422
    assert "请至少查看该摄像头满最短查看时间后再继续" in early.text
    assert "路灯不亮</textarea>" in early.text
    api_early = officer.post(f"/api/patrol/rounds/{round_id}/points/0/complete", json={})
    assert api_early.json()["error"]["code"] == "patrol.point.too_soon"

    # The snapshot is the camera's masked still, the same the snapshot page serves.
    saved = officer.post(f"{round_path}/points/0", data={"action": "snapshot", "note": "路灯不亮"})
    assert saved.status_code == 303
    walked = site.patrol.get_round(round_id)
    assert walked.points[0].note == "路灯不亮"
    (snapshot,) = walked.points[0].snapshots
    picture = officer.get(f"/police/patrol/snapshots/{snapshot.id}.jpg")
    assert picture.headers["content-type"] == "image/jpeg"
    live_still = site.parts.context.pictures["square"].latest()
    assert live_still is not None and picture.content == live_still.jpeg

    # Another officer may read the round but not write into it.
    other = site.client(OTHER)
    assert other.get(round_path).status_code == 200
    for path, data in (
        (f"{round_path}/points/0", {"action": "snapshot", "note": "x"}),
        (f"{round_path}/end", {}),
    ):
        assert other.post(path, data=data).status_code == 403
    refused = other.post(f"/api/patrol/rounds/{round_id}/end")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "patrol.round.not_yours"
    assert "data-patrol-walk" not in other.get(round_path).text

    ended = officer.post(f"{round_path}/end")
    assert ended.status_code == 303
    assert site.patrol.get_round(round_id).status is RoundStatus.PARTIAL
    (payload,) = [payload for kind, payload in site.parts.reports if kind == "patrol_round"]
    assert payload["notes"] == 1 and "路灯" not in repr(payload)


def test_records_report_and_navigation_for_police_and_admin(site: Site) -> None:
    route = site.patrol.create_route(
        name="夜间必巡线", cameras=["square"], min_look_seconds=5, schedule="", actor=ADMIN
    )
    started = site.patrol.start_round(route.id, actor=OFFICER)
    site.patrol.end_round(started.id, actor=OFFICER)
    for username, language in ((OFFICER, "zh-CN"), (ADMIN, "en")):
        client = site.client(username, language)
        records = client.get("/police/patrol/rounds?status=partial")
        assert records.status_code == 200
        assert f'data-round="{started.id}"' in records.text
        assert 'href="/police/patrol/rounds"' in records.text, "menu entry"
        assert ('href="/admin/patrol/routes"' in records.text) is (username == ADMIN)
        detail = client.get(f"/police/patrol/rounds/{started.id}")
        report = client.get("/police/patrol/report")
        for page in (records, detail, report, client.get("/police/patrol/rounds")):
            assert page.status_code == 200
            assert not RAW_KEY.search(page.text), RAW_KEY.search(page.text)
        assert "data-partial>1<" in report.text
        twin = client.get("/api/patrol/report").json()
        assert [(r["officer"], r["partial"]) for r in twin["rows"]] == [(OFFICER, 1)]
        listed = client.get("/api/patrol/rounds", params={"officer": OFFICER}).json()
        assert [r["id"] for r in listed] == [started.id]
    admin = site.client(ADMIN, "en")
    admin_routes = admin.get("/admin/patrol/routes")
    assert not RAW_KEY.search(admin_routes.text)
    bad_filter = admin.get("/police/patrol/rounds?date_from=yesterday")
    assert bad_filter.status_code == 422
    assert "A filter value could not be read." in bad_filter.text
    assert f'data-round="{started.id}"' in bad_filter.text, "the records, unfiltered"
    bad_week = admin.get("/police/patrol/report?week=soon")
    assert bad_week.status_code == 422
    assert "The week must look like 2026-W49." in bad_week.text
    assert not RAW_KEY.search(bad_filter.text + bad_week.text)
    assert admin.get("/api/patrol/report?week=soon").json()["error"]["code"] == (
        "patrol.week.invalid"
    )
