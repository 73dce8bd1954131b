"""AlertService: the one object the runtime wires in for alerts, reports, state and commands."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import sqlite_utils
from pydantic import ValidationError as PydanticValidationError

from agent.alerts import outbox
from agent.alerts.commands import CommandProcessor, CommandTarget, Outcome, ServiceHandler
from agent.alerts.discovery import DiscoveredCamera, discovery_messages
from agent.alerts.link import MqttLink, StateMessage
from agent.alerts.outbox import MessageKind, OutboxLimits, OutboxRow, PayloadSealer, Seal
from agent.alerts.payloads import (
    CommandReply,
    EventTransitionLike,
    ReportMessage,
    event_message,
    iso_utc,
    jsonable,
)
from agent.alerts.sealing import ReportSealer, SealingError
from agent.alerts.topics import Topics, check_segment
from agent.audit import AuditLog
from agent.config import AgentConfig
from agent.errors import ConfigError, KioskError, StoreError
from agent.health import system_health
from agent.store.database import Database

log = logging.getLogger(__name__)

_COMMAND_QUEUE = 64
_MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024
_VERSION = "0.1.0"
# Queued to the worker to publish health now; no command has an empty name.
_HEALTH_NOW: tuple[str, bytes] = ("", b"")
# Who sends remote commands, as the audit log names it: the broker ACL lets only the command
# centre publish on a kiosk's cmd topics.
COMMAND_ACTOR = "command-centre"
# Commands refused because the queue was full, waiting to be audited by the worker.
_REFUSED_MEMORY = 1024
_DAY_SECONDS = 86400.0


def camera_summary(agent_health: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """Per-camera ``fps`` and ``state`` from the agent's health report.

    The cameras may sit at the top (``cameras``) or under ``parts`` (the runtime's report);
    whatever else a camera entry carries stays in the ``health`` command's full answer.
    """
    cameras = agent_health.get("cameras")
    parts = agent_health.get("parts")
    if not isinstance(cameras, Mapping) and isinstance(parts, Mapping):
        cameras = parts.get("cameras")
    if not isinstance(cameras, Mapping):
        return {}
    summary: dict[str, dict[str, object]] = {}
    for camera_id, entry in cameras.items():
        if isinstance(entry, Mapping):
            summary[str(camera_id)] = {
                key: jsonable(entry[key]) for key in ("fps", "state", "armed") if key in entry
            }
    return summary


def default_client_id(config: AgentConfig) -> str:
    """Stable across restarts: the broker finds the kiosk's session (and queued commands) by it."""
    return config.mqtt.client_id or f"village-kiosk-{config.device.id}"


class AlertService:
    """Outbox writes for the callers, the MQTT link and the command worker behind them.

    ``start``/``stop`` block briefly (thread start/join, a final publish); call them from a
    worker thread (``asyncio.to_thread``) when on the event loop. The ``enqueue_*`` methods run
    inside the caller's write transaction; the publish methods never block on the network.
    """

    def __init__(
        self,
        config: AgentConfig,
        database: Database,
        target: CommandTarget,
        *,
        sealer: PayloadSealer | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._config = config
        # Reports carry personal data (guest registrations). With the command centre's key they
        # are sealed to it at once (the kiosk itself can no longer read them); without it they
        # wait sealed with the kiosk's vault and are sealed to the centre on their way out.
        self._sealer = sealer
        self._report_sealer: ReportSealer | None = None
        if config.mqtt.report_public_key is not None:
            self._report_sealer = ReportSealer.from_file(
                config.mqtt.report_public_key, config.device.id
            )
        elif config.mqtt.enabled:
            # The config refuses this already; a link that could only publish reports in clear
            # must not exist even when a caller built the config some other way.
            raise ConfigError(["mqtt.report_public_key: required when mqtt.enabled is true"])
        self._audit = audit
        self._refused: deque[str] = deque(maxlen=_REFUSED_MEMORY)
        self._database = database
        self._topics = Topics(config.mqtt.prefix, config.device.id)
        self._limits = OutboxLimits(config.mqtt.outbox_max_rows, config.mqtt.outbox_max_bytes)
        self._media_dir = (config.device.data_dir / "media").resolve()
        self._processor = CommandProcessor(target)
        self._target = target
        self._started = time.monotonic()
        self._state_lock = threading.Lock()
        self._camera_states: dict[str, str] = {}
        self._motion: dict[str, bool] = {}
        self._commands: queue.Queue[tuple[str, bytes] | None] = queue.Queue(_COMMAND_QUEUE)
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        outbox.migrate(database)
        self._link: MqttLink | None = None
        if config.mqtt.enabled:
            self._link = MqttLink(
                config=config.mqtt,
                client_id=default_client_id(config),
                topics=self._topics,
                database=database,
                on_command=self._receive_command,
                state_messages=self._state_messages,
                on_connected=self._on_connected,
                prepare=self._wire_payload,
            )

    @property
    def topics(self) -> Topics:
        return self._topics

    def add_commands(self, commands: Mapping[str, ServiceHandler]) -> None:
        """The village services' remote commands; before ``start``, which runs the worker."""
        self._processor.add_service_commands(commands)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._link is None:
            log.info("MQTT disabled: alerts wait in the outbox")
            return
        self._stop.clear()
        self._link.start()
        self._worker = threading.Thread(target=self._work, name="alert-worker", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._stop.set()
            # A full queue needs no marker: the worker checks the stop flag after each item.
            with contextlib.suppress(queue.Full):
                self._commands.put_nowait(None)
            self._worker.join(10)
            self._worker = None
        if self._link is not None:
            self._link.stop()

    def liveness_problem(self, now: float) -> str | None:
        """The outbox drain's problem for the watchdog (None: alive, or MQTT is off)."""
        return self._link.liveness_problem(now) if self._link is not None else None

    def health(self) -> dict[str, object]:
        with self._database.read() as db:
            stats = outbox.stats(db)
        link = self._link.stats() if self._link else {"connected": False}
        return {
            "enabled": self._link is not None,
            **link,
            "outbox": {
                "depth": stats.depth,
                "bytes": stats.bytes,
                "oldest_age_seconds": stats.oldest_age_seconds,
                "dropped": stats.dropped,
            },
        }

    # ---- outbox writes (inside the caller's transaction) ------------------------------------

    def enqueue_event(self, db: sqlite_utils.Database, transition: EventTransitionLike) -> None:
        """Queue the event message, and its snapshot on the camera's retained topic."""
        camera_id = check_segment("camera", transition.camera_id)
        message_id = outbox.new_message_id()
        message = event_message(message_id, outbox.next_sequence(db), transition)
        outbox.enqueue(
            db,
            topic=self._topics.events,
            payload=message.model_dump_json().encode(),
            kind=MessageKind.ALERT,
            limits=self._limits,
            message_id=message_id,
        )
        if transition.snapshot_path is not None and transition.kind != "end":
            jpeg = self._read_snapshot(transition.snapshot_path)
            if jpeg is not None:
                outbox.enqueue(
                    db,
                    topic=self._topics.camera_snapshot(camera_id),
                    payload=jpeg,
                    kind=MessageKind.SNAPSHOT,
                    limits=self._limits,
                    retain=True,
                    replace_pending=True,
                )
        self._wake()

    def enqueue_report(
        self, db: sqlite_utils.Database, kind: str, payload: dict[str, object]
    ) -> None:
        topic = self._topics.report(kind)
        message_id = outbox.new_message_id()
        message = ReportMessage(
            id=message_id,
            seq=outbox.next_sequence(db),
            kind=kind,
            ts=iso_utc(time.time()),
            data=jsonable(payload),
        )
        if self._report_sealer is not None:
            stored, seal = self._report_sealer.seal(message), Seal.CENTRE
        elif self._sealer is not None:
            stored, seal = self._sealer.seal(message.model_dump_json().encode()), Seal.VAULT
        else:
            stored, seal = message.model_dump_json().encode(), Seal.NONE
        outbox.enqueue(
            db,
            topic=topic,
            payload=stored,
            kind=MessageKind.REPORT,
            limits=self._limits,
            message_id=message_id,
            seal=seal,
        )
        self._wake()

    def _wire_payload(self, row: OutboxRow) -> bytes:
        """What the link publishes for ``row`` (drain thread): a report always sealed to the
        command centre, whatever state it waited in; raises KioskError when it cannot be."""
        if row.seal is Seal.CENTRE:
            return row.payload
        if row.kind != MessageKind.REPORT:
            if row.seal is not Seal.NONE:
                raise SealingError("a sealed message that is not a report cannot be published")
            return row.payload
        if self._report_sealer is None:
            raise SealingError("no command centre key (mqtt.report_public_key) to seal it to")
        if row.seal is Seal.VAULT:
            if self._sealer is None:
                raise SealingError("sealed with the kiosk's vault, which was not given")
            plain = self._sealer.unseal(row.payload)
        else:
            plain = row.payload  # written before reports were sealed at all
        try:
            message = ReportMessage.model_validate_json(plain)
        except PydanticValidationError as exc:
            # Only the error's kind: its text would quote the (personal) payload.
            raise SealingError("the waiting report is not a report message") from exc
        return self._report_sealer.seal(message)

    def purge_expired(self, now: float | None = None) -> int:
        """Delete reports that waited longer than ``storage.guest_retention_days``.

        A registration report holds what the guest register may keep only that long; a broker
        out of reach for longer must not make the outbox the place where it outlives the
        register. Counted as ``report_expired`` in the outbox drops; returns how many went.
        """
        days = self._config.storage.guest_retention_days
        cutoff = (time.time() if now is None else now) - days * _DAY_SECONDS
        with self._database.write() as db:
            expired = outbox.expire(db, MessageKind.REPORT, cutoff)
        if expired:
            log.warning(
                "outbox: %d undelivered report(s) older than the guest retention (%g days)"
                " deleted; counted as report_expired",
                expired,
                days,
            )
        return expired

    def _read_snapshot(self, relative: str | Path) -> bytes | None:
        path = (self._media_dir / relative).resolve()
        if not path.is_relative_to(self._media_dir):
            log.warning("snapshot path outside the media directory ignored")
            return None
        try:
            with path.open("rb") as handle:
                data = handle.read(_MAX_SNAPSHOT_BYTES + 1)
        except OSError as exc:
            # The event itself still goes out; only its picture is missing.
            log.warning("cannot read snapshot %s: %s", relative, exc.strerror)
            return None
        if len(data) > _MAX_SNAPSHOT_BYTES:
            log.warning("snapshot %s larger than %d bytes not sent", relative, _MAX_SNAPSHOT_BYTES)
            return None
        return data

    def _wake(self) -> None:
        if self._link is not None:
            self._link.wake()

    # ---- live state (retained, republished on every connect) -------------------------------

    def publish_camera_state(self, camera_id: str, state: str) -> None:
        topic = self._topics.camera_state(camera_id)
        with self._state_lock:
            changed = self._camera_states.get(camera_id) != state
            self._camera_states[camera_id] = state
        if changed and self._link is not None:
            self._link.publish(topic, state.encode(), retain=True)

    def publish_motion(self, camera_id: str, active: bool) -> None:
        topic = self._topics.camera_motion(camera_id)
        with self._state_lock:
            changed = self._motion.get(camera_id) != active
            self._motion[camera_id] = active
        if changed and self._link is not None:
            self._link.publish(topic, b"ON" if active else b"OFF", retain=True)

    def _state_messages(self) -> list[StateMessage]:
        messages = [StateMessage(self._topics.status, b"online")]
        with self._state_lock:
            states = dict(self._camera_states)
            motion = dict(self._motion)
        messages += [
            StateMessage(self._topics.camera_state(camera), state.encode())
            for camera, state in states.items()
        ]
        messages += [
            StateMessage(self._topics.camera_motion(camera), b"ON" if active else b"OFF")
            for camera, active in motion.items()
        ]
        if self._config.mqtt.home_assistant_discovery:
            cameras = [DiscoveredCamera(c.id, c.name) for c in self._config.cameras]
            messages += [
                StateMessage(topic, payload)
                for topic, payload in discovery_messages(
                    topics=self._topics,
                    discovery_prefix=self._config.mqtt.discovery_prefix,
                    device_name=self._config.device.name,
                    cameras=cameras,
                    version=_VERSION,
                )
            ]
        return messages

    # ---- commands and periodic health (the alert worker thread) ----------------------------

    def _receive_command(self, name: str, payload: bytes) -> None:
        """Runs on paho's thread: hand over, never execute (a snapshot may take a while)."""
        try:
            self._commands.put_nowait((name, payload))
        except queue.Full:
            log.warning("command queue full; command %s refused", name)
            # Audited by the worker: a database write has no place on paho's thread.
            self._refused.append(name)
            self._reply(name, CommandReply(id=None, ok=False, error="kiosk busy, try again"))

    def _on_connected(self) -> None:
        """Runs on paho's thread: a fresh health right after every connect (after an outage
        the command centre wants the kiosk's state now, not at the next interval)."""
        with contextlib.suppress(queue.Full):
            self._commands.put_nowait(_HEALTH_NOW)

    def _work(self) -> None:
        interval = self._config.mqtt.health_interval_seconds
        next_health = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= next_health:
                # Until the link is up, try again soon so the first health follows the connect.
                published = self._publish_health()
                next_health = time.monotonic() + (interval if published else 1.0)
            try:
                item = self._commands.get(timeout=max(0.0, next_health - time.monotonic()))
            except queue.Empty:
                continue
            if item is None:
                return
            if item is _HEALTH_NOW:
                next_health = time.monotonic()
                continue
            name, payload = item
            self._run_command(name, payload)

    def _run_command(self, name: str, payload: bytes) -> None:
        outcome = self._processor.handle(name, payload)
        if outcome.snapshot is not None and self._link is not None:
            camera_id, jpeg = outcome.snapshot
            self._link.publish(self._topics.camera_snapshot(camera_id), jpeg, retain=True)
        self._reply(name, outcome.reply)
        if not outcome.reply.ok:
            log.info("command %s rejected: %s", name, outcome.reply.error)
        self._audit_refused()
        self._audit_command(name, outcome)

    def _audit_command(self, name: str, outcome: Outcome) -> None:
        reply = outcome.reply
        detail = "ok" if reply.ok else f"error: {reply.error}"
        if outcome.repeated:
            detail += " (repeated request, not run again)"
        if reply.id is not None:
            detail += f"; request {reply.id}"
        self._record(self._command_action(name), outcome.camera or self._config.device.id, detail)

    def _audit_refused(self) -> None:
        while True:
            try:
                name = self._refused.popleft()
            except IndexError:
                return
            self._record(self._command_action(name), self._config.device.id, "error: kiosk busy")

    def _command_action(self, name: str) -> str:
        """``command.<name>`` for a known command; anything else arrived on the topic is not
        trusted into the action column as it is."""
        return f"command.{name}" if name in self._processor.known() else "command.unknown"

    def _record(self, action: str, subject: str, detail: str) -> None:
        if self._audit is None:
            return
        try:
            self._audit.record(COMMAND_ACTOR, action, subject, detail)
        except KioskError as exc:
            # The command has run; failing the worker would stop every later command too.
            log.error("remote command %s not written to the audit log: %s", action, exc)

    def _reply(self, name: str, reply: CommandReply) -> None:
        if self._link is not None:
            topic = self._topics.command_result(name)
            # "id" stays even when null (an unreadable request), so every reply has one.
            body = {"id": reply.id, **reply.model_dump(exclude_none=True)}
            self._link.publish(topic, json.dumps(body, ensure_ascii=False).encode())

    def health_message(self) -> dict[str, object]:
        """The periodic ``health`` payload: host readings, cameras, outbox and link."""
        message: dict[str, object] = {
            "ts": iso_utc(time.time()),
            "device": self._config.device.id,
        }
        try:
            agent = dict(self._target.health())
        except Exception:  # health must still go out when a part misbehaves
            log.exception("agent health unavailable")
            agent = {"status": "unknown", "problems": ["agent health unavailable"]}
        for key in ("status", "problems"):
            if key in agent:
                message[key] = jsonable(agent[key])
        message["cameras"] = camera_summary(agent)
        message["system"] = {
            "uptime_seconds": round(time.monotonic() - self._started, 1),
            **system_health(self._config.device.data_dir),
        }
        link = self.health()
        message["outbox"] = link.pop("outbox")
        message["link"] = link
        return message

    def _publish_health(self) -> bool:
        if self._link is None or not self._link.connected:
            return False
        try:
            message = self.health_message()
        except StoreError as exc:
            log.warning("health not published: %s", exc)
            return True
        return self._link.publish(self._topics.health, json.dumps(jsonable(message)).encode())
