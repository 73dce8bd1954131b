"""The publishing process killed mid-burst: nothing is lost, and the broker says ``offline``."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.command_center import CommandCenter
from tests.fixtures.mosquitto import MosquittoBroker
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOTAL = 1000


def _start_producer(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fixtures.mosquitto",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--total",
            str(TOTAL),
            "--batch",
            "5",
            "--pause",
            "0.02",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
    )


def _produced(data_dir: Path) -> int:
    connection = sqlite3.connect(data_dir / "kiosk.sqlite3", timeout=10)
    try:
        row = connection.execute("SELECT done FROM producer_progress WHERE id = 1").fetchone()
        return int(row[0]) if row else 0
    finally:
        connection.close()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_sigkill_mid_burst_loses_nothing_and_clean_stop_says_stopped(
    mosquitto: MosquittoBroker, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    data_dir = tmp_path / "kiosk"
    with CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"]) as centre:
        first = _start_producer(data_dir, mosquitto.port)
        processes.append(first)
        wait_until(lambda: centre.status("kiosk-1") == "online", 20, "kiosk online")
        wait_until(lambda: _produced(data_dir) >= 200, 20, "burst under way")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        wait_until(lambda: centre.status("kiosk-1") == "offline", 10, "Last Will 'offline'")
        produced_before_crash = _produced(data_dir)
        assert produced_before_crash < TOTAL, "the burst ended before the kill"

        second = _start_producer(data_dir, mosquitto.port)
        processes.append(second)
        wait_until(lambda: centre.status("kiosk-1") == "online", 20, "kiosk back online")
        wait_until(lambda: len(centre.events("kiosk-1")) >= TOTAL, 30, "all events")

        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
        wait_until(lambda: centre.status("kiosk-1") == "stopped", 10, "clean 'stopped'")

        events = centre.events("kiosk-1")
        statuses = centre.statuses("kiosk-1")

    assert sorted(e["event_id"] for e in events) == sorted(f"ev-{n}" for n in range(TOTAL))
    assert centre.order_violations("kiosk-1") == []
    assert centre.gaps("kiosk-1") == []
    # A clean stop sends no Last Will: the last word is "stopped", not "offline".
    assert statuses[-1] == "stopped"
    assert statuses.count("offline") == 1
