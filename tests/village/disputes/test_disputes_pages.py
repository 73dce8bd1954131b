"""Dispute pages and their JSON twins through the real app: bad input is a clear 4xx."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.fixtures.browser import App, form_token
from web_ui.security import CSRF_HEADER

KIOSK_SCREEN = ("127.0.0.1", 51000)


def kiosk(web_app: App) -> TestClient:
    client = TestClient(web_app.asgi, follow_redirects=False, client=KIOSK_SCREEN)
    client.get("/kiosk/disputes")
    return client


def _file(client: TestClient, **fields: str) -> object:
    token = form_token(client.get("/kiosk/disputes").text)
    data = {
        "csrf_token": token,
        "category": "land",
        "description": "山林界址不清，两家争执。",
        "party-0-name": "王五",
        "party-0-phone": "139 1234 5678",
        "party-1-name": "赵六",
    }
    data.update(fields)
    return client.post("/kiosk/disputes", data=data)


def _reference(html: str) -> str:
    match = re.search(r"data-reference>(JF-[A-Z2-9]{6})<", html)
    assert match, html[:500]
    return match.group(1)


def _dispute_id(web_app: App, reference: str) -> int:
    staff = web_app.session_client("staff")
    for item in staff.get("/api/disputes").json():
        if item["reference"] == reference:
            return int(item["id"])
    raise AssertionError(reference)


def test_the_kiosk_form_is_only_on_the_kiosk_screen(web_app: App) -> None:
    assert web_app.client.get("/kiosk/disputes").status_code == 404
    anonymous = web_app.session_client("anonymous")
    assert anonymous.post("/api/kiosk/disputes", json={}).status_code in {404, 422}
    body = {"category": "debt", "description": "借款未还", "parties": [{"name": "钱七"}]}
    assert anonymous.post("/api/kiosk/disputes", json=body).status_code == 404
    page = kiosk(web_app).get("/kiosk/disputes")
    assert page.status_code == 200 and "调解申请" in page.text


def test_bad_kiosk_input_is_a_clear_message_and_keeps_what_was_typed(web_app: App) -> None:
    client = kiosk(web_app)
    empty = _file(client, description="   ")
    assert empty.status_code == 422
    assert "请填写事情经过" in empty.text and "王五" in empty.text
    long = _file(client, description="长" * 10_000)
    assert long.status_code == 422 and "最多 2000 个字" in long.text
    forged = _file(client, category="<script>")
    assert forged.status_code == 422 and "没有这种纠纷类型" in forged.text
    phone = _file(client, **{"party-1-phone": "12"})
    assert phone.status_code == 422 and "电话号码格式不对" in phone.text
    assert 'id="party-1-phone"' in phone.text and 'aria-invalid="true"' in phone.text
    assert web_app.session_client("staff").get("/api/disputes").json() == []


def test_filed_taken_and_changed_by_its_mediator_only(web_app: App) -> None:
    web_app.parts.add_user("wu.staff", "staff")
    filed = _file(kiosk(web_app))
    assert filed.status_code == 200
    reference = _reference(filed.text)
    dispute_id = _dispute_id(web_app, reference)

    staff = web_app.session_client("staff")
    page = staff.get(f"/disputes/{dispute_id}")
    assert "王五" in page.text and "139****5678" in page.text and "13912345678" not in page.text
    taken = staff.post(f"/disputes/{dispute_id}/state", data={"state": "mediating"})
    assert taken.status_code == 303

    # Another staff member: refused with the reason, never a 500.
    other = TestClient(web_app.asgi, follow_redirects=False)
    accounts = web_app.parts.context.accounts
    grant = accounts.start_session(accounts.get_user("wu.staff"))
    other.cookies.set("vk_session", grant.token)
    other.headers[CSRF_HEADER] = grant.session.csrf_token
    refused = other.post(f"/disputes/{dispute_id}/state", data={"state": "resolved"})
    assert refused.status_code == 403 and "只有受理这件纠纷的调解员" in refused.text
    api_refused = other.post(f"/api/disputes/{dispute_id}/state", json={"state": "resolved"})
    assert api_refused.status_code == 403
    assert api_refused.json()["error"]["code"] == "disputes.not_mediator"

    forged = staff.post(f"/disputes/{dispute_id}/state", data={"state": "closed_forever"})
    assert forged.status_code == 422 and "没有这种纠纷状态" in forged.text
    api_forged = staff.post(f"/api/disputes/{dispute_id}/state", json={"state": "done"})
    assert api_forged.status_code == 422
    assert api_forged.json()["error"]["code"] == "disputes.state_invalid"
    no_department = staff.post(f"/disputes/{dispute_id}/state", data={"state": "transferred"})
    assert no_department.status_code == 422 and "请填写部门名称" in no_department.text
    back = staff.post(f"/api/disputes/{dispute_id}/state", json={"state": "mediating"})
    assert back.status_code == 422
    assert back.json()["error"]["code"] == "disputes.transition_not_allowed"

    done = staff.post(f"/api/disputes/{dispute_id}/state", json={"state": "resolved"})
    assert done.status_code == 200 and done.json()["state"] == "resolved"
    again = staff.post(f"/disputes/{dispute_id}/state", data={"state": "judicial"})
    assert again.status_code == 422 and "已经办结" in again.text
    kinds = [kind for kind, _ in web_app.parts.reports if kind == "dispute"]
    assert len(kinds) == 3  # recorded, mediating, resolved

    # The police read it masked and get no state form.
    police = web_app.session_client("police")
    seen = police.get(f"/disputes/{dispute_id}")
    assert seen.status_code == 200
    assert "王*" in seen.text and "王五" not in seen.text and "data-state-form" not in seen.text
    assert (
        police.post(f"/disputes/{dispute_id}/state", data={"state": "judicial"}).status_code == 403
    )
    listed = police.get("/api/disputes").json()
    assert listed[0]["parties"][0] == {"name": "王*", "phone": "139****5678"}


def test_statistics_page_and_twin_refuse_a_reversed_range(web_app: App) -> None:
    police = web_app.session_client("police")
    page = police.get("/disputes/stats?date_from=2026-06-10&date_to=2026-06-01")
    assert page.status_code == 422 and "结束日期早于开始日期" in page.text
    bad = police.get("/disputes/stats?date_from=2026-13-40")
    assert bad.status_code == 422 and "日期格式不对" in bad.text
    twin = police.get("/api/disputes/stats?date_from=2026-06-10&date_to=2026-06-01")
    assert twin.status_code == 422 and twin.json()["error"]["code"] == "disputes.range_reversed"
    fine = police.get("/disputes/stats")
    assert fine.status_code == 200 and "化解率 = 化解成功的纠纷数" in fine.text
    body = police.get("/api/disputes/stats").json()
    assert body["resolution_rate"] is None and body["with_outcome"] == 0
    assert police.get("/api/disputes?state=forged").status_code == 422
    assert police.get("/disputes?category=forged").status_code == 400
    assert police.get("/disputes/999999").status_code == 404
