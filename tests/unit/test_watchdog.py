"""The liveness rules behind the systemd watchdog: when a capture thread or the outbox drain
counts as stuck, how it is logged, the STATUS line, and the runtime's watchdog and housekeeping
tasks on a real unix datagram socket (a slow or failing retention pass never costs a ping)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.alerts.link import DRAIN_LIVENESS_SECONDS, MqttLink
from agent.alerts.topics import Topics
from agent.camera import capture
from agent.camera.capture import LIVENESS_MARGIN_SECONDS, CameraState, CameraWorker
from agent.config import CameraConfig, MqttConfig, parse_config
from agent.errors import CameraError
from agent.health import StuckParts, status_line
from agent.runtime import Runtime
from agent.store.database import Database
from tests.fixtures.loops import run_in_own_loop
from tests.fixtures.servers import free_port, wait_until

FRAME = np.full((48, 64, 3), 90, np.uint8)


def _camera(**overrides: Any) -> CameraConfig:
    values: dict[str, Any] = {
        "id": "yard",
        "source": "sim://empty",
        "fps": 20,
        "resolution": "64x48",
        "open_timeout_seconds": 2,
        "stall_timeout_seconds": 3,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.1,
    }
    values.update(overrides)
    return CameraConfig(**values)


class Reader:
    """A paced source that gives frames until ``hang`` is set, then blocks in ``grab`` (as a
    driver that ignores its timeouts would) until ``release`` is set; or that ends at once
    (``ends``) or never opens (``unreachable``)."""

    live = False

    def __init__(self, *, ends: bool = False, unreachable: bool = False) -> None:
        self.hang = threading.Event()
        self.release = threading.Event()
        self.hanging = threading.Event()
        self._ends = ends
        self._unreachable = unreachable

    def open(self) -> None:
        if self._unreachable:
            raise CameraError("camera unreachable")

    def grab(self) -> bool:
        if self._ends:
            raise capture.SourceEndedError("end of file")
        if self.hang.is_set():
            self.hanging.set()
            self.release.wait()
        return True

    def retrieve(self) -> np.ndarray | None:
        return FRAME.copy()

    def position(self) -> float | None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture
def workers() -> Iterator[list[CameraWorker]]:
    made: list[CameraWorker] = []
    yield made
    for worker in made:
        worker.stop(timeout=2)


def test_the_limit_is_the_longest_blocking_call_plus_a_margin() -> None:
    worker = CameraWorker(_camera(open_timeout_seconds=7, stall_timeout_seconds=3))
    assert worker.liveness_limit() == 7 + LIVENESS_MARGIN_SECONDS
    worker = CameraWorker(_camera(open_timeout_seconds=2, stall_timeout_seconds=30))
    assert worker.liveness_limit() == 30 + LIVENESS_MARGIN_SECONDS


def test_a_capture_thread_that_hangs_is_stuck_once_past_its_limit(
    workers: list[CameraWorker],
) -> None:
    reader = Reader()
    worker = CameraWorker(_camera(), reader_factory=lambda _c: reader)
    workers.append(worker)
    assert worker.liveness_problem() is None, "never started: nothing to watch"
    worker.start()
    wait_until(lambda: worker.status().state is CameraState.ONLINE, 5, "online")
    limit = worker.liveness_limit()
    assert worker.liveness_problem() is None
    # Running normally, the thread renews its sign of life many times a second.
    assert worker.liveness_problem(time.monotonic() + 1.0) is None

    reader.hang.set()
    assert reader.hanging.wait(5)
    hung_at = time.monotonic()
    assert worker.liveness_problem(hung_at + limit - 1.0) is None, "within its limit"
    problem = worker.liveness_problem(hung_at + limit + 0.5)
    assert problem is not None
    assert "capture thread silent" in problem and "online" in problem

    reader.release.set()
    wait_until(lambda: worker.liveness_problem(time.monotonic()) is None, 5, "alive again")
    assert worker.liveness_problem(time.monotonic() + 1.0) is None


def test_a_stopping_worker_is_not_stuck(workers: list[CameraWorker]) -> None:
    reader = Reader()
    worker = CameraWorker(_camera(), reader_factory=lambda _c: reader)
    workers.append(worker)
    worker.start()
    reader.hang.set()
    assert reader.hanging.wait(5)
    worker.stop(timeout=0.1)  # the join gives up: the thread still hangs
    assert worker.liveness_problem(time.monotonic() + 3600) is None
    reader.release.set()


def test_a_thread_that_ended_as_documented_is_not_stuck(workers: list[CameraWorker]) -> None:
    worker = CameraWorker(_camera(loop=False), reader_factory=lambda _c: Reader(ends=True))
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().state is CameraState.OFFLINE, 5, "offline")
    wait_until(lambda: not [t for t in threading.enumerate() if t.name == "camera-yard"], 5, "end")
    assert worker.liveness_problem(time.monotonic() + 3600) is None


def test_a_disabled_camera_is_not_watched() -> None:
    worker = CameraWorker(_camera(enabled=False))
    worker.start()
    assert worker.liveness_problem(time.monotonic() + 3600) is None


def test_reconnect_waits_renew_the_sign_of_life(
    workers: list[CameraWorker], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A limit of 1.5 s against a reconnect wait of 4 to 8 s: only a wait that beats keeps the
    # camera from looking hung.
    monkeypatch.setattr(capture, "LIVENESS_MARGIN_SECONDS", 0.5)
    config = _camera(
        open_timeout_seconds=1,
        stall_timeout_seconds=1,
        reconnect_min_seconds=8,
        reconnect_max_seconds=8,
    )
    worker = CameraWorker(config, reader_factory=lambda _c: Reader(unreachable=True))
    workers.append(worker)
    worker.start()
    wait_until(lambda: worker.status().state is CameraState.RECONNECTING, 5, "reconnecting")
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert worker.liveness_problem() is None
        time.sleep(0.1)
    assert worker.status().reconnects == 0, "still in the first wait"


# -- the outbox drain ---------------------------------------------------------------------------


@pytest.fixture
def link(tmp_path: Path) -> Iterator[MqttLink]:
    database = Database(tmp_path / "kiosk.sqlite3")
    from agent.alerts import outbox

    outbox.migrate(database)
    # A broker address nobody listens on: the link runs, never connects.
    config = MqttConfig(
        enabled=True,
        host="127.0.0.1",
        port=free_port(),
        allow_plaintext=True,
        report_public_key=tmp_path / "centre.pem",  # only its path is checked here
        reconnect_min_seconds=1,
        reconnect_max_seconds=2,
    )
    made = MqttLink(
        config=config,
        client_id="kiosk-1",
        topics=Topics("village", "kiosk-1"),
        database=database,
        on_command=lambda _name, _payload: None,
        state_messages=list,
    )
    yield made
    made.stop(timeout=1)
    database.close()


def test_the_outbox_drain_is_watched_only_while_the_broker_is_connected(link: MqttLink) -> None:
    assert link.liveness_problem() is None, "not started"
    link.start()
    far = time.monotonic() + DRAIN_LIVENESS_SECONDS * 10
    assert not link.connected
    assert link.liveness_problem(far) is None, "offline, rows rightly wait"
    # What paho's on_connect records.
    with link._lock:
        link._connected = True
    assert link.liveness_problem(time.monotonic() + 1.0) is None, "the drain turns every second"
    problem = link.liveness_problem(far)
    assert problem is not None and "outbox drain thread silent" in problem
    link.stop(timeout=1)
    assert link.liveness_problem(far) is None, "stopped"


# -- logging and the status line ----------------------------------------------------------------


def test_a_stuck_part_is_logged_once_and_its_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    parts = StuckParts()
    caplog.set_level(logging.INFO, logger="agent.health")
    assert parts.review({"camera gate": None, "mqtt outbox": None}) == {}
    for _ in range(3):
        stuck = parts.review({"camera gate": "capture thread silent for 16 s", "mqtt outbox": None})
        assert stuck == {"camera gate": "capture thread silent for 16 s"}
    parts.review({"camera gate": None, "mqtt outbox": None})
    parts.review({"camera gate": None, "mqtt outbox": None})
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "camera gate is stuck: capture thread silent for 16 s; systemd watchdog pings withheld",
        "camera gate is alive again; systemd watchdog pings resume",
    ]
    assert caplog.records[0].levelno == logging.ERROR


def test_the_status_line() -> None:
    assert (
        status_line(online=3, cameras=4, outbox=0, viewers=2, stuck={})
        == "3 of 4 cameras online, outbox 0 waiting, 2 live viewers"
    )
    assert (
        status_line(online=0, cameras=0, outbox=None, viewers=1, stuck={})
        == "no cameras, outbox not read yet, 1 live viewer"
    )
    line = status_line(online=1, cameras=1, outbox=5, viewers=0, stuck={"camera a": "x\ny"})
    assert line.startswith("STUCK: camera a (x y) | 1 of 1 cameras online")
    assert "\n" not in line


# -- the runtime's tasks on a real notify socket -----------------------------------------------


class Notifications:
    """A bound datagram socket, read by a thread that stamps each arrival (monotonic)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.received: list[tuple[float, list[str]]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            self.received.append((time.monotonic(), data.decode().splitlines()))

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._reader.join(2)

    def pings(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [at for at, lines in self.received if "WATCHDOG=1" in lines and since <= at < until]


@pytest.fixture
def notifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[Notifications]:
    folder = Path(tempfile.mkdtemp(prefix="notify-"))
    notes = Notifications(folder / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notes.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # a ping every 0.2 s
    yield notes
    notes.close()
    notes.path.unlink(missing_ok=True)
    folder.rmdir()


def _max_gap(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=float("inf"))


def test_a_slow_or_failing_retention_pass_costs_no_ping(
    tmp_path: Path, notifications: Notifications, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_config(
        {"device": {"id": "kiosk-1", "data_dir": str(tmp_path)}, "web": {"enabled": False}},
        environ={},
    )
    runtime = Runtime(config)
    runtime.housekeeping_delay_seconds = 0.0
    runtime.housekeeping_interval_seconds = 0.1
    # A file no event refers to, older than the orphan grace: the first pass that gets through
    # deletes it.
    orphan = runtime.media_dir / "events" / "yard" / "orphan.jpg"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"jpeg")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    caplog.set_level(logging.INFO)
    log: dict[str, float] = {}

    def hold_database(seconds: float) -> None:
        with runtime.database.write():
            log["held"] = time.monotonic()
            time.sleep(seconds)
        log["released"] = time.monotonic()

    async def scenario() -> None:
        stop = asyncio.Event()
        serving = asyncio.create_task(runtime.serve(stop))
        # A long write holds the database from the start: every retention pass waits on it.
        holder = threading.Thread(target=hold_database, args=(2.0,))
        holder.start()
        while "released" not in log:
            assert orphan.exists(), "the pass is held up"
            await asyncio.sleep(0.05)
        holder.join()
        while orphan.exists():
            await asyncio.sleep(0.05)
        log["removed"] = time.monotonic()

        # A pass that fails (the events table gone, as a damaged database would have it).
        with runtime.database.write() as db:
            db.execute("ALTER TABLE events RENAME TO events_away")
        log["broken"] = time.monotonic()
        log["broken_wall"] = time.time()
        await asyncio.sleep(1.0)
        with runtime.database.write() as db:
            db.execute("ALTER TABLE events_away RENAME TO events")
        log["mended"] = time.monotonic()
        log["mended_wall"] = time.time()
        await asyncio.sleep(0.5)
        assert not serving.done(), "the agent runs on"
        stop.set()
        await serving
        await asyncio.sleep(0.1)  # the last datagrams reach the reader

    try:
        # A loop of its own: once the session's Playwright runs, this thread has one already.
        run_in_own_loop(scenario)
    finally:
        runtime.stop()

    notes = notifications.received
    assert notes[0][1][0] == "READY=1"
    held = notifications.pings(log["held"], log["released"])
    assert len(held) >= 7, "pings went on while the retention pass was held up"
    assert _max_gap(held) < 0.5
    assert log["removed"] >= log["released"]
    failures = [
        r.created
        for r in caplog.records
        if "retention pass: media retention failed" in r.getMessage()
    ]
    assert len(failures) >= 3, "each failing pass is logged, and the passes go on"
    assert all(log["broken_wall"] <= at <= log["mended_wall"] + 0.2 for at in failures)
    during = notifications.pings(log["broken"], log["mended"])
    assert len(during) >= 4 and _max_gap(during) < 0.5
    assert any("STOPPING=1" in lines for _, lines in notes)
    statuses = [line for _, lines in notes for line in lines if line.startswith("STATUS=")]
    assert "STATUS=no cameras, outbox 0 waiting, 0 live viewers" in statuses
