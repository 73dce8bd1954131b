"""Feedback pages and their JSON twins through the real app: bad input is a clear 4xx."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.fixtures.browser import App, form_token

KIOSK_SCREEN = ("127.0.0.1", 51000)


def kiosk(web_app: App) -> TestClient:
    client = TestClient(web_app.asgi, follow_redirects=False, client=KIOSK_SCREEN)
    client.get("/feedback")
    return client


def _code(html: str) -> str:
    match = re.search(r"data-feedback-code>([A-Z2-9]{6})<", html)
    assert match, html[:400]
    return match.group(1)


def test_only_the_kiosk_screen_or_a_family_phone_gets_the_form(web_app: App) -> None:
    assert web_app.client.get("/feedback").status_code == 404
    assert web_app.session_client("police").get("/feedback/reply").status_code == 404
    body = {"category": "praise", "text": "谢谢"}
    assert web_app.session_client("anonymous").post("/api/feedback", json=body).status_code == 404
    family = web_app.session_client("family")
    assert family.get("/feedback").status_code == 200
    left = family.post("/api/feedback", json=body)
    assert left.status_code == 201 and re.fullmatch(r"[A-Z2-9]{6}", left.json()["code"])


def test_bad_input_is_a_clear_message_and_keeps_what_was_typed(web_app: App) -> None:
    client = kiosk(web_app)
    token = form_token(client.get("/feedback").text)
    base = {"csrf_token": token, "category": "complaint", "text": "垃圾没人收", "anonymous": "1"}
    empty = client.post("/feedback", data={**base, "text": " "})
    assert empty.status_code == 422 and "请填写意见内容" in empty.text
    long = client.post("/feedback", data={**base, "text": "长" * 10_000})
    assert long.status_code == 422 and "最多 1000 个字" in long.text
    forged = client.post("/feedback", data={**base, "category": "closed"})
    assert forged.status_code == 422 and "没有这种意见类别" in forged.text
    unnamed = client.post("/feedback", data={**base, "anonymous": "0", "phone": "13912345678"})
    assert unnamed.status_code == 422 and "署名留言请填写姓名" in unnamed.text
    assert "垃圾没人收" in unnamed.text and "13912345678" in unnamed.text
    bad_code = client.post("/feedback/reply", data={"csrf_token": token, "code": "0O1I"})
    assert bad_code.status_code == 422 and "6 位字母和数字" in bad_code.text
    api = client.post(
        "/api/feedback/lookup", json={"code": "ZZZZZZ"}, headers={"X-CSRF-Token": token}
    )
    assert api.status_code == 422 and api.json()["error"]["code"] == "feedback.code_unknown"
    assert web_app.session_client("staff").get("/api/feedback").json() == []


def test_answered_by_staff_and_read_back_with_the_code(web_app: App) -> None:
    client = kiosk(web_app)
    token = form_token(client.get("/feedback").text)
    left = client.post(
        "/feedback",
        data={"csrf_token": token, "category": "help", "text": "家里老人需要帮忙买药",
              "anonymous": "0", "name": "王五", "phone": "13912345678"},
    )  # fmt: skip
    assert left.status_code == 200
    code = _code(left.text)
    staff = web_app.session_client("staff")
    [item] = staff.get("/api/feedback?state=new&category=help").json()
    assert item["phone"] == "139****5678" and item["name"] == "王五"
    assert staff.get("/api/feedback?state=forged").status_code == 422
    empty = staff.post(f"/staff/feedback/{item['id']}/reply", data={"reply": "  "})
    assert empty.status_code == 422 and "请填写回复内容" in empty.text
    long = staff.post(f"/api/feedback/{item['id']}/reply", json={"reply": "复" * 10_000})
    assert long.status_code == 422 and long.json()["error"]["code"] == "feedback.reply_too_long"
    sent = staff.post(f"/staff/feedback/{item['id']}/reply", data={"reply": "村医明天上门。"})
    assert sent.status_code == 303
    assert staff.get(f"/staff/feedback/{item['id']}").text.count("村医明天上门。") >= 1
    assert staff.post("/staff/feedback/999999/reply", data={"reply": "x"}).status_code == 404
    read = client.post("/feedback/reply", data={"csrf_token": token, "code": code.lower()})
    assert read.status_code == 200 and "村医明天上门。" in read.text
    assert "王五" not in read.text and "139" not in read.text
    assert web_app.session_client("police").get("/staff/feedback").status_code == 403


def test_wrong_codes_are_throttled_per_client(web_app: App) -> None:
    client = kiosk(web_app)
    token = form_token(client.get("/feedback/reply").text)
    statuses = [
        client.post("/feedback/reply", data={"csrf_token": token, "code": "ZZZZZZ"}).status_code
        for _ in range(11)
    ]
    assert statuses[:9] == [422] * 9 and statuses[10] == 429
    paused = client.post("/feedback/reply", data={"csrf_token": token, "code": "ZZZZZZ"})
    assert paused.status_code == 429 and int(paused.headers["Retry-After"]) > 0
    assert "输错查询码的次数太多" in paused.text
    family = web_app.session_client("family")
    assert family.post("/api/feedback/lookup", json={"code": "ZZZZZZ"}).status_code == 422
