"""The whole agent configuration: one validated pydantic tree loaded from TOML.

Environment variables ``VILLAGE_KIOSK_<SECTION>__<KEY>`` override the file (systemd
EnvironmentFile, tests). List items are addressed by index: ``VILLAGE_KIOSK_CAMERAS__0__FPS=10``.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent.camera.source import Source, parse_source
from agent.errors import ConfigError, field_path
from agent.motion.config import EventConfig, MotionConfig

ENV_PREFIX = "VILLAGE_KIOSK_"
_IDENTIFIER = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _between(low: float, high: float) -> AfterValidator:
    """A bound check whose message names both ends, e.g. ``must be between 1 and 30``."""

    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return value

    return AfterValidator(check)


Point = tuple[Annotated[float, _between(0, 1)], Annotated[float, _between(0, 1)]]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceConfig(_Section):
    id: Annotated[str, Field(pattern=_IDENTIFIER)]
    name: str = "村口服务亭"
    village: str = ""
    data_dir: Path = Path("/var/lib/village-kiosk")


class Polygon(_Section):
    """An area of a camera image in normalized coordinates (0..1, origin top-left)."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    points: Annotated[list[Point], Field(min_length=3, max_length=64)]


class Resolution(_Section):
    width: Annotated[int, _between(16, 4096)]
    height: Annotated[int, _between(16, 4096)]

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return _parse_resolution(value)

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def _parse_resolution(value: Any) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
        if not match:
            raise ValueError("must look like 640x480")
        return {"width": int(match[1]), "height": int(match[2])}
    if isinstance(value, list | tuple) and len(value) == 2:
        return {"width": value[0], "height": value[1]}
    return value


class CameraConfig(_Section):
    id: Annotated[str, Field(pattern=_IDENTIFIER)]
    name: str = ""
    source: str
    fps: Annotated[float, _between(1, 30)] = 15
    resolution: Resolution = Resolution(width=640, height=480)
    enabled: bool = True
    loop: bool = Field(default=True, description="file sources: start over at end of file")
    open_timeout_seconds: Annotated[float, _between(0.5, 60)] = 5.0
    stall_timeout_seconds: Annotated[float, _between(0.5, 600)] = 5.0
    reconnect_min_seconds: Annotated[float, _between(0.05, 60)] = 0.5
    reconnect_max_seconds: Annotated[float, _between(0.1, 3600)] = 30.0
    armed: bool = True
    arm_schedule: list[str] = Field(
        default_factory=list, description='armed windows such as "20:00-06:00"; empty = always'
    )
    zones: list[Polygon] = Field(default_factory=list)
    privacy_masks: list[Polygon] = Field(default_factory=list)

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        parse_source(value)
        return value

    @field_validator("arm_schedule")
    @classmethod
    def _check_schedule(cls, windows: list[str]) -> list[str]:
        for window in windows:
            start, sep, end = window.partition("-")
            if not sep or not _CLOCK.match(start.strip()) or not _CLOCK.match(end.strip()):
                raise ValueError(f"{window!r} must look like 20:00-06:00")
        return windows

    @model_validator(mode="after")
    def _check_backoff(self) -> CameraConfig:
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError("reconnect_max_seconds must not be below reconnect_min_seconds")
        return self

    @property
    def parsed_source(self) -> Source:
        return parse_source(self.source)


class MqttConfig(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, _between(1, 65535)] = 1883
    protocol: Annotated[str, Field(pattern=r"^(5|3\.1\.1)$")] = "5"
    username: str = ""
    password_file: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = "village"
    client_id: str = ""
    keepalive_seconds: Annotated[int, _between(5, 3600)] = 30
    reconnect_min_seconds: Annotated[float, _between(0.1, 60)] = 1.0
    reconnect_max_seconds: Annotated[float, _between(1, 3600)] = 60.0
    inflight_window: Annotated[int, _between(1, 1000)] = 50
    outbox_max_rows: Annotated[int, _between(100, 10_000_000)] = 200_000
    outbox_max_bytes: Annotated[int, _between(1_000_000, 100_000_000_000)] = 512_000_000
    health_interval_seconds: Annotated[float, _between(5, 86400)] = 60.0
    home_assistant_discovery: bool = False
    discovery_prefix: str = "homeassistant"
    # Plain MQTT to a broker off this machine puts alerts, snapshots and the command channel on
    # the wire in clear; it must be asked for by name.
    allow_plaintext: bool = False
    # The command centre's X25519 public key (PEM): registration reports are sealed to it, so
    # neither the broker nor other subscribers can read the guests' identities.
    report_public_key: Path | None = None

    @model_validator(mode="after")
    def _check_tls_pair(self) -> MqttConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        return self

    @property
    def tls(self) -> bool:
        """The link speaks TLS (the CA file, or a client certificate with the system CAs)."""
        return self.tls_ca is not None or self.tls_cert is not None

    @property
    def plaintext_off_host(self) -> bool:
        """Plain MQTT to a broker on another machine: the wire between is readable."""
        return not self.tls and not _is_loopback(self.host)

    @model_validator(mode="after")
    def _check_link_protection(self) -> MqttConfig:
        # Checked only for a link that is used, so a disabled [mqtt] section may stay a draft.
        if not self.enabled:
            return self
        problems: list[InitErrorDetails] = []
        if self.plaintext_off_host and not self.allow_plaintext:
            message = (
                f"{self.host!r} is not on this machine and mqtt.tls_ca is not set; set"
                " mqtt.tls_ca (TLS to the broker), or mqtt.allow_plaintext = true to send"
                " alerts and the command channel in clear on a network you trust"
            )
            problems.append(_field_error("host", self.host, message))
        if self.report_public_key is None:
            message = (
                "required when mqtt.enabled is true: the command centre's X25519 public key"
                " (PEM) that registration reports are sealed to"
            )
            problems.append(_field_error("report_public_key", None, message))
        if problems:
            raise PydanticValidationError.from_exception_data(type(self).__name__, problems)
        return self


def _is_loopback(host: str) -> bool:
    """Only a literal loopback address or ``localhost``: no DNS look-up at config time."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _field_error(field: str, value: object, message: str) -> InitErrorDetails:
    """A model check's problem filed under one field, so it reads ``mqtt.<field>: …``."""
    # The text goes in as context, not as the template: a host name may contain braces.
    error = PydanticCustomError("mqtt_link", "{message}", {"message": message})
    return InitErrorDetails(type=error, loc=(field,), input=value)


class WebConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, _between(0, 65535)] = 8080
    secure_cookies: bool = False
    # Absolute lifetime of a session; it also ends after idle_minutes without a request.
    session_hours: Annotated[float, _between(0.1, 720)] = 12.0
    idle_minutes: Annotated[float, _between(1, 720)] = 15.0
    # Sign-ins made on the kiosk's own touchscreen (a browser on this machine) end sooner: the
    # next villager at the screen must not inherit an officer's session.
    kiosk_session_minutes: Annotated[float, _between(1, 240)] = 10.0
    # The kiosk screen goes back to its home page after this long without a touch.
    kiosk_idle_seconds: Annotated[float, _between(15, 3600)] = 120.0
    language: Annotated[str, Field(pattern=r"^(zh-CN|en)$")] = "zh-CN"
    # Wrong passwords in a row from one address for one account before that pair waits.
    login_max_failures: Annotated[int, _between(1, 100)] = 5
    lockout_minutes: Annotated[float, _between(0.1, 1440)] = 15.0
    # Password checks running at once; each holds argon2's memory, further sign-ins get 429.
    login_concurrency: Annotated[int, _between(1, 16)] = 2
    # Searches of guest registrations by name or ID number per account and hour.
    searches_per_hour: Annotated[int, _between(1, 10_000)] = 60
    # Larger request bodies are refused (413) before any route reads them.
    max_body_bytes: Annotated[int, _between(1024, 64 * 1024 * 1024)] = 1024 * 1024
    # Host names (without port) the UI answers to; empty: the loopback names and web.host.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Addresses of reverse proxies whose X-Forwarded-For is believed (TLS in front of the UI).
    trusted_proxies: list[str] = Field(default_factory=list)
    # Serve HTTPS: phones need a secure origin for camera and microphone. Without tls_cert and
    # tls_key the agent makes a self-signed certificate in <data_dir>/secrets at first start.
    https: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # A Prometheus scraper that cannot sign in sends it as ``Authorization: Bearer <token>`` to
    # /metrics; unset, only a signed-in admin reads the metrics. Best given in the environment
    # (VILLAGE_KIOSK_WEB__METRICS_TOKEN) rather than the file; at least 24 characters.
    metrics_token: Annotated[SecretStr | None, Field(min_length=24, max_length=256)] = None

    @model_validator(mode="after")
    def _check_reachable_names(self) -> WebConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if self.host in ("0.0.0.0", "::") and not self.allowed_hosts:
            raise ValueError(
                "allowed_hosts must list the names and addresses visitors use to reach the kiosk "
                "when web.host listens on every address (unknown Host headers are refused)"
            )
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {proxy!r} is not an address") from exc
        return self


class IceServer(_Section):
    """A STUN or TURN server for WebRTC (phones behind 4G NAT need TURN: docs/LIVE.md)."""

    urls: Annotated[list[str], Field(min_length=1, max_length=8)]
    username: str = ""
    # The TURN password is read from a file, like the MQTT one, so it stays out of the config.
    credential_file: Path | None = None

    @field_validator("urls")
    @classmethod
    def _check_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not re.match(r"^(stun|stuns|turn|turns):[^\s]+$", url):
                raise ValueError(f"{url!r} must start with stun:, stuns:, turn: or turns:")
        return urls


class ViewerCaps(_Section):
    """The most a live viewer may get: what a page picks for a 4G phone or the station's PC."""

    width: Annotated[int, _between(160, 1920)]
    height: Annotated[int, _between(120, 1080)]
    fps: Annotated[float, _between(1, 30)]
    bitrate_kbps: Annotated[int, _between(50, 8000)]


def _default_tiers() -> dict[str, ViewerCaps]:
    return {
        "high": ViewerCaps(width=1280, height=720, fps=15, bitrate_kbps=1500),
        "low": ViewerCaps(width=640, height=360, fps=10, bitrate_kbps=400),
    }


class RtcConfig(_Section):
    """Live video and family calls (WebRTC through aiortc); the agent is every peer's hub."""

    enabled: bool = True
    # No public STUN by default: on the village network every browser reaches the agent
    # directly, and a phone outside needs the county's TURN server anyway.
    ice_servers: list[IceServer] = Field(default_factory=list, max_length=8)
    # Quality tiers a page may ask for; each tier of a camera costs one encoder however many watch.
    tiers: dict[str, ViewerCaps] = Field(default_factory=_default_tiers)
    max_viewers_per_camera: Annotated[int, _between(1, 32)] = 4
    max_viewers: Annotated[int, _between(1, 64)] = 8
    max_calls: Annotated[int, _between(0, 4)] = 1
    # A peer that has not connected by then is closed; one silent this long (a phone that lost
    # signal) is dropped; no live view or call lasts longer than its limit.
    connect_timeout_seconds: Annotated[float, _between(3, 120)] = 15.0
    silence_timeout_seconds: Annotated[float, _between(3, 120)] = 10.0
    max_view_minutes: Annotated[float, _between(1, 720)] = 30.0
    max_call_minutes: Annotated[float, _between(1, 720)] = 60.0
    # Seconds a ringing call waits for an answer before it counts as missed.
    ring_seconds: Annotated[float, _between(5, 300)] = 45.0

    @field_validator("tiers")
    @classmethod
    def _check_tiers(cls, tiers: dict[str, ViewerCaps]) -> dict[str, ViewerCaps]:
        if not tiers:
            raise ValueError("at least one tier is needed")
        for name in tiers:
            if not re.match(_IDENTIFIER, name):
                raise ValueError(f"tier name {name!r}: lowercase letters, digits, - and _")
        return tiers


class StorageConfig(_Section):
    retention_days: Annotated[float, _between(0.01, 3650)] = 30.0
    disk_quota_mb: Annotated[float, _between(1, 10_000_000)] = 4096.0
    guest_retention_days: Annotated[float, _between(1, 3650)] = 180.0


class AgentConfig(_Section):
    device: DeviceConfig
    cameras: list[CameraConfig] = Field(default_factory=list, max_length=16)
    motion: MotionConfig = MotionConfig()
    events: EventConfig = EventConfig()
    mqtt: MqttConfig = MqttConfig()
    web: WebConfig = WebConfig()
    storage: StorageConfig = StorageConfig()
    rtc: RtcConfig = RtcConfig()
    # One table per village service, ``[services.<name>]``, read and checked by that service's
    # own settings model when the runtime builds it (agent/village/service.py).
    services: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("cameras")
    @classmethod
    def _unique_camera_ids(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        seen: set[str] = set()
        for camera in cameras:
            if camera.id in seen:
                raise ValueError(f"camera id {camera.id!r} is used twice")
            seen.add(camera.id)
        return cameras

    def camera(self, camera_id: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        raise KeyError(camera_id)


def _problem(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    message = str(error["msg"])
    if kind == "missing":
        message = "required"
    elif kind == "extra_forbidden":
        message = "unknown key"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    # The top-level "device" error of a missing [device] section has no deeper path.
    return f"{field_path(tuple(error['loc'])) or '(top level)'}: {message}"


def _env_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _set_path(root: dict[str, Any], path: list[str], value: Any) -> str | None:
    """Put ``value`` at ``path`` (keys, or indexes of existing list items); returns a problem."""
    node: Any = root
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, dict):
            if last:
                node[part] = value
                return None
            node = node.setdefault(part, [] if path[depth + 1].isdigit() else {})
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return f"no list item {part}"
            if last:
                node[int(part)] = value
                return None
            node = node[int(part)]
        else:
            return f"{'.'.join(path[:depth])} is not a section"
    return None


def apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``raw`` with ``VILLAGE_KIOSK_<SECTION>__<KEY>`` variables applied (they win)."""
    merged = copy.deepcopy(raw)
    problems: list[str] = []
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if len(path) < 2 or not all(path):
            problems.append(f"{name}: must look like {ENV_PREFIX}<SECTION>__<KEY>")
            continue
        problem = _set_path(merged, path, _env_value(value))
        if problem:
            problems.append(f"{name}: {problem}")
    if problems:
        raise ConfigError(problems)
    return merged


def parse_config(raw: dict[str, Any], environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Validate a raw mapping (from TOML) after applying environment overrides."""
    merged = apply_env_overrides(raw, os.environ if environ is None else environ)
    try:
        return AgentConfig.model_validate(merged)
    except PydanticValidationError as exc:
        raise ConfigError([_problem(error) for error in exc.errors()]) from exc


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """Load and validate a TOML config file; every problem is reported with its key path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text"]) from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from exc
    return parse_config(raw, environ)


def with_overrides(
    config: AgentConfig, *, port: int | None = None, data_dir: Path | None = None
) -> AgentConfig:
    """Apply command-line overrides, which win over file and environment."""
    if port is not None:
        config = config.model_copy(update={"web": config.web.model_copy(update={"port": port})})
    if data_dir is not None:
        device = config.device.model_copy(update={"data_dir": data_dir})
        config = config.model_copy(update={"device": device})
    return config
