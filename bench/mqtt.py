"""MQTT outbox benchmark: drain rate of a large backlog and enqueue-to-receipt latency.

Starts a local Mosquitto, fills the SQLite outbox with N event messages while the link is down
(an outage), then starts the link and times how long the backlog takes to reach a
``mosquitto_sub`` subscriber (a C process of its own) and to leave the outbox (rows deleted on
PUBACK). Then measures latency from enqueue to receipt by the command-centre simulator at a
steady trickle, one message per transaction. Last, runs the real agent (``python -m agent``)
with simulated walking-person cameras at 15 fps and measures, for every event, the time from the
capture of the frame where the event's motion began to the start message's receipt at the
command-centre simulator.

    .venv/bin/python bench/mqtt.py [--messages 100000] [--window 50] [--latency-messages 1000]
                                   [--e2e-seconds 120] [--e2e-cameras 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.alerts import outbox
from agent.alerts.service import AlertService
from agent.config import parse_config
from agent.store.database import Database
from simulators.command_center import CommandCenter, generate_report_keys


@dataclass(frozen=True)
class _Transition:
    kind: str
    event_id: str
    camera_id: str
    ts: float
    started_at: float
    ended_at: float | None = None
    score: float | None = 0.42
    boxes: tuple[tuple[float, float, float, float], ...] = ((0.31, 0.22, 0.08, 0.25),)
    zones: tuple[str, ...] = ("gate",)
    snapshot_path: str | None = None


class _Target:
    def arm(self, camera_id: str | None) -> None: ...
    def disarm(self, camera_id: str | None) -> None: ...
    def snapshot_now(self, camera_id: str) -> bytes:
        return b"\xff\xd8\xff\xd9"

    def set_sensitivity(self, camera_id: str | None, value: float) -> None: ...
    def health(self) -> dict[str, object]:
        return {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_broker(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    config = workdir / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "max_queued_messages 0",
        "max_inflight_messages 1000",
        *(["user root"] if os.geteuid() == 0 else []),
    ]
    config.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen(
        [executable, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("mosquitto did not start")


def _enqueue(service: AlertService, database: Database, start: int, count: int, batch: int) -> None:
    for first in range(start, start + count, batch):
        with database.write() as db:
            for number in range(first, min(start + count, first + batch)):
                now = time.time()
                service.enqueue_event(
                    db, _Transition("start", f"ev-{number}", f"cam{number % 4 + 1}", now, now)
                )


def _start_counting_subscriber(port: int, topic: str, count: int) -> subprocess.Popen[str]:
    """mosquitto_sub that exits after ``count`` messages; returns once it is subscribed."""
    executable = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    # Line-buffered, or the SUBACK line would sit in a pipe buffer.
    unbuffered = [shutil.which("stdbuf") or "stdbuf", "-oL"]
    process = subprocess.Popen(
        [*unbuffered, executable, "-p", str(port), "-t", topic, "-q", "1", "-C", str(count), "-d"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "SUBACK" in line:
            break
    stream = process.stdout
    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
    return process


def _depth(database: Database) -> int:
    with database.read() as db:
        return outbox.stats(db).depth


def _wait(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--latency-messages", type=int, default=1000)
    parser.add_argument("--latency-rate", type=float, default=100.0, help="messages per second")
    parser.add_argument("--e2e-seconds", type=float, default=120.0)
    parser.add_argument("--e2e-cameras", type=int, default=2)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mqtt-bench-"))
    port = _free_port()
    broker = _start_broker(workdir, port)
    keys = generate_report_keys(workdir / "centre.key", workdir / "centre.pub")
    config = parse_config(
        {
            "device": {"id": "bench-kiosk", "data_dir": str(workdir / "data")},
            "mqtt": {
                "enabled": True,
                "port": port,
                "inflight_window": args.window,
                "outbox_max_rows": max(200_000, args.messages * 2),
                "report_public_key": str(keys.public),
            },
        },
        environ={},
    )
    database = Database(workdir / "data" / "kiosk.sqlite3")
    service = AlertService(config, database, _Target())
    centre: CommandCenter | None = None
    try:
        started = time.perf_counter()
        _enqueue(service, database, 0, args.messages, batch=500)
        enqueue_seconds = time.perf_counter() - started
        size = (workdir / "data" / "kiosk.sqlite3").stat().st_size
        print(f"backlog: {args.messages} event messages, inflight window {args.window}")
        print(
            f"enqueue: {enqueue_seconds:.2f} s ({args.messages / enqueue_seconds:,.0f} msg/s,"
            f" batches of 500 per transaction), database {size / 1e6:.1f} MB"
        )

        # The drain is timed against a C subscriber in its own process so the figure is the
        # kiosk side's, not the Python command centre's share of this process's GIL.
        counter = _start_counting_subscriber(port, "village/bench-kiosk/events", args.messages)
        started = time.perf_counter()
        service.start()
        _wait(lambda: counter.poll() is not None, 600)
        received = time.perf_counter() - started
        _wait(lambda: _depth(database) == 0, 600)
        drained = time.perf_counter() - started
        print(
            f"drain: all {args.messages} received by a subscriber in {received:.2f} s"
            f" = {args.messages / received:,.0f} msg/s"
            f" (outbox empty, every row acked and deleted, after {drained:.2f} s)"
        )

        centre = CommandCenter(port=port, kiosks=["bench-kiosk"], client_id="bench-centre")
        centre.start()
        before = len(centre.alerts("bench-kiosk"))
        interval = 1.0 / args.latency_rate
        for number in range(args.latency_messages):
            _enqueue(service, database, args.messages + number, 1, batch=1)
            time.sleep(interval)
        _wait(lambda: len(centre.alerts("bench-kiosk")) >= before + args.latency_messages, 60)
        latencies = sorted(
            (alert.received_at - _epoch(alert.message["ts"])) * 1000
            for alert in centre.alerts("bench-kiosk")[before:]
        )
        p50 = statistics.median(latencies)
        p95 = latencies[int(len(latencies) * 0.95) - 1]
        print(
            f"latency enqueue→receipt ({args.latency_messages} msgs at {args.latency_rate:g}/s,"
            f" one transaction each): p50 {p50:.1f} ms, p95 {p95:.1f} ms,"
            f" max {latencies[-1]:.1f} ms"
        )
        if args.e2e_seconds > 0:
            _capture_to_centre(workdir, port, args.e2e_seconds, args.e2e_cameras)
    finally:
        service.stop()
        if centre is not None:
            centre.stop()
        database.close()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _capture_to_centre(workdir: Path, port: int, seconds: float, cameras: int) -> None:
    """The whole path: capture, detection, event, outbox, link, broker, command centre."""
    device = "bench-e2e"
    config = workdir / "e2e.toml"
    lines = [f'[device]\nid = "{device}"\n']
    for number in range(cameras):
        lines.append(
            f'[[cameras]]\nid = "cam{number}"\nsource = "sim://walking_person?seed={number + 1}"\n'
            'fps = 15\nresolution = "640x480"\n'
        )
    keys = generate_report_keys(workdir / "e2e-centre.key", workdir / "e2e-centre.pub")
    lines.append(
        f"[mqtt]\nenabled = true\nport = {port}\n"
        f'report_public_key = "{keys.public}"\n[web]\nenabled = false\n'
    )
    config.write_text("\n".join(lines))
    centre = CommandCenter(port=port, kiosks=[device], client_id="bench-e2e-centre")
    centre.start()
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent",
            "run",
            "--config",
            str(config),
            "--data-dir",
            str(workdir / "e2e-data"),
        ],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(seconds)
    finally:
        agent.terminate()
        agent.wait(30)
        centre.stop()
    starts = [alert for alert in centre.alerts(device) if alert.message.get("type") == "start"]
    if not starts:
        print("capture→centre: no event arrived")
        return
    latencies = sorted(
        (alert.received_at - _epoch(alert.message["started_at"])) * 1000 for alert in starts
    )
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    print(
        f"latency capture→centre ({len(latencies)} events, {cameras} sim cameras"
        f" 640x480 at 15 fps, {seconds:g} s): p50 {statistics.median(latencies):.0f} ms,"
        f" p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms"
    )


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    main()
