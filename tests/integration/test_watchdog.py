"""The systemd watchdog as systemd sees it: a unix datagram socket the test binds is the agent's
NOTIFY_SOCKET, and WATCHDOG_USEC=1 s asks for a ping every 0.5 s.

How a capture thread is made to hang, from outside and without mocks: an operator's ``sqlite3``
shell (here a second SQLite connection of the test) holds a write transaction open on the live
database. The camera sees a person walking, so its capture thread writes the event (start,
updates) from its frame callback and waits there in SQLite's busy timeout (30 s), a real block
that no camera timeout bounds. The agent's event loop never touches the database, so the loop
keeps answering and only the camera's liveness can withhold the pings. Releasing the
transaction lets the thread go on, and the pings resume.

The slow retention pass is tested in-process (tests/unit/test_watchdog.py): the first pass now
waits minutes after a start, longer than a test should run a subprocess.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.store.media import database_path
from tests.fixtures.agent import AgentProcess
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration

PING_SECONDS = 0.5  # half of WATCHDOG_USEC


@dataclass
class NotifySocket:
    """What systemd would receive: each datagram with its arrival time (monotonic)."""

    path: Path
    sock: socket.socket
    received: list[tuple[float, str]] = field(default_factory=list)
    # Whether the web port accepted a connection the moment READY=1 arrived.
    web_listening_at_ready: bool | None = None
    web_port: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def collect(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            message = data.decode()
            if "READY=1" in message.splitlines() and self.web_port is not None:
                try:
                    socket.create_connection(("127.0.0.1", self.web_port), timeout=1).close()
                    self.web_listening_at_ready = True
                except OSError:
                    self.web_listening_at_ready = False
            with self._lock:
                self.received.append((time.monotonic(), message))

    def messages(self) -> list[tuple[float, list[str]]]:
        with self._lock:
            return [(at, message.splitlines()) for at, message in self.received]

    def pings(self, since: float = 0.0) -> list[float]:
        return [at for at, lines in self.messages() if "WATCHDOG=1" in lines and at >= since]

    def statuses(self, since: float = 0.0) -> list[str]:
        return [
            line.removeprefix("STATUS=")
            for at, lines in self.messages()
            if at >= since
            for line in lines
            if line.startswith("STATUS=")
        ]

    def seen(self, line: str) -> bool:
        return any(line in lines for _, lines in self.messages())


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    # A short path: unix socket addresses are limited to 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="notify-"))
    path = folder / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    notify = NotifySocket(path, sock)
    reader = threading.Thread(target=notify.collect, daemon=True)
    reader.start()
    yield notify
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    path.unlink(missing_ok=True)
    folder.rmdir()


def longest_gap(times: list[float], until: float) -> float:
    gaps = [later - earlier for earlier, later in zip(times, [*times[1:], until], strict=True)]
    return max(gaps, default=0.0)


def test_pings_stop_while_a_capture_thread_hangs_and_resume_after(
    agent_factory: Callable[..., AgentProcess], notify_socket: NotifySocket
) -> None:
    sections = {
        "device": {"id": "watchdog"},
        "cameras": [
            {
                "id": "square",
                "source": "sim://walking_person?seed=1",
                "fps": 8,
                "resolution": "320x240",
                "open_timeout_seconds": 1,
                "stall_timeout_seconds": 1,
            }
        ],
        "events": {"quiet_seconds": 1.0, "update_interval_seconds": 0.5},
    }
    env = {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000000"}
    agent = agent_factory(sections, env=env)
    notify_socket.web_port = agent.port
    agent.start()

    # READY once everything is started: the web port already took a connection.
    wait_until(lambda: notify_socket.seen("READY=1"), 10, "READY=1")
    assert notify_socket.web_listening_at_ready is True
    ready_at = next(at for at, lines in notify_socket.messages() if "READY=1" in lines)
    wait_until(lambda: len(notify_socket.pings(ready_at)) >= 4, 10, "four pings")
    pings = notify_socket.pings(ready_at)
    assert longest_gap(pings, pings[-1]) < 3 * PING_SECONDS
    wait_until(
        lambda: any("1 of 1 cameras online" in s for s in notify_socket.statuses()),
        10,
        "a status with the camera online",
    )
    status = notify_socket.statuses()[-1]
    assert "outbox" in status and "0 live viewers" in status, status

    # An open write transaction on the live database: the capture thread blocks in its next
    # event write (the walking person starts one within seconds).
    holder = sqlite3.connect(database_path(agent.data_dir), isolation_level=None, timeout=5)
    holder.execute("BEGIN IMMEDIATE")
    held_at = time.monotonic()
    try:

        def pings_withheld() -> bool:
            now = time.monotonic()
            recent = notify_socket.pings(held_at)
            return now - (recent[-1] if recent else held_at) > 4 * PING_SECONDS

        wait_until(pings_withheld, 75, f"pings to stop (log: {agent.log_path})")
        stopped_at = time.monotonic()
        assert "camera square is stuck: capture thread silent" in agent.log()
        # The loop still answers: the status goes on, saying what is stuck.
        wait_until(
            lambda: any("STUCK: camera square" in s for s in notify_socket.statuses(stopped_at)),
            5,
            "a status naming the stuck camera",
        )
        time.sleep(3)
        assert not notify_socket.pings(stopped_at), "no ping while the camera is stuck"
        assert agent.process is not None and agent.process.poll() is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    released_at = time.monotonic()
    wait_until(lambda: len(notify_socket.pings(released_at)) >= 2, 20, "the pings to resume")
    assert "camera square is alive again" in agent.log()
    assert agent.log().count("camera square is stuck") == 1, "logged once per stuck spell"

    assert agent.stop(signal.SIGTERM) == 0
    wait_until(lambda: notify_socket.seen("STOPPING=1"), 5, "STOPPING=1")
