"""The MQTT link: one paho client (its own network thread) fed from the outbox by a drain thread.

Threads: paho's network thread runs the callbacks, which only record facts (an ack, a
connection change, an incoming command) and wake the drain thread. The drain thread owns the
in-flight map (paho message id → outbox seq), publishes outbox rows in seq order within the
in-flight window, and deletes rows once the broker acknowledged them. Nothing here runs on the
asyncio loop.

Ordering across a reconnect: paho re-sends the messages that were in flight when the link
dropped (with DUP) right after the new CONNACK, so the drain thread publishes nothing new until
those are acknowledged; a consumer therefore sees every message first in outbox order. After a
process restart the in-flight map is gone and draining starts again at the oldest row, which
re-sends at most the unacknowledged window; message ids let consumers drop those duplicates.
"""

from __future__ import annotations

import logging
import sqlite3
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.alerts import outbox
from agent.alerts.topics import Topics
from agent.config import MqttConfig
from agent.errors import AlertLinkError, KioskError, StoreError
from agent.store.database import Database

log = logging.getLogger(__name__)

# How long the broker keeps the kiosk's session (its command subscription and the commands
# queued for it) while the kiosk is offline.
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
# Rows enqueued by another connection or a missed wake-up are still found within this time.
_POLL_SECONDS = 1.0
# With rows in flight, acks too few to have woken the drain thread are collected this soon.
_STRAGGLER_SECONDS = 0.05
# Reconnects in a row with the same oldest message unacknowledged before it is suspected (and
# sent alone), and again, sent alone, before it is dropped as the cause.
_POISON_RECONNECTS = 3
# paho re-sends in-flight messages on reconnect; should that not happen, start over instead of
# waiting forever (duplicates are harmless, a stalled outbox is not).
_RESEND_GRACE_SECONDS = 30.0
# The same connection problem (or a reconnect) is logged again only after this long.
_REPEAT_LOG_SECONDS = 60.0
# Room in paho's own in-flight limit for status, health and command replies.
_CONTROL_SLACK = 20
# The drain thread turns at least every second; one turn may wait out SQLite's busy timeout
# (30 s) or a client replacement. Silent longer than this while connected, it is hung.
DRAIN_LIVENESS_SECONDS = 45.0


@dataclass(frozen=True)
class StateMessage:
    """A message (re)published on every connect: status, camera states, discovery."""

    topic: str
    payload: bytes
    retain: bool = True


@dataclass(frozen=True)
class _Ack:
    mid: int
    failed: bool
    reason: str


def read_password(config: MqttConfig) -> str | None:
    if config.password_file is None:
        return None
    try:
        return config.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise AlertLinkError(f"cannot read mqtt.password_file {config.password_file}") from exc


class MqttLink:
    """Connects, keeps the connection, drains the outbox and hands commands to ``on_command``."""

    def __init__(
        self,
        *,
        config: MqttConfig,
        client_id: str,
        topics: Topics,
        database: Database,
        on_command: Callable[[str, bytes], None],
        state_messages: Callable[[], list[StateMessage]],
        on_connected: Callable[[], None] | None = None,
        prepare: Callable[[outbox.OutboxRow], bytes] | None = None,
    ) -> None:
        """``prepare`` turns an outbox row into the bytes to publish (sealing what must be
        sealed); a KioskError from it means the row can never be sent and it is dropped."""
        self._config = config
        self._prepare = prepare
        self._client_id = client_id
        self._topics = topics
        self._database = database
        self._on_command = on_command
        self._state_messages = state_messages
        self._on_connected = on_connected
        self._client: mqtt.Client | None = None
        self._drain_thread: threading.Thread | None = None
        # The drain thread's last sign of life (monotonic), renewed at every turn of its loop.
        self._beat = time.monotonic()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._acks: deque[_Ack] = deque()
        self._ack_batch = max(1, config.inflight_window // 4)
        self._lock = threading.Lock()
        self._connected = False
        self._generation = 0
        self._connects = 0
        self._last_problem: str | None = None
        self._refused = False  # paho's thread only: the last CONNACK was a refusal
        self._logged_problem: str | None = None
        self._logged_problem_at = float("-inf")
        self._logged_connect_at = float("-inf")
        # Owned by the drain thread (and by stop() once that thread has ended).
        self._inflight: dict[int, int] = {}
        self._unsettled: list[int] = []  # acknowledged, not yet deleted (a failed delete)
        self._published = 0
        self._acked = 0
        self._rejected = 0

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._client is not None:
            return
        client = self._build_client()
        self._connect(client)
        self._client = client
        self._stopping.clear()
        client.loop_start()
        self._beat = time.monotonic()
        self._drain_thread = threading.Thread(
            target=self._drain_forever, name="mqtt-outbox", daemon=True
        )
        self._drain_thread.start()
        log.info(
            "MQTT link starting: %s:%d, MQTT %s, client id %s",
            self._config.host,
            self._config.port,
            self._config.protocol,
            self._client_id,
        )
        if self._config.plaintext_off_host:
            # Allowed by mqtt.allow_plaintext (the config refuses it otherwise); said at every
            # start so a forgotten exception does not go unnoticed.
            log.warning(
                "MQTT link to %s:%d is NOT encrypted (mqtt.allow_plaintext = true): alerts,"
                " snapshots and the command channel cross the network in clear; anyone on the"
                " path can read them and inject commands. Set mqtt.tls_ca to use TLS.",
                self._config.host,
                self._config.port,
            )

    def _connect(self, client: mqtt.Client) -> None:
        try:
            if self._config.protocol == "5":
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
                # paho's default for MQTT 5 is a clean start on the first connect, which would
                # throw away the commands queued for us while we were off.
                client.connect_async(
                    self._config.host,
                    self._config.port,
                    self._config.keepalive_seconds,
                    clean_start=False,
                    properties=properties,
                )
            else:
                client.connect_async(
                    self._config.host, self._config.port, self._config.keepalive_seconds
                )
        except ValueError as exc:
            raise AlertLinkError(f"invalid MQTT broker address: {exc}") from exc

    def _replace_client(self) -> None:
        """A fresh paho client under the same client id (drain thread only).

        paho keeps its own copy of every unacknowledged message and re-sends it on each
        reconnect; the only way to forget one is a new client. The broker session (command
        subscription, queued commands) belongs to the client id and survives.
        """
        old = self._client
        if old is not None:
            old.disconnect()
            old.loop_stop()
        self._acks.clear()
        self._inflight.clear()
        with self._lock:
            self._connected = False
        client = self._build_client()
        self._connect(client)
        self._client = client
        client.loop_start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``stopped``, wait briefly for outstanding acks, disconnect without a will."""
        client = self._client
        if client is None:
            return
        self._stopping.set()
        self._wake.set()
        if self._drain_thread is not None:
            self._drain_thread.join(timeout)
            self._drain_thread = None
        deadline = time.monotonic() + timeout
        try:
            if self.connected:
                info = client.publish(self._topics.status, b"stopped", qos=1, retain=True)
                try:
                    info.wait_for_publish(timeout)
                except (RuntimeError, ValueError) as exc:
                    log.warning("could not publish the stopped status: %s", exc)
                while self._inflight and self.connected and time.monotonic() < deadline:
                    self._wake.wait(0.05)
                    self._wake.clear()
                    self._settle_acks()
            self._settle_acks()
        except (StoreError, sqlite3.Error) as exc:
            # The rows stay and are sent again next time; stopping must still disconnect.
            log.warning("could not record the last acks: %s", exc)
        finally:
            client.disconnect()
            client.loop_stop()
            with self._lock:
                self._connected = False
            self._client = None
            self._inflight.clear()
        log.info("MQTT link stopped")

    def wake(self) -> None:
        """New rows may be in the outbox (or will be, once the caller's transaction commits)."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    def liveness_problem(self, now: float | None = None) -> str | None:
        """Why the outbox stopped draining, or None while it drains (or need not: the link is
        not started, is stopping, or the broker is not connected, when rows rightly wait).

        Stuck: the drain thread has ended, or it has shown no sign of life for longer than
        :data:`DRAIN_LIVENESS_SECONDS` while the broker is connected.
        """
        thread = self._drain_thread
        if thread is None or self._stopping.is_set():
            return None
        if not thread.is_alive():
            return "outbox drain thread ended"
        if not self.connected:
            return None
        now = time.monotonic() if now is None else now
        silent = now - self._beat
        if silent <= DRAIN_LIVENESS_SECONDS:
            return None
        return (
            f"outbox drain thread silent for {silent:.1f} s while the broker is connected"
            f" (limit {DRAIN_LIVENESS_SECONDS:g} s)"
        )

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> bool:
        """Publish outside the outbox (state, health, replies); False when not connected.

        Nothing is queued while offline: state messages are republished on connect instead.
        """
        client = self._client
        if client is None or not self.connected:
            return False
        info = client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def stats(self) -> dict[str, object]:
        with self._lock:
            return {
                "connected": self._connected,
                "connects": self._connects,
                "published": self._published,
                "acked": self._acked,
                "rejected": self._rejected,
                "inflight": len(self._inflight),
                "last_problem": self._last_problem,
            }

    # ---- paho client and callbacks (paho's network thread) ---------------------------------

    def _build_client(self) -> mqtt.Client:
        config = self._config
        v5 = config.protocol == "5"
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
        )
        # A raising callback would end paho's network thread; ours catch their own errors.
        client.suppress_exceptions = True
        client.max_inflight_messages_set(config.inflight_window + _CONTROL_SLACK)
        # paho annotates int seconds but computes with floats; sub-second backoff is fine.
        client.reconnect_delay_set(
            cast(int, config.reconnect_min_seconds), cast(int, config.reconnect_max_seconds)
        )
        client.will_set(self._topics.status, b"offline", qos=1, retain=True)
        if config.username:
            client.username_pw_set(config.username, read_password(config))
        if config.tls_ca or config.tls_cert:
            try:
                client.tls_set(
                    ca_certs=str(config.tls_ca) if config.tls_ca else None,
                    certfile=str(config.tls_cert) if config.tls_cert else None,
                    keyfile=str(config.tls_key) if config.tls_key else None,
                    cert_reqs=ssl.CERT_REQUIRED,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise AlertLinkError(f"cannot set up TLS for MQTT: {exc}") from exc
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _note_problem(self, problem: str) -> None:
        with self._lock:
            self._last_problem = problem
            now = time.monotonic()
            # A broker that accepts and then drops us would otherwise log twice a second.
            quiet = (
                problem == self._logged_problem
                and now - self._logged_problem_at < _REPEAT_LOG_SECONDS
            )
            if not quiet:
                self._logged_problem, self._logged_problem_at = problem, now
        if not quiet:
            log.warning("MQTT link: %s", problem)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._refused = True
            self._note_problem(f"broker refused the connection ({reason_code})")
            return
        with self._lock:
            self._connected = True
            self._generation += 1
            self._connects += 1
            self._last_problem = None
            now = time.monotonic()
            quiet = now - self._logged_connect_at < _REPEAT_LOG_SECONDS
            if not quiet:
                self._logged_connect_at = now
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "MQTT connected to %s:%d (session present: %s)",
            self._config.host,
            self._config.port,
            flags.session_present,
        )
        client.subscribe(self._topics.command_filter, qos=1)
        try:
            messages = self._state_messages()
        except Exception:  # a faulty state source must not break the connection
            log.exception("cannot build the state messages to republish")
            messages = []
        for message in messages:
            client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        self._wake.set()
        if self._on_connected is not None:
            try:
                self._on_connected()
            except Exception:
                log.exception("connect hook failed")

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._note_problem(f"cannot reach broker {self._config.host}:{self._config.port}")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            was_connected = self._connected
            self._connected = False
        if self._stopping.is_set():
            return
        if was_connected:
            self._note_problem(f"disconnected ({reason_code})")
        elif self._refused:
            self._refused = False  # the refusal itself is the problem worth keeping
        else:
            # E.g. a TLS client certificate the broker refused after the handshake.
            self._note_problem(f"connection closed before the broker accepted it ({reason_code})")

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        # paho calls this holding its message lock: record and wake, nothing more. Waking for
        # every ack would delete rows one small transaction at a time; a quarter window at once
        # keeps the pipe full at a fraction of the cost (stragglers go with the next poll).
        self._acks.append(_Ack(mid, reason_code.is_failure, str(reason_code)))
        if len(self._acks) >= self._ack_batch:
            self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        name = self._topics.command_name(message.topic)
        if name is None:
            return
        try:
            self._on_command(name, bytes(message.payload))
        except Exception:  # one bad command must not end the network thread
            log.exception("cannot hand over command %s", name)

    # ---- drain thread ----------------------------------------------------------------------

    def _drain_forever(self) -> None:
        cursor = 0
        inflight_generation = 0
        seen_generation = 0
        resend_wait_since: float | None = None
        # Poison handling. The oldest in-flight row across reconnects is the suspect; when the
        # connection keeps dying with it unacknowledged, the window shrinks to one message up
        # to ``careful_until`` so a message that breaks the connection is caught alone (the
        # one before it may just have lost its PUBACK in the hang-up), and only then dropped.
        suspect: int | None = None
        suspect_losses = 0
        careful_until: int | None = None
        while True:
            self._beat = time.monotonic()
            # Acks wake this thread in batches; the last few of a burst are picked up soon.
            self._wake.wait(_STRAGGLER_SECONDS if self._inflight else _POLL_SECONDS)
            self._wake.clear()
            try:
                self._settle_acks()
                if self._stopping.is_set():
                    return
                with self._lock:
                    connected = self._connected
                    generation = self._generation
                if generation != seen_generation:
                    head = min(self._inflight.values()) if self._inflight else None
                    if head is not None and head == suspect:
                        suspect_losses += generation - seen_generation
                    else:
                        suspect, suspect_losses = head, 0
                    seen_generation = generation
                    if suspect is not None and suspect_losses >= _POISON_RECONNECTS:
                        if careful_until is None:
                            careful_until = max(self._inflight.values())
                            log.warning(
                                "connection keeps dropping with outbox message %d in flight;"
                                " sending one message at a time",
                                suspect,
                            )
                            self._replace_client()
                            cursor = suspect - 1
                        else:
                            self._drop_poison(suspect, suspect_losses)
                            cursor = suspect
                        suspect, suspect_losses = None, 0
                        resend_wait_since = None
                        continue
                if not connected:
                    continue
                if self._inflight and generation != inflight_generation:
                    now = time.monotonic()
                    if resend_wait_since is None:
                        resend_wait_since = now
                    elif now - resend_wait_since > _RESEND_GRACE_SECONDS:
                        log.warning("in-flight messages not re-sent after reconnect; resending")
                        self._replace_client()
                        cursor = 0
                        resend_wait_since = None
                    continue
                resend_wait_since = None
                inflight_generation = generation
                if careful_until is not None and cursor >= careful_until and not self._inflight:
                    careful_until = None
                    log.info("outbox back to a full in-flight window")
                window = 1 if careful_until is not None else self._config.inflight_window
                cursor = self._publish_rows(cursor, window)
            except Exception:  # the drain thread must outlive any one failure
                log.exception("outbox drain failed; retrying")
                self._stopping.wait(_POLL_SECONDS)

    def _drop_poison(self, seq: int, losses: int) -> None:
        with self._database.write() as db:
            outbox.delete(db, [seq])
        with self._lock:
            self._rejected += 1
        log.error(
            "outbox message %d dropped: the broker closed the connection %d times while it was"
            " the only message in flight (refused by the ACL, or larger than the broker takes?)",
            seq,
            losses,
        )
        self._replace_client()

    def _publish_rows(self, cursor: int, window: int) -> int:
        client = self._client
        room = window - len(self._inflight)
        if client is None or room <= 0:
            return cursor
        with self._database.read() as db:
            rows = outbox.fetch_after(db, cursor, room)
        published = 0
        for row in rows:
            payload = self._wire_payload(row)
            if payload is None:
                cursor = row.seq
                continue
            info = client.publish(row.topic, payload, qos=row.qos, retain=row.retain)
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                break
            # NO_CONN still leaves the message in paho's session; it goes out on reconnect.
            self._inflight[info.mid] = row.seq
            cursor = row.seq
            published += 1
        if published:
            with self._lock:
                self._published += published
        return cursor

    def _wire_payload(self, row: outbox.OutboxRow) -> bytes | None:
        """The payload as it goes on the wire; one that cannot be prepared (a kiosk-sealed row
        whose key is gone) is dropped and counted, since retrying can never succeed."""
        try:
            if self._prepare is not None:
                return self._prepare(row)
            if row.seal is not outbox.Seal.NONE:
                raise KioskError("no way to prepare a sealed payload was given to the link")
            return row.payload
        except KioskError as exc:
            with self._database.write() as db:
                outbox.delete(db, [row.seq])
            with self._lock:
                self._rejected += 1
            log.error(
                "outbox message %d dropped: its payload cannot be prepared for sending (%s)",
                row.seq,
                exc,
            )
            return None

    def _settle_acks(self) -> None:
        acked: list[int] = self._unsettled
        self._unsettled = []
        rejected: list[_Ack] = []
        while True:
            try:
                ack = self._acks.popleft()
            except IndexError:
                break
            seq = self._inflight.pop(ack.mid, None)
            if seq is None:
                continue  # status, health or a command reply
            acked.append(seq)
            if ack.failed:
                rejected.append(ack)
        if not acked:
            return
        # A rejected message (e.g. not authorized) would be rejected forever: count it and
        # let it go rather than block everything behind it.
        try:
            with self._database.write() as db:
                outbox.delete(db, acked)
        except (StoreError, sqlite3.Error):
            # Keep them for the next round; without it they would be sent again after a restart.
            self._unsettled = acked
            raise
        with self._lock:
            self._acked += len(acked) - len(rejected)
            self._rejected += len(rejected)
            total_rejected = self._rejected
        if rejected:
            log.warning(
                "broker rejected %d outbox message(s) (%s); %d rejected so far",
                len(rejected),
                rejected[0].reason,
                total_rejected,
            )
