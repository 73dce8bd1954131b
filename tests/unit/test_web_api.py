"""The JSON API: its error shape, masking and auditing, and a fuzz run that must see no 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from tests.fixtures.browser import App, guest_input, resident_id
from web_ui.security import ANONYMOUS, CSRF_HEADER, SESSION_COOKIE

H, P, AD = "host", "police", "admin"


def guest_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = guest_input().model_dump(mode="json")
    body.update(
        name="王小明",
        id_number=resident_id("19950815", "330106", "047"),
        birth_date="1995-08-15",
        phone="+8613700001111",
    )
    body.update(overrides)
    return body


def test_check_in_answers_masked_and_reports(web_app: App) -> None:
    host = web_app.session_client(H)
    response = host.post(f"/api/homestays/{web_app.homestay_id}/guests", json=guest_json())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["masked"] is True
    assert body["name"] == "王*明"
    assert "*" in body["id_number"] and body["id_number"] != guest_json()["id_number"]
    assert [kind for kind, _ in web_app.parts.reports][-1] == "registration"


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"id_number": resident_id()[:-1] + "Y"}, "id_number", "id_number.format"),
        ({"phone": "12345"}, "phone", "phone.format"),
        ({"sex": "unknown"}, "sex", "sex.invalid"),
        ({"birth_date": "1995-02-30"}, "birth_date", "birth_date.format"),
        (
            {"companions": [{"name": "王小红", "id_type": "resident_id",
                             "id_number": "330106200001010000", "birth_date": "2000-01-01"}]},
            "companions[0].id_number",
            None,
        ),
    ],
)  # fmt: skip
def test_check_in_refusal_names_field_and_code(
    web_app: App, overrides: dict[str, Any], field: str, code: str | None
) -> None:
    host = web_app.session_client(H)
    response = host.post(
        f"/api/homestays/{web_app.homestay_id}/guests", json=guest_json(**overrides)
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    if code:
        assert error["code"] == code
    assert error["message"]


def test_wrong_check_digit_is_explained(web_app: App) -> None:
    good = guest_json()["id_number"]
    bad = good[:-1] + ("1" if good[-1] != "1" else "2")
    host = web_app.session_client(H)
    host.cookies.set("vk_lang", "en")
    response = host.post(f"/api/homestays/{web_app.homestay_id}/guests", json=guest_json(
        id_number=bad))  # fmt: skip
    assert response.status_code == 422
    assert response.json()["error"] == {
        "field": "id_number",
        "code": "id_number.check_digit",
        "message": "ID number: The document number is mistyped: its check digit does not match.",
    }


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"name": 5}', b"\xff\xfe", b'{"companions": "many"}', b"null"],
)
def test_malformed_bodies_are_4xx(web_app: App, body: bytes) -> None:
    host = web_app.session_client(H)
    response = host.post(
        f"/api/homestays/{web_app.homestay_id}/guests",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert set(response.json()["error"]) == {"field", "code", "message"}


def test_unknown_ids_are_404_with_the_error_shape(web_app: App) -> None:
    police = web_app.session_client(P)
    response = police.get("/api/guests/424242")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert police.get("/api/guests/99999999999999999999999").status_code == 422
    host = web_app.session_client(H)
    assert host.post("/api/guests/424242/checkout").status_code == 404


def test_police_read_masked_lists_and_full_audited_detail(web_app: App) -> None:
    police = web_app.session_client(P)
    listed = police.get("/api/guests").json()
    assert [g["masked"] for g in listed] == [True]
    assert [(g["birth_date"], g["age_band"]) for g in listed] == [(None, "30-39")]
    found = police.post("/api/guests/search", json={"id_number": resident_id()})
    assert [g["id"] for g in found.json()] == [web_app.guest_id]
    full = police.get(f"/api/guests/{web_app.guest_id}").json()
    assert full["masked"] is False and full["id_number"] == resident_id()
    assert (full["birth_date"], full["age_band"]) == ("1990-03-07", "30-39")
    audit = police.get("/api/audit", params={"action": "guest.view_unmasked"}).json()
    assert [(e["actor"], e["subject"]) for e in audit] == [
        ("li.police", f"guest:{web_app.guest_id}")
    ]
    csv_text = police.get("/api/guests.csv").text
    assert resident_id() in csv_text
    assert police.get("/api/audit", params={"action": "guest.export"}).json()


def test_host_sees_only_own_guests_and_checks_out(web_app: App) -> None:
    host = web_app.session_client(H)
    mine = host.get("/api/guests", params={"active_only": "true"}).json()
    assert [g["id"] for g in mine] == [web_app.guest_id]
    done = host.post(f"/api/guests/{web_app.guest_id}/checkout")
    assert done.status_code == 200 and done.json()["checked_out_at"]
    again = host.post(f"/api/guests/{web_app.guest_id}/checkout")
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "guest.already_checked_out"


def test_admin_creates_homestays_only_for_host_accounts(web_app: App) -> None:
    admin = web_app.session_client(AD)
    body = {"name": "云上", "address": "竹林村 7 组", "rooms": 2, "host_username": "li.police"}
    refused = admin.post("/api/homestays", json=body)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "host_username"
    rooms = admin.post("/api/homestays", json={**body, "host_username": "wang.host", "rooms": 0})
    assert rooms.json()["error"]["code"] == "rooms.range"
    created = admin.post("/api/homestays", json={**body, "host_username": "wang.host"})
    assert created.status_code == 201


# -- fuzzing: every operation of the OpenAPI document, as a role allowed to use it ---------------


_ROLE_PREFERENCE = (H, P, AD, "family", "staff", ANONYMOUS)


def _fuzz(web_app: App, operation: Any, role: str, failures: list[str]) -> None:
    cases = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | (
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    )

    @settings(
        max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=cases)
    def call(case: Any) -> None:
        # A fresh session per call: a fuzzed sign-out must not end the next call's session.
        client = web_app.session_client(role)
        session = client.cookies.get(SESSION_COOKIE)
        cookies = {SESSION_COOKIE: session} if session else {}
        response = case.call(headers={CSRF_HEADER: client.headers[CSRF_HEADER]}, cookies=cookies)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
        assert response.status_code < 500, response.text[:300]

    call()


def test_fuzzed_api_never_answers_5xx(web_app: App) -> None:
    """Schemathesis cases (valid and invalid) for every operation, sent by an allowed role."""
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", web_app.asgi)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    failures: list[str] = []
    for operation in operations:
        allowed = web_app.asgi.state.access_table[(operation.method.upper(), operation.path)]
        role = next(r for r in _ROLE_PREFERENCE if r in allowed)
        _fuzz(web_app, operation, role, failures)
    assert failures == []


def test_fuzzed_registration_form_never_answers_5xx(web_app: App) -> None:
    """The page form takes any text in any field without a server error."""
    from hypothesis import strategies as st

    from web_ui.village.homestay.forms import COMPANION_FIELDS, GUEST_FIELDS

    names = [*GUEST_FIELDS, "companion_count", "action"]
    names += [f"companions-{i}-{name}" for i in range(2) for name in COMPANION_FIELDS]
    host = web_app.session_client(H)
    url = f"/host/homestays/{web_app.homestay_id}/register"
    token = host.headers[CSRF_HEADER]

    @settings(max_examples=60, deadline=None, database=None)
    @given(form=st.dictionaries(st.sampled_from(names), st.text(max_size=30), max_size=12))
    def post(form: dict[str, str]) -> None:
        response = host.post(url, data={**form, "csrf_token": token})
        assert response.status_code < 500, (form, response.text[:300])

    post()
