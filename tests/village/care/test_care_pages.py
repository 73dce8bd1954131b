"""Care pages and their JSON twins through the app: the kiosk check-in on the kiosk's screen
only, the carer's list, a guardian's own people only."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from agent.village.care import CareService, PersonInput
from agent.village.care.records import Person
from tests.fixtures.browser import USERS, App
from web_ui.security import CSRF_HEADER, SESSION_COOKIE

KIOSK_SCREEN = ("127.0.0.1", 51000)
PIN = "4826"
GUARDIAN, CARER = USERS["family"], USERS["staff"]


def care_of(web_app: App) -> CareService:
    return web_app.parts.context.service(CareService)


@pytest.fixture
def granny(web_app: App) -> Person:
    return care_of(web_app).register(
        PersonInput("王奶奶", "elder", GUARDIAN, CARER, PIN, deadline="23:59"), actor=CARER
    )


def kiosk_client(web_app: App) -> TestClient:
    """The kiosk's own touchscreen: a browser on the same machine, over loopback."""
    client = TestClient(web_app.asgi, follow_redirects=False, client=KIOSK_SCREEN)
    client.get("/login")
    token = client.cookies.get("vk_csrf")
    assert token
    client.headers[CSRF_HEADER] = token
    return client


def signed_in(web_app: App, username: str, role: str) -> TestClient:
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


def test_the_kiosk_check_in_exists_only_on_the_kiosks_screen(web_app: App, granny: Person) -> None:
    elsewhere = web_app.session_client("anonymous")
    assert elsewhere.get("/kiosk/care").status_code == 404
    assert elsewhere.get(f"/kiosk/care/{granny.id}").status_code == 404
    assert elsewhere.post(f"/kiosk/care/{granny.id}/checkin", data={"pin": PIN}).status_code == 404
    refused = elsewhere.post(f"/api/kiosk/care/{granny.id}/checkin", json={"pin": PIN})
    assert refused.status_code == 404
    assert care_of(web_app).history(granny.id).check_ins == ()

    kiosk = kiosk_client(web_app)
    tiles = kiosk.get("/kiosk/care")
    assert tiles.status_code == 200
    assert f'href="/kiosk/care/{granny.id}"' in tiles.text and "王奶奶" in tiles.text
    assert kiosk.get("/kiosk/care/9999").status_code == 404
    assert kiosk.get("/api/kiosk/care").json() == [
        {"id": granny.id, "name": "王奶奶", "photo_url": None}
    ]


def test_a_kiosk_check_in_with_a_wrong_then_right_pin(web_app: App, granny: Person) -> None:
    kiosk = kiosk_client(web_app)
    wrong = kiosk.post(f"/kiosk/care/{granny.id}/checkin", data={"pin": "1357"})
    assert wrong.status_code == 422
    assert "密码不对" in wrong.text
    done = kiosk.post(f"/kiosk/care/{granny.id}/checkin", data={"pin": PIN})
    assert done.status_code == 200
    assert "王奶奶，今天已打卡" in done.text
    (check_in,) = care_of(web_app).history(granny.id).check_ins
    assert check_in.source.value == "kiosk"
    twin = kiosk.post(f"/api/kiosk/care/{granny.id}/checkin", json={"pin": PIN})
    assert twin.status_code == 200 and twin.json()["source"] == "kiosk"


def test_the_kiosk_pauses_after_wrong_pins(web_app: App, granny: Person) -> None:
    kiosk = kiosk_client(web_app)
    for _ in range(4):
        kiosk.post(f"/kiosk/care/{granny.id}/checkin", data={"pin": "1357"})
    paused = kiosk.post(f"/kiosk/care/{granny.id}/checkin", data={"pin": "1357"})
    assert paused.status_code == 429
    assert int(paused.headers["Retry-After"]) > 0
    again = kiosk.post(f"/api/kiosk/care/{granny.id}/checkin", json={"pin": PIN})
    assert again.status_code == 429
    assert again.json()["error"]["code"] == "care.pin_paused"
    assert care_of(web_app).history(granny.id).check_ins == ()


def test_staff_register_a_person_and_a_bad_form_keeps_what_was_typed(web_app: App) -> None:
    staff = web_app.session_client("staff")
    form = {
        "name": "小明",
        "kind": "child",
        "guardian": GUARDIAN,
        "carer": CARER,
        "deadline": "17:30",
        "pin": "9371",
        "pin_again": "9372",
    }
    refused = staff.post("/care/people", data=form)
    assert refused.status_code == 422
    assert "两次输入的密码不一样" in refused.text
    assert 'value="小明"' in refused.text and 'value="17:30"' in refused.text
    assert care_of(web_app).people() == []

    made = staff.post("/care/people", data={**form, "pin_again": "9371"})
    assert made.status_code == 303
    match = re.fullmatch(r"/care/people/(\d+)\?done=registered", made.headers["location"])
    assert match
    page = staff.get(f"/care/people/{match.group(1)}")
    assert page.status_code == 200 and "小明" in page.text and "17:30" in page.text

    bad = staff.post(
        "/api/care/people",
        json={"name": "小红", "kind": "child", "guardian": CARER, "carer": CARER, "pin": "9371"},
    )
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert (error["field"], error["code"]) == ("guardian", "care.guardian_invalid")
    assert error["message"] == "监护人（外出务工人员账号）：监护人必须是已有的家属账号。"


def test_the_carer_list_shows_todays_state(web_app: App, granny: Person) -> None:
    staff = web_app.session_client("staff")
    page = staff.get("/care")
    assert page.status_code == 200
    assert 'data-state="due"' in page.text
    (line,) = staff.get("/api/care/today").json()
    assert (line["person"]["name"], line["state"]) == ("王奶奶", "due")

    visit = staff.post(f"/care/people/{granny.id}/visit", data={"note": "身体硬朗"})
    assert visit.status_code == 303
    assert 'data-state="checked_in"' in staff.get("/care").text
    history = staff.get(f"/api/care/people/{granny.id}").json()
    assert history["check_ins"][0]["note"] == "身体硬朗"
    assert history["check_ins"][0]["source"] == "visit"
    empty = staff.post(f"/care/people/{granny.id}/visit", data={"note": ""})
    assert empty.status_code == 422 and "请写几句走访情况" in empty.text


def test_a_guardian_cannot_see_another_guardians_person(web_app: App, granny: Person) -> None:
    other = signed_in(web_app, "lin.family", "family")
    theirs = care_of(web_app).register(
        PersonInput("李爷爷", "elder", "lin.family", CARER, "5820"), actor=CARER
    )
    guardian = web_app.session_client("family")
    assert guardian.get(f"/family/care/{granny.id}").status_code == 200
    assert guardian.get(f"/family/care/{theirs.id}").status_code == 404
    assert guardian.get(f"/api/care/mine/{theirs.id}").status_code == 404
    listing = guardian.get("/family/care")
    assert "王奶奶" in listing.text and "李爷爷" not in listing.text
    assert [line["person"]["id"] for line in guardian.get("/api/care/mine").json()] == [granny.id]
    assert other.get(f"/family/care/{granny.id}").status_code == 404
    assert other.get(f"/api/care/mine/{theirs.id}").status_code == 200
