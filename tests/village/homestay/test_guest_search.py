"""Searches by name or ID number: POST, kept on the server, audited by blind index, limited per
account and hour; audited reads refused when another website asks; odd filter values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.browser import (
    USERS,
    App,
    build_web_context,
    form_token,
    guest_input,
    kiosk_config,
    resident_id,
)
from web_ui.app import create_app
from web_ui.village.homestay.searches import SearchStore

H, P = "host", "police"
SEARCH = "/police/registrations/search"


def make_app(tmp_path: Path, **web: object) -> App:
    parts = build_web_context(tmp_path, config=kiosk_config(tmp_path, **web))
    for role, username in USERS.items():
        parts.add_user(username, role)
    homestay = parts.context.homestays.create_homestay("竹林民宿", "竹林村 3 组", 5, USERS[H])
    guest = parts.context.homestays.check_in(homestay.id, guest_input(), actor=USERS[H])
    asgi = create_app(parts.context)
    return App(parts, TestClient(asgi, follow_redirects=False), asgi, homestay.id, guest.id)


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[App]:
    app = make_app(tmp_path, searches_per_hour=2)
    yield app
    app.parts.context.database.close()


def post_search(client: TestClient, **fields: str) -> object:
    token = form_token(client.get("/police/registrations").text)
    return client.post(SEARCH, data={"csrf_token": token, **fields})


def test_a_search_by_number_is_posted_kept_and_audited_by_blind_index(web_app: App) -> None:
    police = web_app.session_client(P)
    number = resident_id()
    posted = post_search(police, id_number=number, active_only="1")
    assert posted.status_code == 303  # type: ignore[attr-defined]
    location = posted.headers["location"]  # type: ignore[attr-defined]
    assert number not in location and "id_number" not in location
    (search_id,) = parse_qs(urlsplit(location).query)["search"]
    assert len(search_id) >= 20

    page = police.get(location)
    assert f'data-guest="{web_app.guest_id}"' in page.text
    assert "data-search-active" in page.text
    assert number not in page.text, "the number typed is not echoed back"
    assert f"/police/registrations.csv?search={search_id}" in page.text

    (entry,) = web_app.parts.context.audit.entries(action="guest.search")
    index = web_app.parts.context.homestays.query(id_number=number).id_number_index
    assert (entry.actor, entry.subject) == (USERS[P], f"id_number:{index}")
    assert entry.detail == "filters=id_number,active_only"
    # Showing the kept results again is not a new search.
    police.get(location)
    assert len(web_app.parts.context.audit.entries(action="guest.search")) == 1

    # The CSV of the kept search holds that search's records, and says which ones left.
    export = police.get(f"/police/registrations.csv?search={search_id}")
    assert export.status_code == 200 and number in export.text
    (exported,) = web_app.parts.context.audit.entries(action="guest.export")
    assert exported.detail == f"rows=1 filters=id_number,active_only ids={web_app.guest_id}"


def test_a_kept_search_belongs_to_its_officer_and_expires(web_app: App) -> None:
    web_app.parts.add_user("sun.police", P)
    police = web_app.session_client(P)
    location = post_search(police, name="张三丰").headers["location"]  # type: ignore[attr-defined]
    other = TestClient(web_app.asgi, follow_redirects=False)
    accounts = web_app.parts.context.accounts
    grant = accounts.start_session(accounts.get_user("sun.police"))
    other.cookies.set("vk_session", grant.token)
    page = other.get(location)
    assert 'data-guest="' not in page.text
    assert "这次查询已过期" in page.text
    search_id = parse_qs(urlsplit(location).query)["search"][0]
    assert other.get(f"/police/registrations.csv?search={search_id}").status_code == 400
    assert web_app.parts.context.audit.entries(action="guest.export") == []


def test_a_list_without_name_or_number_stays_a_plain_get(web_app: App) -> None:
    police = web_app.session_client(P)
    posted = post_search(police, date_from="2020-01-01", active_only="on", homestay_id="")
    location = posted.headers["location"]  # type: ignore[attr-defined]
    assert location == "/police/registrations?date_from=2020-01-01&active_only=1"
    assert f'data-guest="{web_app.guest_id}"' in police.get(location).text
    assert web_app.parts.context.audit.entries(action="guest.search") == []


def test_names_and_numbers_in_a_url_are_refused(web_app: App) -> None:
    police = web_app.session_client(P)
    for params in ({"id_number": resident_id()}, {"name": "张三丰"}):
        page = police.get("/police/registrations", params=params)
        assert page.status_code == 400 and 'data-guest="' not in page.text
        assert "请使用查询表单" in page.text
        assert police.get("/police/registrations.csv", params=params).status_code == 400
        api = police.get("/api/guests", params=params)
        assert api.status_code == 422 and api.json()["error"]["code"] == "search.in_url"
        assert police.get("/api/guests.csv", params=params).status_code == 422
    assert web_app.parts.context.audit.entries(action="guest.export") == []


def test_the_api_search_is_a_post_and_a_host_searches_only_their_own(web_app: App) -> None:
    web_app.parts.add_user("sun.host", H)
    other = web_app.parts.context.homestays.create_homestay("山居", "竹林村 9 组", 2, "sun.host")
    number = resident_id(serial="077")
    web_app.parts.context.homestays.check_in(
        other.id, guest_input(id_number=number, name="王五"), actor="sun.host"
    )
    host = web_app.session_client(H)
    assert host.post("/api/guests/search", json={"id_number": number}).json() == []
    mine = host.post("/api/guests/search", json={"id_number": resident_id()}).json()
    assert [g["id"] for g in mine] == [web_app.guest_id]
    police = web_app.session_client(P)
    assert len(police.post("/api/guests/search", json={"id_number": number}).json()) == 1
    actors = [e.actor for e in web_app.parts.context.audit.entries(action="guest.search")]
    assert actors == [USERS[P], USERS[H], USERS[H]]
    refused = police.post("/api/guests/search", json={"id_number": number, "sort": "x"})
    assert refused.status_code == 422

    export = police.post("/api/guests.csv", json={"name": "王五"})
    assert export.status_code == 200 and number in export.text
    assert web_app.parts.context.audit.entries(action="guest.search")[0].subject.startswith("name:")


def test_searches_are_limited_per_officer_and_hour(limited: App) -> None:
    police = limited.session_client(P)
    for _ in range(2):
        assert post_search(police, id_number=resident_id()).status_code == 303  # type: ignore[attr-defined]
    refused = post_search(police, name="张三丰")
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert "已达 2 次上限" in refused.text  # type: ignore[attr-defined]
    assert 0 < int(refused.headers["retry-after"]) <= 3600  # type: ignore[attr-defined]
    api = police.post("/api/guests/search", json={"id_number": resident_id()})
    assert api.status_code == 429
    assert api.json()["error"]["code"] == "search.limit"
    assert police.post("/api/guests.csv", json={"name": "张三丰"}).status_code == 429
    assert len(limited.parts.context.audit.entries(action="guest.search")) == 2
    # Lists that identify nobody go on; so does a host's own allowance.
    assert police.get("/police/registrations").status_code == 200
    host = limited.session_client(H)
    assert host.post("/api/guests/search", json={"name": "张三丰"}).status_code == 200

    # The count is in the audit log, so a restart does not reset it.
    again = TestClient(create_app(limited.parts.context), follow_redirects=False)
    for name, value in police.cookies.items():
        again.cookies.set(name, value)
    again.headers.update(police.headers)
    assert again.post("/api/guests/search", json={"name": "李四"}).status_code == 429


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/police/registrations/{guest_id}", False),
        ("/police/registrations.csv", False),
        ("/api/guests/{guest_id}", True),
        ("/api/guests.csv", True),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port of this host
        {"Referer": "http://evil.example/page"},
        {"Origin": "http://127.0.0.1:9"},
    ],
)
def test_audited_reads_refuse_other_websites(
    web_app: App, path: str, api: bool, headers: dict[str, str]
) -> None:
    police = web_app.session_client(P)
    url = path.format(guest_id=web_app.guest_id)
    refused = police.get(url, headers=headers)
    assert refused.status_code == 403
    if api:
        assert refused.json()["error"]["code"] == "request.cross_site"
    audit = web_app.parts.context.audit
    assert audit.entries(action="guest.view_unmasked") == []
    assert audit.entries(action="guest.export") == []
    own = police.get(url, headers={"Sec-Fetch-Site": "same-origin"})
    assert own.status_code == 200
    assert audit.entries(action="guest.view_unmasked") or audit.entries(action="guest.export")


def test_a_csv_export_posted_from_another_website_is_refused(web_app: App) -> None:
    police = web_app.session_client(P)
    refused = police.post(
        "/api/guests.csv", json={"name": "张三丰"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert refused.status_code == 403
    audit = web_app.parts.context.audit
    assert audit.entries(action="guest.export") == audit.entries(action="guest.search") == []


@pytest.mark.parametrize("value", ["²", "١٢", "12a", "-1", "9" * 16])
def test_an_odd_homestay_number_is_a_clear_refusal(web_app: App, value: str) -> None:
    police = web_app.session_client(P)
    page = police.get("/police/registrations", params={"homestay_id": value})
    assert page.status_code == 200 and "请选择一家民宿" in page.text
    assert 'data-guest="' not in page.text
    assert police.get("/police/registrations.csv", params={"homestay_id": value}).status_code == 400
    posted = post_search(police, name="张三丰", homestay_id=value)
    assert posted.status_code == 400  # type: ignore[attr-defined]
    assert web_app.parts.context.audit.entries(action="guest.export") == []


def test_the_search_store_is_bounded_and_forgets() -> None:
    now = [0.0]
    store = SearchStore(ttl_seconds=60, per_account=3, total=5, clock=lambda: now[0])
    query = object()
    ids = [store.put("li.police", query) for _ in range(4)]  # type: ignore[arg-type]
    assert store.get("li.police", ids[0]) is None, "an officer keeps their newest three"
    assert all(store.get("li.police", i) is query for i in ids[1:])
    assert store.get("sun.police", ids[1]) is None
    others = [store.put(f"officer{n}", query) for n in range(4)]  # type: ignore[arg-type]
    assert len(store) == 5
    assert store.get("officer3", others[3]) is query
    now[0] = 61
    assert store.get("officer3", others[3]) is None
    assert len(store) == 0
