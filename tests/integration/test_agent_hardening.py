"""The running agent against what an outsider or a neighbour on the Pi can do: oversized and
endless request bodies, a foreign Host header, reading the health report, reading its files."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.fixtures.agent import AgentProcess
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration

MB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def status_line(sock: socket.socket) -> str:
    sock.settimeout(30)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode("latin-1")


@pytest.fixture
def agent(agent_factory: Callable[..., AgentProcess]) -> AgentProcess:
    sections = {
        "device": {"id": "hardening"},
        "cameras": [
            {
                "id": "square",
                "source": "sim://walking_person?seed=1",
                "fps": 8,
                "resolution": "320x240",
            },
        ],
        "web": {"max_body_bytes": MB},
    }
    process = agent_factory(sections)
    # A data directory left open by an older version, and this shell's everyday umask.
    process.data_dir.mkdir(mode=0o755)
    process.data_dir.chmod(0o755)
    previous = os.umask(0o022)
    try:
        process.start()
    finally:
        os.umask(previous)
    return process


def test_a_huge_declared_body_is_refused_unread(agent: AgentProcess) -> None:
    assert agent.process is not None
    before = rss_bytes(agent.process.pid)
    with socket.create_connection(("127.0.0.1", agent.port)) as sock:
        sock.sendall(
            b"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 400000000\r\n\r\n" + b" " * 65536
        )
        assert status_line(sock).startswith("HTTP/1.1 413")
    assert rss_bytes(agent.process.pid) - before < 30 * MB


def test_an_endless_chunked_body_is_cut_off(agent: AgentProcess) -> None:
    assert agent.process is not None
    before = rss_bytes(agent.process.pid)
    sent = 0
    chunk = b" " * 65536
    with socket.create_connection(("127.0.0.1", agent.port)) as sock:
        sock.sendall(
            b"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.settimeout(30)
        try:
            # 200 MB offered; the agent answers and stops reading long before.
            while sent < 200 * MB:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
                if sent % (4 * MB) == 0:
                    sock.setblocking(False)
                    try:
                        if sock.recv(1, socket.MSG_PEEK):
                            break
                    except BlockingIOError:
                        pass
                    finally:
                        sock.setblocking(True)
                        sock.settimeout(30)
        except (BrokenPipeError, ConnectionResetError):
            pass
        else:
            assert status_line(sock).startswith("HTTP/1.1 413")
    assert sent < 200 * MB, "the agent kept reading an endless body"
    assert rss_bytes(agent.process.pid) - before < 30 * MB
    assert agent.healthz() is not None, "the agent survived"


def test_a_foreign_host_header_gets_no_redirect_there(agent: AgentProcess) -> None:
    with socket.create_connection(("127.0.0.1", agent.port)) as sock:
        sock.sendall(b"GET /api/cameras/ HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        sock.settimeout(10)
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 400")
    assert "evil.example" not in answer


def test_an_anonymous_visitor_reads_the_status_and_nothing_else(agent: AgentProcess) -> None:
    assert agent.healthz() in ({"status": "ok"}, {"status": "degraded"})
    details = agent.health_details()
    assert "system" in details["parts"] and "cameras" in details["parts"]


def test_files_are_for_the_agent_alone(agent: AgentProcess) -> None:
    media = agent.data_dir / "media"

    def snapshot_written() -> bool:
        return any(path.suffix == ".jpg" for path in media.rglob("*"))

    wait_until(snapshot_written, 90, "a motion event with a snapshot")
    assert stat.S_IMODE(agent.data_dir.stat().st_mode) == 0o700
    files = [path for path in agent.data_dir.rglob("*")]
    names = {path.name for path in files}
    assert {"kiosk.sqlite3", "kiosk.sqlite3-wal", "kiosk.sqlite3-shm"} <= names
    assert "personal-data.key" in names
    for path in files:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path.relative_to(agent.data_dir)} is {mode:04o}"


def _failed_sign_ins(agent: AgentProcess, count: int, forwarded: bool) -> list[int]:
    """``count`` sign-ins with unknown names, each claiming another client address."""
    statuses = []
    with httpx.Client(base_url=agent.url, timeout=30) as client:
        token = client.get("/api/session").json()["csrf_token"]
        for index in range(count):
            headers = {"X-CSRF-Token": token}
            if forwarded:
                headers["X-Forwarded-For"] = f"198.51.100.{index % 250 + 1}"
            response = client.post(
                "/api/session",
                json={"username": f"nobody{index}", "password": "not-the-password-1"},
                headers=headers,
            )
            statuses.append(response.status_code)
    return statuses


def test_forwarded_addresses_count_only_from_a_configured_proxy(
    agent_factory: Callable[..., AgentProcess],
) -> None:
    """A client that names its own address in X-Forwarded-For must not get a fresh sign-in
    window per name; a TLS proxy on the Pi that is configured as such does pass the address."""
    direct = agent_factory({"device": {"id": "direct"}}, name="direct")
    direct.start()
    statuses = _failed_sign_ins(direct, 31, forwarded=True)
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429, "the forged addresses were believed"

    proxied = agent_factory(
        {"device": {"id": "proxied"}, "web": {"trusted_proxies": ["127.0.0.1"]}}, name="proxied"
    )
    proxied.start()
    assert _failed_sign_ins(proxied, 31, forwarded=True) == [401] * 31
