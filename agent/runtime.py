"""The composition root: the only place that builds parts from config and wires them together.

Start order: store → alert link → cameras (with their motion watch) → web server. Stop is the
reverse, so nothing publishes into a closed link and no thread outlives the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvicorn

from agent.accounts import AccountStore
from agent.alerts import outbox
from agent.alerts.service import AlertService
from agent.audit import AuditLog
from agent.camera.capture import CameraState, CameraWorker
from agent.camera.pictures import CameraPictures
from agent.config import AgentConfig
from agent.errors import CameraError, KioskError, ValidationError
from agent.health import StuckParts, SystemdNotifier, status_line, system_health
from agent.motion.regions import PrivacyMasker
from agent.privacy import Vault
from agent.rtc.calls import CallService
from agent.rtc.peers import PeerSessions, ice_servers
from agent.rtc.video import LiveCamera, VideoHub
from agent.rtc.views import LiveViews
from agent.store.database import Database
from agent.store.events import EventStore
from agent.store.media import database_path, media_dir
from agent.store.retention import apply_retention
from agent.tls import TlsFiles, prepare_tls
from agent.village.family import FamilyService
from agent.village.homestay import HomestayService
from agent.village.service import TICK_SECONDS, ServiceParts, service_commands
from agent.village.services import SERVICES, build_services
from agent.watch import CameraWatch

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_HOUSEKEEPING_SECONDS = 600.0
# The first retention pass waits this long after start: a big media folder must not hold up
# a start (or, slow every time, turn restarts into a loop) before the agent has settled.
_FIRST_HOUSEKEEPING_SECONDS = 300.0
# Without a systemd watchdog the parts are still checked (and a stuck one logged) this often.
_LIVENESS_SECONDS = 10.0


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the agent: the runtime owns the signals, so the server must not take them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Runtime:
    """Every part of one kiosk agent, built from one config."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.started_at = time.time()
        data_dir = config.device.data_dir
        self.database = Database(database_path(data_dir))
        self.media_dir = media_dir(data_dir)
        self.vault = Vault.load_or_create(data_dir / "secrets" / "personal-data.key")
        self.audit = AuditLog(self.database)
        self.accounts = AccountStore.from_config(self.database, config.web, audit=self.audit)
        self.events = EventStore(self.database, self.media_dir)
        self.alerts = AlertService(
            config, self.database, target=self, sealer=self.vault, audit=self.audit
        )
        self.events.add_listener(self.alerts.enqueue_event)
        # The village services (homestay, ...), built and migrated from one list.
        self.services = build_services(
            ServiceParts(
                database=self.database,
                audit=self.audit,
                accounts=self.accounts,
                vault=self.vault,
                config=config,
                report=self.alerts.enqueue_report,
            )
        )
        # The command centre's commands for the services (a notice for the screen ...).
        self.alerts.add_commands(service_commands(SERVICES, self.services))
        self.homestays = self.services.get_typed(HomestayService)
        self.family = FamilyService(
            self.database,
            self.audit,
            self.accounts,
            camera_ids=[camera.id for camera in config.cameras],
        )
        # HTTPS: the configured certificate checked, or the kiosk's own made or reused; a bad
        # one stops the start here with one clear error.
        self.tls: TlsFiles | None = None
        if config.web.enabled and config.web.https:
            self.tls = prepare_tls(config.web, data_dir / "secrets")
        self.watches: dict[str, CameraWatch] = {}
        self.cameras: dict[str, CameraWorker] = {}
        self.pictures: dict[str, CameraPictures] = {}
        for camera in config.cameras:
            # One masker per camera, for every picture of it that leaves the agent.
            masker = PrivacyMasker(camera.privacy_masks)
            watch = CameraWatch(
                camera,
                config.motion,
                config.events,
                self.events,
                on_motion=self.alerts.publish_motion,
                masker=masker,
            )
            self.watches[camera.id] = watch
            worker = CameraWorker(
                camera, on_frame=watch.on_frame, on_state=self._camera_state_changed
            )
            self.cameras[camera.id] = worker
            self.pictures[camera.id] = CameraPictures(worker.slot, masker)
        self.video = VideoHub(
            config.rtc,
            [LiveCamera(c, self.cameras[c.id].slot, self.pictures[c.id]) for c in config.cameras],
        )
        # Every browser's peer connection (live views and calls) is held here, one registry
        # for the limits and for closing them all at stop.
        self.peers = PeerSessions(config.rtc, servers=ice_servers(config.rtc.ice_servers))
        camera_ids = frozenset(self.cameras)
        self.live: LiveViews | None = (
            LiveViews(self.peers, self.video, self.audit, config.rtc, cameras=lambda: camera_ids)
            if config.rtc.enabled
            else None
        )
        # Family video calls between the kiosk screen and phones, through the same registry.
        self.calls: CallService | None = (
            CallService(self.peers, self.database, self.audit, config.rtc)
            if config.rtc.enabled
            else None
        )
        self._server: _EmbeddedServer | None = None
        self._housekeeping_lock = threading.Lock()
        self._notifier = SystemdNotifier()
        self.housekeeping_delay_seconds = _FIRST_HOUSEKEEPING_SECONDS
        self.housekeeping_interval_seconds = _HOUSEKEEPING_SECONDS
        self._stuck = StuckParts()
        self._outbox_depth: int | None = None

    # -- wiring callbacks -------------------------------------------------------------------

    def _camera_state_changed(self, camera_id: str, state: CameraState) -> None:
        self.alerts.publish_camera_state(camera_id, str(state))

    # -- CommandTarget (remote commands from the command centre) ----------------------------

    def _watches_for(self, camera_id: str | None) -> list[CameraWatch]:
        if camera_id is None:
            return list(self.watches.values())
        if camera_id not in self.watches:
            raise ValidationError("camera", f"unknown camera {camera_id!r}")
        return [self.watches[camera_id]]

    def arm(self, camera_id: str | None) -> None:
        for watch in self._watches_for(camera_id):
            watch.arm()

    def disarm(self, camera_id: str | None) -> None:
        for watch in self._watches_for(camera_id):
            watch.disarm()

    def set_sensitivity(self, camera_id: str | None, value: float) -> None:
        for watch in self._watches_for(camera_id):
            watch.set_sensitivity(value)

    def snapshot_now(self, camera_id: str) -> bytes:
        (watch,) = self._watches_for(camera_id)
        path = watch.snapshot_now()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise CameraError(f"snapshot of {camera_id} could not be read: {exc}") from exc

    # -- health -------------------------------------------------------------------------------

    def health(self) -> dict[str, object]:
        cameras: dict[str, object] = {}
        degraded: list[str] = []
        for camera_id, worker in self.cameras.items():
            status = worker.status()
            cameras[camera_id] = {
                "name": status.name,
                "state": str(status.state),
                "fps": round(status.fps, 2),
                "frames": status.frames,
                "dropped": status.dropped,
                "reconnects": status.reconnects,
                "armed": self.watches[camera_id].armed,
                "last_error": status.last_error,
            }
            if status.state not in (CameraState.ONLINE, CameraState.DISABLED):
                degraded.append(f"camera {camera_id}")
        mqtt = self.alerts.health()
        if self.config.mqtt.enabled and not mqtt.get("connected"):
            degraded.append("mqtt")
        return {
            "status": "degraded" if degraded else "ok",
            "problems": degraded,
            "device": self.config.device.id,
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "parts": {
                "cameras": cameras,
                "mqtt": mqtt,
                "live": {
                    "viewers": self.live.viewers() if self.live is not None else 0,
                    "peers": len(self.peers.peers()),
                    "video": self.video.stats(),
                },
                "system": system_health(self.config.device.data_dir),
            },
        }

    def last_events(self) -> dict[str, float]:
        """When each camera's latest motion event started, for the patrol page."""
        latest: dict[str, float] = {}
        for camera_id in self.cameras:
            events = self.events.recent(camera_id, limit=1)
            if events:
                latest[camera_id] = events[0].started_at
        return latest

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.alerts.start()
        for worker in self.cameras.values():
            worker.start()

    def stop(self) -> None:
        # Live viewers end first: their encoders and relays read the cameras stopped below.
        self.video.stop()
        # Cameras stop side by side: a thread blocked in an RTSP open or read returns only within
        # its own timeouts, and four of those in a row would outlast systemd's stop timeout.
        with ThreadPoolExecutor(max_workers=max(1, len(self.cameras))) as pool:
            list(pool.map(self._stop_camera, self.cameras))
        self.alerts.stop()
        # A retention pass runs in a worker thread that cancelling its task does not stop.
        with self._housekeeping_lock:
            self.database.close()

    def _stop_camera(self, camera_id: str) -> None:
        worker = self.cameras[camera_id]
        camera = worker.config
        worker.stop(timeout=max(camera.open_timeout_seconds, camera.stall_timeout_seconds) + 1)
        # With capture ended, an open event ends and its clip is finished while the link is
        # still up, so the police get the end of what they were told had started.
        self.watches[camera_id].close()

    async def _service_ticks(self) -> None:
        """The village services' scheduled work (missed check-ins, missed rounds), in a
        thread: a slow pass delays the next one, never the web UI."""
        while True:
            await asyncio.to_thread(self.services.tick)
            await asyncio.sleep(TICK_SECONDS)

    async def _housekeeping(self) -> None:
        """Retention of media and guest data, in a worker thread, off the frame path.

        The first pass waits a while after start; a pass that fails is logged and the next
        comes at its time. The watchdog is a task of its own, so a slow pass delays no ping.
        """
        await asyncio.sleep(self.housekeeping_delay_seconds)
        while True:
            await asyncio.to_thread(self._apply_retention)
            await asyncio.sleep(self.housekeeping_interval_seconds)

    def _apply_retention(self) -> None:
        """One retention pass; each step's failure is logged, and the other steps still run."""
        steps = (
            ("media retention", self._retain_media),
            ("village services' retention", self._purge_services),
            ("outbox expiry", self.alerts.purge_expired),  # logs and counts what it drops
        )
        with self._housekeeping_lock:
            for name, step in steps:
                try:
                    step()
                except Exception:
                    log.exception("retention pass: %s failed; tried again next pass", name)

    def _retain_media(self) -> None:
        apply_retention(self.database, self.media_dir, self.config.storage)

    def _purge_services(self) -> None:
        for name, count in self.services.purge_expired().items():
            if count:
                log.info("%s: purged %d records past retention", name, count)

    # -- systemd watchdog -----------------------------------------------------------------------

    def liveness_problems(self, now: float | None = None) -> dict[str, str | None]:
        """Every watched part's problem (None: alive): each enabled camera's capture thread,
        and the outbox drain while the broker is connected."""
        now = time.monotonic() if now is None else now
        problems: dict[str, str | None] = {
            f"camera {camera_id}": worker.liveness_problem(now)
            for camera_id, worker in self.cameras.items()
            if worker.config.enabled
        }
        if self.config.mqtt.enabled:
            problems["mqtt outbox"] = self.alerts.liveness_problem(now)
        return problems

    def status_text(self, stuck: dict[str, str]) -> str:
        """The STATUS= line for ``systemctl status``, from memory only (no database read)."""
        enabled = [w for w in self.cameras.values() if w.config.enabled]
        online = sum(1 for w in enabled if w.status().state is CameraState.ONLINE)
        return status_line(
            online=online,
            cameras=len(enabled),
            outbox=self._outbox_depth,
            viewers=self.live.viewers() if self.live is not None else 0,
            stuck=stuck,
        )

    def _read_outbox_depth(self) -> None:
        with self.database.read() as db:
            self._outbox_depth = outbox.stats(db).depth

    async def _watchdog(self) -> None:
        """WATCHDOG=1 every half WatchdogSec, only while the loop answers (this task runs on
        time) and every watched part is alive; STATUS= with each turn.

        The outbox depth for the status is read in a worker thread that no turn waits for: a
        database held by a long write delays the number, never the ping.
        """
        interval = self._notifier.watchdog_interval_seconds()
        period = interval if interval is not None else _LIVENESS_SECONDS
        depth_reading: asyncio.Future[None] | None = None
        expected = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                late = now - expected
                if late > period:
                    log.warning("event loop blocked for %.1f s (watchdog turn late)", late)
                if depth_reading is None or depth_reading.done():
                    if depth_reading is not None and depth_reading.exception() is not None:
                        log.debug("outbox depth unreadable: %r", depth_reading.exception())
                    depth_reading = asyncio.ensure_future(
                        asyncio.to_thread(self._read_outbox_depth)
                    )
                stuck = self._stuck.review(self.liveness_problems(now))
                status = "STATUS=" + self.status_text(stuck)
                if self._notifier.enabled:
                    if interval is not None and not stuck:
                        self._notifier.notify("WATCHDOG=1\n" + status)
                    else:
                        self._notifier.notify(status)
                expected = time.monotonic() + period
                await asyncio.sleep(period)
        finally:
            if depth_reading is not None:
                depth_reading.cancel()

    def _web_listener(self) -> socket.socket:
        """Bind the web port up front, so a port in use is one clear error, not a traceback."""
        host, port = self.config.web.host, self.config.web.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host, port))
        except OSError as exc:
            listener.close()
            raise KioskError(f"the web UI cannot listen on {host}:{port}: {exc.strerror}") from exc
        return listener

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; the caller has started the parts."""
        from web_ui.app import create_app
        from web_ui.context import WebContext

        listener = self._web_listener() if self.config.web.enabled else None
        housekeeping = asyncio.create_task(self._housekeeping())
        service_ticks = asyncio.create_task(self._service_ticks())
        watchdog = asyncio.create_task(self._watchdog())
        server_task: asyncio.Task[None] | None = None
        if listener is not None:
            web_config = self.config
            if self.tls is not None:  # cookies only over HTTPS when the UI speaks HTTPS
                web = self.config.web.model_copy(update={"secure_cookies": True})
                web_config = self.config.model_copy(update={"web": web})
            context = WebContext(
                config=web_config,
                database=self.database,
                cameras=self.cameras,
                homestays=self.homestays,
                services=self.services,
                audit=self.audit,
                accounts=self.accounts,
                health=self.health,
                pictures=self.pictures,
                web_secret=self.vault.derive_key("web csrf"),
                family=self.family,
                live=self.live,
                last_events=self.last_events,
                calls=self.calls,
            )
            server_config = uvicorn.Config(
                create_app(context),
                host=self.config.web.host,
                port=self.config.web.port,
                log_config=None,
                access_log=False,
                # X-Forwarded-For is believed only from a configured TLS proxy: trusting it from
                # anyone would let a client pick its own address and dodge the sign-in limits.
                proxy_headers=bool(self.config.web.trusted_proxies),
                forwarded_allow_ips=list(self.config.web.trusted_proxies) or None,
                lifespan="on",
                # A long-lived answer (an event stream, an MJPEG view) must not hold up a stop.
                timeout_graceful_shutdown=5,
                ssl_certfile=str(self.tls.cert) if self.tls else None,
                ssl_keyfile=str(self.tls.key) if self.tls else None,
            )
            self._server = _EmbeddedServer(server_config)
            server_task = asyncio.create_task(self._server.serve(sockets=[listener]))
            # READY only once the server listens (its start-up done), not merely scheduled.
            while not self._server.started and not server_task.done():
                await asyncio.sleep(0.02)
            port = listener.getsockname()[1]
            scheme = "https" if self.tls else "http"
            url = f"{scheme}://{self.config.web.host}:{port}/"
            log.info("web UI at %s", url)
            print(f"Web UI: {url}", flush=True)  # the demo command shows where to look
        stop_waiter = asyncio.create_task(stop.wait())
        watched = [stop_waiter, housekeeping, watchdog] + ([server_task] if server_task else [])
        if server_task is None or not server_task.done():
            self._notifier.notify("READY=1\nSTATUS=" + self.status_text({}))
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stop_waiter and not task.cancelled() and task.exception() is not None:
                log.error("agent part failed, stopping: %r", task.exception())
        self._notifier.notify("STOPPING=1\nSTATUS=stopping")
        # Calls end first (their records and both pages are told, their event streams close,
        # so uvicorn has no stream to wait for); then every peer, on the loop that runs them,
        # before the hub and the cameras stop.
        if self.calls is not None:
            await self.calls.close()
        await self.peers.close_all()
        if self._server is not None:
            # A graceful uvicorn shutdown closes open connections within its own timeout.
            self._server.should_exit = True
        housekeeping.cancel()
        watchdog.cancel()
        service_ticks.cancel()
        stop_waiter.cancel()
        await asyncio.gather(*watched, return_exceptions=True)


async def _run(config: AgentConfig) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    runtime = await asyncio.to_thread(Runtime, config)
    log.info(
        "agent %s starting: %d camera(s), mqtt %s",
        config.device.id,
        len(config.cameras),
        "on" if config.mqtt.enabled else "off (alerts wait in the outbox)",
    )
    await asyncio.to_thread(runtime.start)  # thread starts and joins stay off the loop
    try:
        await runtime.serve(stop)
    finally:
        await asyncio.to_thread(runtime.stop)
        log.info("agent %s stopped", config.device.id)
    return 0


def run_agent(config: AgentConfig) -> int:
    """Run until SIGTERM or SIGINT; returns the process exit code."""
    # Everything the agent writes (database, WAL, media, keys) is for its own user alone: the
    # Pi's other users (the desktop user is in group video) must not read guests or pictures.
    os.umask(0o077)
    keep_private(Path(config.device.data_dir))
    return asyncio.run(_run(config))


def keep_private(data_dir: Path) -> None:
    """Create the data directory owner-only, or narrow one made before (0755 by an older
    version or by hand): nothing inside can be reached through a closed directory."""
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(data_dir.stat().st_mode)
        if mode & 0o077:
            data_dir.chmod(mode & 0o700)
            log.warning("data directory %s was open to other users (%04o); closed", data_dir, mode)
    except OSError as exc:
        raise KioskError(f"cannot prepare the data directory {data_dir}: {exc.strerror}") from exc
