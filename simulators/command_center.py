"""A county command centre for tests and demos: listens to kiosks, stores alerts, sends commands.

It subscribes to one or many kiosks (``<prefix>/<kiosk>/#``), keeps every event and report once
(duplicates are recognised by their message id and counted), stores snapshots, tracks each
kiosk's status, and reports gaps in each kiosk's message sequence numbers. Commands go to
``<prefix>/<kiosk>/cmd/<name>`` and the reply is awaited on ``…/cmd/<name>/result``.

Reports arrive sealed to the centre's X25519 key (agent/alerts/sealing.py); with its private key
(``report_key``) the centre opens them and keeps the full report, without it it keeps the
sealed form as it came (metadata only readable) and counts it as unopened.

    python -m simulators.command_center keygen --private centre.key --public centre.pub
    python -m simulators.command_center --report-key centre.key listen --port 1883 --db a.sqlite3
    python -m simulators.command_center send --port 1883 --kiosk kiosk-1 arm --camera cam1
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.alerts.sealing import SealingError, load_private_key, open_report
from agent.errors import KioskError

SESSION_EXPIRY_SECONDS = 24 * 3600


class CommandTimeoutError(TimeoutError):
    """No reply to a command arrived in time."""


@dataclass(frozen=True)
class Alert:
    """One event or report; ``message`` is the opened report, ``raw`` the bytes as they came."""

    kiosk: str
    topic: str
    message: dict[str, Any]
    received_at: float
    raw: bytes = b""


@dataclass(frozen=True)
class ReportKeys:
    private: Path
    public: Path


def generate_report_keys(private: Path, public: Path) -> ReportKeys:
    """A new X25519 key pair as PEM, like ``openssl genpkey -algorithm X25519`` and
    ``openssl pkey -pubout`` make: the private key (0600) stays at the centre, the public
    key goes to every kiosk as ``mqtt.report_public_key``."""
    key = X25519PrivateKey.generate()
    private.parent.mkdir(parents=True, exist_ok=True)
    public.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ReportKeys(private, public)


class CommandCenter:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        prefix: str = "village",
        kiosks: Sequence[str] = (),
        client_id: str = "command-centre",
        username: str | None = None,
        password: str | None = None,
        protocol: str = "5",
        tls_ca: Path | None = None,
        store_path: Path | None = None,
        snapshot_dir: Path | None = None,
        report_key: Path | X25519PrivateKey | None = None,
        echo: bool = False,
    ) -> None:
        self.host = host
        self._report_key = (
            load_private_key(report_key) if isinstance(report_key, Path) else report_key
        )
        self._unopened: dict[str, int] = defaultdict(int)
        self.port = port
        self.prefix = prefix
        self.kiosks = tuple(kiosks)
        self.echo = echo
        self._v5 = protocol == "5"
        self._lock = threading.Condition()
        self._connected = False
        self._alerts: list[Alert] = []
        self._seen: set[tuple[str, str]] = set()
        self._duplicates: dict[str, int] = defaultdict(int)
        self._seqs: dict[str, set[int]] = defaultdict(set)
        self._statuses: dict[str, list[str]] = defaultdict(list)
        self._camera_states: dict[tuple[str, str], str] = {}
        self._motion: dict[tuple[str, str], str] = {}
        self._snapshots: dict[tuple[str, str], bytes] = {}
        self._snapshot_count = 0
        self._health: dict[str, dict[str, Any]] = {}
        self._replies: dict[str, dict[str, Any]] = {}
        self._replies_by_command: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self._snapshot_dir = snapshot_dir
        self._store: sqlite3.Connection | None = None
        if store_path is not None:
            self._open_store(store_path)
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self._v5 else False,
        )
        self._client.max_inflight_messages_set(100)
        self._client.reconnect_delay_set(0.1, 1)  # type: ignore[arg-type]
        if username:
            self._client.username_pw_set(username, password)
        if tls_ca:
            self._client.tls_set(ca_certs=str(tls_ca))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> CommandCenter:
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
            self._client.connect_async(
                self.host, self.port, 30, clean_start=False, properties=properties
            )
        else:
            self._client.connect_async(self.host, self.port, 30)
        self._client.loop_start()
        if not self.wait_for(lambda: self._connected, timeout):
            self.stop()
            raise ConnectionError(f"cannot connect to the broker at {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> CommandCenter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    # ---- what arrived ----------------------------------------------------------------------

    def wait_for(self, condition: Callable[[], object], timeout: float) -> bool:
        """Wait until ``condition()`` (evaluated under the centre's lock) is truthy."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.2))
            return True

    def events(self, kiosk: str | None = None) -> list[dict[str, Any]]:
        return [a.message for a in self.alerts(kiosk) if a.topic.endswith("/events")]

    def reports(self, kiosk: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        wanted = f"/report/{kind}" if kind else "/report/"
        return [a.message for a in self.alerts(kiosk) if wanted in a.topic]

    def alerts(self, kiosk: str | None = None) -> list[Alert]:
        with self._lock:
            return [a for a in self._alerts if kiosk is None or a.kiosk == kiosk]

    def unopened(self, kiosk: str) -> int:
        """Reports from ``kiosk`` kept sealed: no key given, or it did not open them."""
        with self._lock:
            return self._unopened.get(kiosk, 0)

    def duplicates(self, kiosk: str | None = None) -> int:
        with self._lock:
            if kiosk is None:
                return sum(self._duplicates.values())
            return self._duplicates.get(kiosk, 0)

    def gaps(self, kiosk: str) -> list[int]:
        """Sequence numbers missing between the lowest and highest seen from ``kiosk``."""
        with self._lock:
            seen = self._seqs.get(kiosk, set())
            if not seen:
                return []
            return sorted(set(range(min(seen), max(seen) + 1)) - seen)

    def order_violations(self, kiosk: str) -> list[tuple[str, int, int]]:
        """(camera, previous seq, seq) wherever a camera's events arrived out of order."""
        last: dict[str, int] = {}
        problems = []
        for event in self.events(kiosk):
            camera, seq = event.get("camera", ""), int(event.get("seq", 0))
            if camera in last and seq < last[camera]:
                problems.append((camera, last[camera], seq))
            last[camera] = seq
        return problems

    def statuses(self, kiosk: str) -> list[str]:
        with self._lock:
            return list(self._statuses.get(kiosk, []))

    def status(self, kiosk: str) -> str | None:
        history = self.statuses(kiosk)
        return history[-1] if history else None

    def camera_state(self, kiosk: str, camera: str) -> str | None:
        with self._lock:
            return self._camera_states.get((kiosk, camera))

    def motion(self, kiosk: str, camera: str) -> str | None:
        with self._lock:
            return self._motion.get((kiosk, camera))

    def snapshot(self, kiosk: str, camera: str) -> bytes | None:
        with self._lock:
            return self._snapshots.get((kiosk, camera))

    def health(self, kiosk: str) -> dict[str, Any] | None:
        with self._lock:
            return self._health.get(kiosk)

    def replies(self, kiosk: str, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._replies_by_command.get((kiosk, name), []))

    def summary(self) -> dict[str, Any]:
        kiosks = sorted({a.kiosk for a in self.alerts()} | set(self._statuses))
        return {
            kiosk: {
                "status": self.status(kiosk),
                "events": len(self.events(kiosk)),
                "reports": len(self.reports(kiosk)),
                "duplicates": self.duplicates(kiosk),
                "gaps": len(self.gaps(kiosk)),
                "unopened_reports": self.unopened(kiosk),
            }
            for kiosk in kiosks
        }

    # ---- commands --------------------------------------------------------------------------

    def send_command(
        self,
        kiosk: str,
        name: str,
        body: dict[str, Any] | None = None,
        *,
        raw: bytes | None = None,
    ) -> str | None:
        """Publish a request (QoS 1, so it waits in the kiosk's session); returns its id."""
        request_id: str | None = None
        if raw is None:
            request_id = uuid.uuid4().hex
            raw = json.dumps({"id": request_id, **(body or {})}).encode()
        self._client.publish(f"{self.prefix}/{kiosk}/cmd/{name}", raw, qos=1)
        return request_id

    def wait_reply(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        if not self.wait_for(lambda: request_id in self._replies, timeout):
            raise CommandTimeoutError(f"no reply to command {request_id} within {timeout:g} s")
        with self._lock:
            return self._replies[request_id]

    def command(
        self, kiosk: str, name: str, body: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        request_id = self.send_command(kiosk, name, body)
        assert request_id is not None
        return self.wait_reply(request_id, timeout)

    # ---- paho callbacks --------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        filters = [f"{self.prefix}/{k}/#" for k in self.kiosks] or [f"{self.prefix}/+/#"]
        for topic in filters:
            if self._v5:
                client.subscribe(topic, options=SubscribeOptions(qos=1, noLocal=True))
            else:
                client.subscribe(topic, qos=1)
        with self._lock:
            self._connected = True
            self._lock.notify_all()

    def _on_disconnect(self, *_args: Any) -> None:
        with self._lock:
            self._connected = False
            self._lock.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        head = f"{self.prefix}/"
        if not message.topic.startswith(head):
            return
        kiosk, _, rest = message.topic[len(head) :].partition("/")
        payload = bytes(message.payload)
        parts = rest.split("/")
        with self._lock:
            if rest == "status":
                self._statuses[kiosk].append(payload.decode(errors="replace"))
                self._say(f"{kiosk} status {payload.decode(errors='replace')}")
            elif rest == "events" or (parts[0] == "report" and len(parts) == 2):
                self._take_alert(kiosk, message.topic, payload)
            elif parts[0] == "camera" and len(parts) == 3:
                self._take_camera(kiosk, parts[1], parts[2], payload)
            elif rest == "health":
                self._health[kiosk] = _json_object(payload) or {}
            elif parts[0] == "cmd" and len(parts) == 3 and parts[2] == "result":
                reply = _json_object(payload) or {"ok": False, "error": "unreadable reply"}
                self._replies_by_command[(kiosk, parts[1])].append(reply)
                if isinstance(reply.get("id"), str):
                    self._replies[reply["id"]] = reply
                self._say(f"{kiosk} reply {parts[1]} {reply}")
            self._lock.notify_all()

    def _take_alert(self, kiosk: str, topic: str, payload: bytes) -> None:
        message = _json_object(payload)
        if message is None or not isinstance(message.get("id"), str):
            self._say(f"{kiosk} unreadable message on {topic}")
            return
        key = (kiosk, message["id"])
        if key in self._seen:
            self._duplicates[kiosk] += 1
            return
        if isinstance(message.get("sealed"), dict):
            message = self._open(kiosk, message, payload)
        self._seen.add(key)
        if isinstance(message.get("seq"), int):
            self._seqs[kiosk].add(message["seq"])
        alert = Alert(kiosk, topic, message, time.time(), payload)
        self._alerts.append(alert)
        if self._store is not None:
            self._store.execute(
                "INSERT OR IGNORE INTO alerts (kiosk, message_id, topic, seq, payload,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    kiosk,
                    message["id"],
                    topic,
                    message.get("seq"),
                    json.dumps(message, ensure_ascii=False),
                    alert.received_at,
                ],
            )
        label = message.get("type") or message.get("kind")
        self._say(f"{kiosk} {label} {message.get('camera', '')} seq={message.get('seq')}")

    def _open(self, kiosk: str, sealed: dict[str, Any], payload: bytes) -> dict[str, Any]:
        """The opened report, or the sealed one as it came (counted) when it cannot be."""
        if self._report_key is None:
            self._unopened[kiosk] += 1
            return sealed
        try:
            return open_report(self._report_key, kiosk, payload).model_dump()
        except SealingError as exc:
            self._unopened[kiosk] += 1
            self._say(f"{kiosk} report {sealed.get('id')} not opened: {exc}")
            return sealed

    def _take_camera(self, kiosk: str, camera: str, what: str, payload: bytes) -> None:
        if what == "snapshot":
            self._snapshots[(kiosk, camera)] = payload
            self._snapshot_count += 1
            if self._snapshot_dir is not None:
                folder = self._snapshot_dir / kiosk
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{camera}.jpg").write_bytes(payload)
        elif what == "motion":
            self._motion[(kiosk, camera)] = payload.decode(errors="replace")
        elif what == "state":
            self._camera_states[(kiosk, camera)] = payload.decode(errors="replace")

    def _open_store(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        store = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        store.execute(
            "CREATE TABLE IF NOT EXISTS alerts (kiosk TEXT NOT NULL, message_id TEXT NOT NULL,"
            " topic TEXT NOT NULL, seq INTEGER, payload TEXT NOT NULL, received_at REAL NOT NULL,"
            " PRIMARY KEY (kiosk, message_id))"
        )
        # Ids stored by an earlier run still count as seen: a re-sent message is a duplicate.
        for kiosk, message_id, seq in store.execute("SELECT kiosk, message_id, seq FROM alerts"):
            self._seen.add((kiosk, message_id))
            if seq is not None:
                self._seqs[kiosk].add(int(seq))
        self._store = store

    def _say(self, line: str) -> None:
        if self.echo:
            print(time.strftime("%H:%M:%S"), line, flush=True)


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators.command_center")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="village")
    parser.add_argument("--protocol", choices=["5", "3.1.1"], default="5")
    parser.add_argument("--username")
    parser.add_argument("--password-file", type=Path)
    parser.add_argument("--tls-ca", type=Path)
    parser.add_argument("--client-id", default="command-centre")
    parser.add_argument(
        "--report-key", type=Path, help="the centre's X25519 private key (PEM) to open reports"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    keygen = sub.add_parser("keygen", help="make the centre's report key pair (PEM)")
    keygen.add_argument("--private", type=Path, required=True, help="private key (kept here)")
    keygen.add_argument("--public", type=Path, required=True, help="public key (for kiosks)")
    listen = sub.add_parser("listen", help="print and store alerts until Ctrl-C")
    listen.add_argument("--kiosk", action="append", default=[], help="repeat; default: all")
    listen.add_argument("--db", type=Path, help="SQLite file for alerts")
    listen.add_argument("--snapshots", type=Path, help="directory for the latest snapshots")
    send = sub.add_parser("send", help="send one command and print the reply")
    send.add_argument("--kiosk", required=True)
    send.add_argument("name", help="arm, disarm, snapshot, sensitivity, health")
    send.add_argument("--camera")
    send.add_argument("--value", type=float)
    send.add_argument("--timeout", type=float, default=30.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.action == "keygen":
        keys = generate_report_keys(args.private, args.public)
        print(f"private key: {keys.private} (keep it at the centre)")
        print(f"public key:  {keys.public} (mqtt.report_public_key on every kiosk)")
        return 0
    password = args.password_file.read_text().strip() if args.password_file else None
    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "prefix": args.prefix,
        "protocol": args.protocol,
        "username": args.username,
        "password": password,
        "tls_ca": args.tls_ca,
    }
    if args.action == "listen":
        try:
            key = load_private_key(args.report_key) if args.report_key else None
        except KioskError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        centre = CommandCenter(
            **common,
            kiosks=args.kiosk,
            client_id=args.client_id,
            store_path=args.db,
            snapshot_dir=args.snapshots,
            report_key=key,
            echo=True,
        ).start()
        done = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: done.set())
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        done.wait()
        print(json.dumps(centre.summary(), indent=2))
        for kiosk in centre.summary():
            gaps = centre.gaps(kiosk)
            if gaps:
                print(f"{kiosk}: missing seq {gaps[:20]}{' …' if len(gaps) > 20 else ''}")
        centre.stop()
        return 0
    body: dict[str, Any] = {}
    if args.camera:
        body["camera"] = args.camera
    if args.value is not None:
        body["value"] = args.value
    with CommandCenter(**common, kiosks=[args.kiosk], client_id=f"{args.client_id}-send") as centre:
        try:
            reply = centre.command(args.kiosk, args.name, body, timeout=args.timeout)
        except CommandTimeoutError as exc:
            print(exc, file=sys.stderr)
            return 2
    print(json.dumps(reply, ensure_ascii=False))
    return 0 if reply.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
