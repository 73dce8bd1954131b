"""What every request meets before a route (Host, body size) and the headers on every answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.browser import App, build_web_context, kiosk_config
from web_ui.app import create_app
from web_ui.gate import allowed_host_names, host_name

LIMIT = 4096


@pytest.fixture
def small_limit_client(tmp_path: Path) -> Iterator[TestClient]:
    parts = build_web_context(tmp_path, config=kiosk_config(tmp_path, max_body_bytes=LIMIT))
    yield TestClient(create_app(parts.context), follow_redirects=False)
    parts.context.database.close()


def test_a_body_over_the_limit_is_refused_from_its_length(small_limit_client: TestClient) -> None:
    response = small_limit_client.post(
        "/api/session",
        content=b"{" + b" " * (LIMIT + 10) + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_a_chunked_body_is_cut_off_at_the_limit(small_limit_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    response = small_limit_client.post(
        "/api/session", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_a_chunked_form_over_the_limit_is_refused_on_a_page(small_limit_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"username=a&password="
        for _ in range(20):
            yield b"x" * 1024

    response = small_limit_client.post(
        "/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    assert "Traceback" not in response.text


def test_a_body_under_the_limit_still_works(small_limit_client: TestClient) -> None:
    response = small_limit_client.post(
        "/api/session", json={"username": "nobody", "password": "wrong-password-1"}
    )
    assert response.status_code in (401, 403)  # judged by the route, not the gate


def test_a_foreign_host_is_refused_before_any_redirect(web_app: App) -> None:
    response = web_app.client.get("/api/cameras/", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert "location" not in response.headers
    ok = web_app.client.get("/api/cameras", headers={"host": "127.0.0.1:8080"})
    assert ok.status_code == 200


def test_allowed_hosts_default_to_loopback_and_the_bind_address() -> None:
    assert allowed_host_names([], "127.0.0.1") == {"127.0.0.1", "localhost", "::1"}
    assert "192.0.2.7" in allowed_host_names([], "192.0.2.7")
    assert allowed_host_names([], "0.0.0.0") == {"127.0.0.1", "localhost", "::1"}
    assert allowed_host_names(["Kiosk.local"], "0.0.0.0") == {"kiosk.local"}
    assert host_name("[::1]:8080") == "::1"
    assert host_name("KIOSK.local.:80") == "kiosk.local"
    assert host_name("a b") is None or host_name("a b") == "a b"


def test_every_answer_carries_the_protective_headers(web_app: App) -> None:
    for path in ("/", "/api/cameras", "/api/session", "/healthz", "/no-such-page"):
        response = web_app.client.get(path)
        headers = response.headers
        assert headers["cache-control"] == "no-store", path
        assert "camera=(self)" in headers["permissions-policy"], path
        assert "geolocation=()" in headers["permissions-policy"], path
        assert headers["cross-origin-opener-policy"] == "same-origin", path
        assert headers["cross-origin-resource-policy"] == "same-origin", path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
