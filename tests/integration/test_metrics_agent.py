"""/metrics of the running agent, scraped the way Prometheus does: a bearer token, no session."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable

import httpx
import pytest

from tests.fixtures.agent import AgentProcess
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration

TOKEN = "prometheus-" + "t" * 32


def scrape(agent: AgentProcess, token: str = TOKEN) -> httpx.Response:
    return httpx.get(
        f"{agent.url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def fps(text: str, camera: str) -> float:
    match = re.search(rf'^village_kiosk_camera_fps\{{camera="{camera}"\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_a_scraper_reads_the_running_agents_metrics(
    agent_factory: Callable[..., AgentProcess],
) -> None:
    cameras = [{"id": "gate", "source": "sim://empty", "fps": 5, "resolution": "160x120"}]
    # The token comes from the environment, as under systemd (EnvironmentFile).
    agent = agent_factory(
        {"device": {"id": "metrics-kiosk"}, "cameras": cameras},
        env={"VILLAGE_KIOSK_WEB__METRICS_TOKEN": TOKEN},
    )
    agent.start()

    wait_until(lambda: fps(scrape(agent).text, "gate") > 0, 30, "gate's fps above 0 in /metrics")
    response = scrape(agent)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'village_kiosk_camera_state{camera="gate",state="online"} 1' in text
    assert "village_kiosk_outbox_messages " in text
    assert 'village_kiosk_camera_events{camera="gate"} ' in text
    rss = re.search(r"^process_resident_memory_bytes (\d+)$", text, re.M)
    assert rss and int(rss.group(1)) > 20 * 1024 * 1024
    # The scrapes themselves were timed, under the route's template.
    assert 'route="/metrics",status="2xx"' in text
    assert TOKEN not in text

    assert scrape(agent, "wrong-" + TOKEN).status_code == 401
    anonymous = httpx.get(f"{agent.url}/metrics", follow_redirects=False, timeout=10)
    assert anonymous.status_code == 303

    assert agent.stop(signal.SIGTERM) == 0
    assert "Traceback" not in agent.log()
    assert TOKEN not in agent.log()
