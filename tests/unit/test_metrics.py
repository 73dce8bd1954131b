"""/metrics: the Prometheus text format (agent/metrics.py) and who may read it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent.accounts import Role
from agent.metrics import (
    CONTENT_TYPE,
    CameraFigures,
    KioskFigures,
    LatencyHistogram,
    Metric,
    OutboxFigures,
    ProcessFigures,
    Sample,
    escape_label_value,
    kiosk_metrics,
    labels,
    process_figures,
    process_metrics,
    render,
    resident_bytes,
)
from agent.store.events import MIGRATIONS as EVENT_MIGRATIONS
from tests.fixtures.browser import (
    USERS,
    StillCamera,
    WebParts,
    build_web_context,
    guest_input,
    kiosk_config,
)
from web_ui.app import create_app
from web_ui.security import CSRF_HEADER, SESSION_COOKIE

TOKEN = "scrape-" + "k" * 32
# A sample line: name, optional {labels}, value.
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
_SAMPLE = re.compile(rf"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{{{_LABEL}(?:,{_LABEL})*\}})? (\S+)$")


def parse(text: str) -> dict[str, list[tuple[str, float]]]:
    """Checks the text format line by line; {metric family: [(sample line's labels, value)]}."""
    assert text.endswith("\n")
    families: dict[str, list[tuple[str, float]]] = {}
    kinds: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = line.split(" ")[2]
            assert current not in families, f"{current} described twice"
            families[current] = []
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current, "TYPE follows its HELP"
            kinds[name] = kind
        else:
            match = _SAMPLE.match(line)
            assert match, line
            name = match.group(1)
            assert name == current or (
                kinds[current] == "histogram"
                and name in {current + "_bucket", current + "_sum", current + "_count"}
            ), line
            families[current].append((match.group(2) or "", float(match.group(3))))
    assert set(kinds) == set(families)
    return families


def value(families: dict[str, list[tuple[str, float]]], name: str, label_text: str = "") -> float:
    for found, number in families[name]:
        if found == label_text:
            return number
    raise AssertionError(f"{name}{label_text} not in {families[name]}")


# -- the text format ----------------------------------------------------------------------------


def test_render_writes_help_type_and_samples() -> None:
    text = render(
        [
            Metric("kiosk_a", "gauge", "First line\nsecond \\ line.", (Sample(1.5),)),
            Metric("kiosk_b_total", "counter", "Counted.", (Sample(3, labels(camera="gate")),)),
        ]
    )
    assert text == (
        "# HELP kiosk_a First line\\nsecond \\\\ line.\n"
        "# TYPE kiosk_a gauge\n"
        "kiosk_a 1.5\n"
        "# HELP kiosk_b_total Counted.\n"
        "# TYPE kiosk_b_total counter\n"
        'kiosk_b_total{camera="gate"} 3\n'
    )


def test_label_values_are_escaped() -> None:
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    text = render([Metric("m", "gauge", "h", (Sample(1, labels(camera='村口"\\\n')),))])
    assert 'm{camera="村口\\"\\\\\\n"} 1' in text
    parse(text)


def test_special_values_and_bad_names() -> None:
    text = render(
        [Metric("m", "gauge", "h", (Sample(float("nan")), Sample(float("inf"), labels(a="1"))))]
    )
    assert "m NaN\n" in text and 'm{a="1"} +Inf\n' in text
    with pytest.raises(ValueError):
        Metric("bad-name", "gauge", "h")
    with pytest.raises(ValueError):
        Metric("m", "meter", "h")
    with pytest.raises(ValueError):
        Metric("m", "gauge", "h", (Sample(1, (("bad-label", "x"),)),))
    with pytest.raises(ValueError):
        render([Metric("m", "gauge", "h"), Metric("m", "gauge", "h")])


def test_histogram_counts_by_route_template_and_status_class() -> None:
    histogram = LatencyHistogram(bounds=(0.1, 1.0))
    histogram.observe("GET", "/police/registrations/{guest_id}", 200, 0.05)
    histogram.observe("GET", "/police/registrations/{guest_id}", 204, 0.5)
    histogram.observe("GET", "/police/registrations/{guest_id}", 404, 3.0)
    families = parse(render([histogram.metric()]))
    name = "village_kiosk_http_request_duration_seconds"
    ok = 'method="GET",route="/police/registrations/{guest_id}",status="2xx"'
    assert value(families, name, "{" + ok + ',le="0.1"}') == 1
    assert value(families, name, "{" + ok + ',le="1.0"}') == 2
    assert value(families, name, "{" + ok + ',le="+Inf"}') == 2
    assert value(families, name, "{" + ok + "}") == pytest.approx(0.55)  # _sum
    missing = 'method="GET",route="/police/registrations/{guest_id}",status="4xx",le="1.0"'
    assert value(families, name, "{" + missing + "}") == 0
    lines = render([histogram.metric()]).splitlines()
    assert any(line.startswith(name + "_count{") and "4xx" in line for line in lines)


def test_kiosk_metrics_from_figures() -> None:
    figures = KioskFigures(
        healthy=False,
        cameras=[
            CameraFigures("gate", "online", 9.5, 100, 2, 1, 0.1, events=4, live_viewers=1),
            CameraFigures("road", "reconnecting", 0.0, 0),
        ],
        camera_states=["starting", "online", "reconnecting", "offline", "disabled"],
        outbox=OutboxFigures(depth=3, bytes=900, oldest_age_seconds=42.0, dropped={"alert": 1}),
        mqtt_connected=False,
        live_viewers=1,
        peers=2,
        calls={"ringing": 0, "active": 1},
        uptime_seconds=60.0,
    )
    families = parse(render(kiosk_metrics(figures)))
    p = "village_kiosk_"
    assert value(families, p + "healthy") == 0
    assert value(families, p + "camera_fps", '{camera="gate"}') == 9.5
    assert value(families, p + "camera_state", '{camera="gate",state="online"}') == 1
    assert value(families, p + "camera_state", '{camera="gate",state="offline"}') == 0
    assert value(families, p + "camera_state", '{camera="road",state="reconnecting"}') == 1
    assert value(families, p + "camera_reconnects_total", '{camera="gate"}') == 1
    assert value(families, p + "camera_events", '{camera="gate"}') == 4
    assert value(families, p + "camera_live_viewers", '{camera="gate"}') == 1
    assert value(families, p + "outbox_messages") == 3
    assert value(families, p + "outbox_oldest_age_seconds") == 42
    assert value(families, p + "outbox_dropped_total", '{kind="alert"}') == 1
    assert value(families, p + "mqtt_connected") == 0
    assert value(families, p + "live_viewers") == 1
    assert value(families, p + "rtc_peers") == 2
    assert value(families, p + "calls", '{state="active"}') == 1
    # What is unknown is left out rather than reported as 0.
    assert '{camera="road"}' not in str(families[p + "camera_reconnects_total"])


def test_process_figures_read_proc_self_status(tmp_path: Path) -> None:
    assert resident_bytes("Name:\tpython\nVmRSS:\t  2048 kB\n") == 2048 * 1024
    assert resident_bytes("Name:\tpython\n") is None
    figures = process_figures()
    assert figures.resident_bytes is not None and figures.resident_bytes > 10 * 1024 * 1024
    assert figures.cpu_seconds > 0
    missing = process_figures(tmp_path / "nothing")
    assert missing.resident_bytes is None
    families = parse(render(process_metrics(ProcessFigures(1024, 1.25))))
    assert value(families, "process_resident_memory_bytes") == 1024
    assert value(families, "process_cpu_seconds_total") == 1.25


# -- the route ------------------------------------------------------------------------------


@dataclass
class MetricsApp:
    parts: WebParts
    asgi: FastAPI

    def client(self, role: str | None = None) -> TestClient:
        client = TestClient(self.asgi, follow_redirects=False)
        if role is not None:
            accounts = self.parts.context.accounts
            grant = accounts.start_session(accounts.get_user(USERS[role]))
            client.cookies.set(SESSION_COOKIE, grant.token)
            client.headers[CSRF_HEADER] = grant.session.csrf_token
        return client


def _health() -> dict[str, object]:
    """Shaped like Runtime.health()."""
    return {
        "status": "ok",
        "problems": [],
        "uptime_seconds": 12.5,
        "parts": {
            "cameras": {"square": {"state": "online", "fps": 8.0, "reconnects": 2, "dropped": 1}},
            "mqtt": {
                "enabled": True,
                "connected": True,
                "outbox": {"depth": 4, "bytes": 1000, "oldest_age_seconds": 7.5, "dropped": {}},
            },
            "live": {"viewers": 0, "peers": 0},
        },
    }


def _app(tmp_path: Path, **web: object) -> Iterator[MetricsApp]:
    config = kiosk_config(tmp_path, **web)
    parts = build_web_context(
        tmp_path, {"square": StillCamera("square")}, config=config, health=_health()
    )
    for role, username in USERS.items():
        parts.add_user(username, role)
    yield MetricsApp(parts, create_app(parts.context))
    parts.context.database.close()


@pytest.fixture
def metrics_app(tmp_path: Path) -> Iterator[MetricsApp]:
    yield from _app(tmp_path, metrics_token=TOKEN)


@pytest.fixture
def no_token_app(tmp_path: Path) -> Iterator[MetricsApp]:
    yield from _app(tmp_path)


def test_admin_reads_the_metrics(metrics_app: MetricsApp) -> None:
    database = metrics_app.parts.context.database
    database.migrate("events", EVENT_MIGRATIONS)
    with database.write() as db:
        for n in range(3):
            db.execute(
                "INSERT INTO events (id, camera_id, started_at, updated_at) VALUES (?, ?, ?, ?)",
                [f"e{n}", "square", 1.0 + n, 1.0 + n],
            )
    admin = metrics_app.client(Role.ADMIN.value)
    response = admin.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert response.headers["cache-control"] == "no-store"
    families = parse(response.text)
    p = "village_kiosk_"
    assert value(families, p + "healthy") == 1
    assert value(families, p + "uptime_seconds") == 12.5
    assert value(families, p + "camera_fps", '{camera="square"}') == 8.0
    assert value(families, p + "camera_state", '{camera="square",state="online"}') == 1
    assert value(families, p + "camera_reconnects_total", '{camera="square"}') == 2
    assert value(families, p + "camera_events", '{camera="square"}') == 3
    assert value(families, p + "outbox_messages") == 4
    assert value(families, p + "outbox_oldest_age_seconds") == 7.5
    assert value(families, p + "mqtt_connected") == 1
    assert value(families, p + "rtc_peers") == 0
    assert value(families, "process_resident_memory_bytes") > 0
    assert value(families, "process_cpu_seconds_total") > 0


def test_request_latency_is_labelled_by_route_template(metrics_app: MetricsApp) -> None:
    admin = metrics_app.client(Role.ADMIN.value)
    assert admin.get("/cameras/square/snapshot.jpg").status_code == 200
    assert admin.get("/cameras/nowhere/snapshot.jpg").status_code == 404
    assert admin.get("/no/such/page/12345").status_code == 404
    text = admin.get("/metrics").text
    name = "village_kiosk_http_request_duration_seconds_count"
    snapshot = 'method="GET",route="/cameras/{camera_id}/snapshot.jpg"'
    assert f'{name}{{{snapshot},status="2xx"}} 1\n' in text
    assert f'{name}{{{snapshot},status="4xx"}} 1\n' in text
    assert f'{name}{{method="GET",route="unmatched",status="4xx"}} 1\n' in text
    assert "nowhere" not in text and "12345" not in text
    parse(text)


def test_no_personal_data_in_the_metrics(metrics_app: MetricsApp) -> None:
    context = metrics_app.parts.context
    guest = guest_input()
    homestay = context.homestays.create_homestay("竹林民宿", "竹林村 3 组", 5, USERS["host"])
    context.homestays.check_in(homestay.id, guest, actor=USERS["host"])
    context.family.create_household("陈家", "246810", ["square"], actor=USERS["admin"])
    admin = metrics_app.client(Role.ADMIN.value)
    admin.get("/police/audit")
    text = admin.get("/metrics").text
    for secret in [guest.name, guest.id_number, "竹林", "陈家", *USERS.values(), TOKEN]:
        assert secret not in text, secret


@pytest.mark.parametrize("role", [Role.HOST, Role.POLICE, Role.FAMILY, Role.STAFF])
def test_other_roles_are_refused(metrics_app: MetricsApp, role: Role) -> None:
    assert metrics_app.client(role.value).get("/metrics").status_code == 403


def test_anonymous_is_sent_to_sign_in(metrics_app: MetricsApp) -> None:
    response = metrics_app.client().get("/metrics")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_the_configured_token_admits_a_scraper(metrics_app: MetricsApp) -> None:
    scraper = metrics_app.client()
    response = scraper.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert "village_kiosk_camera_fps" in response.text
    assert SESSION_COOKIE not in response.cookies


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        f"Basic {TOKEN}",
        TOKEN,
    ],
)
def test_a_wrong_token_is_401(metrics_app: MetricsApp, header: str) -> None:
    response = metrics_app.client().get("/metrics", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "auth.token_invalid"


def test_a_wrong_token_is_401_even_with_an_admin_session(metrics_app: MetricsApp) -> None:
    admin = metrics_app.client(Role.ADMIN.value)
    response = admin.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


def test_without_a_configured_token_only_an_admin_session(no_token_app: MetricsApp) -> None:
    scraper = no_token_app.client()
    response = scraper.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 401
    assert no_token_app.client(Role.ADMIN.value).get("/metrics").status_code == 200


def test_a_short_token_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metrics_token"):
        kiosk_config(tmp_path, metrics_token="short")
