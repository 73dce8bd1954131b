"""The agent's figures in the Prometheus text format (version 0.0.4), written by hand.

Pure functions over plain values: the web route (web_ui/routes/metrics.py) gathers the figures
from what the agent already reports (the health report, the cameras' status, live views, calls)
and this module only shapes and renders them. Labels carry camera ids, states, route templates
and kinds, never a username, a name, an address or any other personal data.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "village_kiosk_"
# Seconds; a Pi answers most pages in tens of milliseconds, a sign-in (argon2) in about one.
LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Route label of requests that matched no route (scans, typos): one series, not one per path.
UNMATCHED_ROUTE = "unmatched"

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_KINDS = frozenset({"gauge", "counter", "histogram", "summary", "untyped"})


@dataclass(frozen=True)
class Sample:
    """One line: the metric's name plus ``suffix`` (``_bucket``, ``_sum``...), labels, value."""

    value: float
    labels: tuple[tuple[str, str], ...] = ()
    suffix: str = ""


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # gauge, counter, histogram, summary or untyped
    help: str
    samples: tuple[Sample, ...] = ()

    def __post_init__(self) -> None:
        if not _METRIC_NAME.match(self.name):
            raise ValueError(f"{self.name!r} is not a metric name")
        if self.kind not in _KINDS:
            raise ValueError(f"{self.kind!r} is not a metric type")
        for sample in self.samples:
            for label, _ in sample.labels:
                if not _LABEL_NAME.match(label) or label.startswith("__"):
                    raise ValueError(f"{label!r} is not a label name")


def labels(**values: object) -> tuple[tuple[str, str], ...]:
    return tuple((name, str(value)) for name, value in values.items())


def escape_label_value(value: str) -> str:
    """Backslash, double quote and line feed escaped, as the text format wants."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _label_text(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{name}="{escape_label_value(value)}"' for name, value in pairs)
    return "{" + inner + "}"


def render(metrics: Iterable[Metric]) -> str:
    """The exposition text: HELP and TYPE once per metric, then its samples."""
    lines: list[str] = []
    seen: set[str] = set()
    for metric in metrics:
        if metric.name in seen:
            raise ValueError(f"metric {metric.name} given twice")
        seen.add(metric.name)
        lines.append(f"# HELP {metric.name} {escape_help(metric.help)}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        for sample in metric.samples:
            name = metric.name + sample.suffix
            lines.append(f"{name}{_label_text(sample.labels)} {format_value(sample.value)}")
    return "\n".join(lines) + "\n"


# -- request latency ----------------------------------------------------------------------------


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


@dataclass
class _Series:
    buckets: list[int]
    count: int = 0
    total: float = 0.0


@dataclass
class LatencyHistogram:
    """Durations of HTTP requests by method, route template and status class.

    Fed by the web UI's timing middleware from the event loop; read by the scrape in a worker
    thread, hence the lock. Route templates (``/police/registrations/{guest_id}``), never the
    concrete path, so no record id or search term becomes a label and the series stay few.
    """

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    _series: dict[tuple[str, str, str], _Series] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status_class(status))
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series([0] * len(self.bounds))
            for index, bound in enumerate(self.bounds):
                if seconds <= bound:
                    series.buckets[index] += 1
            series.count += 1
            series.total += max(0.0, seconds)

    def metric(self) -> Metric:
        samples: list[Sample] = []
        with self._lock:
            items = sorted(
                (key, _Series(list(s.buckets), s.count, s.total)) for key, s in self._series.items()
            )
        for (method, route, klass), series in items:
            base = labels(method=method, route=route, status=klass)
            for bound, count in zip(self.bounds, series.buckets, strict=True):
                samples.append(Sample(count, (*base, ("le", repr(float(bound)))), "_bucket"))
            samples.append(Sample(series.count, (*base, ("le", "+Inf")), "_bucket"))
            samples.append(Sample(series.total, base, "_sum"))
            samples.append(Sample(series.count, base, "_count"))
        return Metric(
            PREFIX + "http_request_duration_seconds",
            "histogram",
            "Time until the answer's headers went out, by method, route template and status "
            "class (an event stream or MJPEG view counts its start, not its length).",
            tuple(samples),
        )


# -- the process ----------------------------------------------------------------------------------

_STATUS = Path("/proc/self/status")


def resident_bytes(status_text: str) -> int | None:
    """VmRSS of a /proc/<pid>/status text, in bytes; None where the line is missing."""
    for line in status_text.splitlines():
        key, _, rest = line.partition(":")
        if key == "VmRSS":
            parts = rest.split()
            try:
                value = int(parts[0])
            except (IndexError, ValueError):
                return None
            unit = parts[1].lower() if len(parts) > 1 else "kb"
            return value * 1024 if unit == "kb" else value
    return None


@dataclass(frozen=True)
class ProcessFigures:
    resident_bytes: int | None
    cpu_seconds: float


def process_figures(status_path: Path = _STATUS) -> ProcessFigures:
    try:
        rss = resident_bytes(status_path.read_text(encoding="ascii", errors="replace"))
    except OSError:
        rss = None
    times = os.times()
    return ProcessFigures(resident_bytes=rss, cpu_seconds=times.user + times.system)


def process_metrics(figures: ProcessFigures) -> list[Metric]:
    metrics = [
        Metric(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time of the agent process in seconds.",
            (Sample(round(figures.cpu_seconds, 3)),),
        )
    ]
    if figures.resident_bytes is not None:
        metrics.append(
            Metric(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory of the agent process (VmRSS) in bytes.",
                (Sample(figures.resident_bytes),),
            )
        )
    return metrics


# -- the kiosk ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraFigures:
    camera_id: str
    state: str
    fps: float
    frames: int | None = None
    dropped: int | None = None
    reconnects: int | None = None
    last_frame_age_seconds: float | None = None
    events: int | None = None  # motion events stored (retention removes old ones)
    live_viewers: int | None = None


@dataclass(frozen=True)
class OutboxFigures:
    depth: int
    bytes: int | None = None
    oldest_age_seconds: float | None = None
    dropped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class KioskFigures:
    healthy: bool
    cameras: Sequence[CameraFigures] = ()
    camera_states: Sequence[str] = ()  # every state a camera can be in, each gets a 0/1 series
    outbox: OutboxFigures | None = None
    mqtt_connected: bool | None = None
    live_viewers: int | None = None  # None: live video is off
    peers: int | None = None  # WebRTC peers (live views and call sides); None: unknown
    calls: Mapping[str, int] | None = None  # state -> calls now; None: calls are off
    uptime_seconds: float | None = None


def _per_camera(
    cameras: Sequence[CameraFigures], name: str, kind: str, help_text: str, attribute: str
) -> Metric | None:
    samples = []
    for camera in cameras:
        value = getattr(camera, attribute)
        if value is not None:
            samples.append(Sample(float(value), labels(camera=camera.camera_id)))
    if not samples:
        return None
    return Metric(PREFIX + name, kind, help_text, tuple(samples))


def _camera_metrics(figures: KioskFigures) -> list[Metric]:
    cameras = figures.cameras
    states = list(dict.fromkeys([*figures.camera_states, *(c.state for c in cameras)]))
    metrics = [
        _per_camera(cameras, "camera_fps", "gauge", "Frames per second captured.", "fps"),
        Metric(
            PREFIX + "camera_state",
            "gauge",
            "1 for the state the camera is in, 0 for the others.",
            tuple(
                Sample(
                    1 if camera.state == state else 0,
                    labels(camera=camera.camera_id, state=state),
                )
                for camera in cameras
                for state in states
            ),
        ),
        _per_camera(
            cameras, "camera_frames_total", "counter", "Frames captured since start.", "frames"
        ),
        _per_camera(
            cameras,
            "camera_dropped_frames_total",
            "counter",
            "Frames that came unusable, and reads that brought none, since start.",
            "dropped",
        ),
        _per_camera(
            cameras,
            "camera_reconnects_total",
            "counter",
            "Reopen attempts after the first open since start.",
            "reconnects",
        ),
        _per_camera(
            cameras,
            "camera_last_frame_age_seconds",
            "gauge",
            "Seconds since the camera's latest frame.",
            "last_frame_age_seconds",
        ),
        _per_camera(
            cameras,
            "camera_events",
            "gauge",
            "Motion events stored for the camera (retention removes old ones).",
            "events",
        ),
        _per_camera(
            cameras,
            "camera_live_viewers",
            "gauge",
            "Live views (WebRTC and MJPEG) of the camera now.",
            "live_viewers",
        ),
    ]
    return [metric for metric in metrics if metric is not None]


def _outbox_metrics(outbox: OutboxFigures) -> list[Metric]:
    metrics = [
        Metric(
            PREFIX + "outbox_messages",
            "gauge",
            "Messages waiting in the outbox for the command centre.",
            (Sample(outbox.depth),),
        ),
        Metric(
            PREFIX + "outbox_oldest_age_seconds",
            "gauge",
            "Age of the oldest message waiting in the outbox (0 when it is empty).",
            (Sample(round(outbox.oldest_age_seconds or 0.0, 3)),),
        ),
    ]
    if outbox.bytes is not None:
        metrics.append(
            Metric(
                PREFIX + "outbox_bytes",
                "gauge",
                "Bytes of the messages waiting in the outbox.",
                (Sample(outbox.bytes),),
            )
        )
    metrics.append(
        Metric(
            PREFIX + "outbox_dropped_total",
            "counter",
            "Messages the outbox's limits dropped, by kind.",
            tuple(
                Sample(count, labels(kind=kind)) for kind, count in sorted(outbox.dropped.items())
            ),
        )
    )
    return metrics


def kiosk_metrics(figures: KioskFigures) -> list[Metric]:
    """Every metric of the kiosk but request latency and the process's own."""
    metrics = [
        Metric(
            PREFIX + "healthy",
            "gauge",
            "1 when the agent reports itself healthy (as /healthz's status ok), else 0.",
            (Sample(1 if figures.healthy else 0),),
        )
    ]
    if figures.uptime_seconds is not None:
        metrics.append(
            Metric(
                PREFIX + "uptime_seconds",
                "gauge",
                "Seconds since the agent started.",
                (Sample(round(figures.uptime_seconds, 1)),),
            )
        )
    metrics += _camera_metrics(figures)
    if figures.outbox is not None:
        metrics += _outbox_metrics(figures.outbox)
    if figures.mqtt_connected is not None:
        metrics.append(
            Metric(
                PREFIX + "mqtt_connected",
                "gauge",
                "1 while the link to the command centre's broker is up.",
                (Sample(1 if figures.mqtt_connected else 0),),
            )
        )
    if figures.live_viewers is not None:
        metrics.append(
            Metric(
                PREFIX + "live_viewers",
                "gauge",
                "Live views of all cameras now (WebRTC and MJPEG).",
                (Sample(figures.live_viewers),),
            )
        )
    if figures.peers is not None:
        metrics.append(
            Metric(
                PREFIX + "rtc_peers",
                "gauge",
                "WebRTC peer connections of the agent now (live views and both sides of calls).",
                (Sample(figures.peers),),
            )
        )
    if figures.calls is not None:
        metrics.append(
            Metric(
                PREFIX + "calls",
                "gauge",
                "Family video calls now, by state (ringing, active).",
                tuple(
                    Sample(count, labels(state=state))
                    for state, count in sorted(figures.calls.items())
                ),
            )
        )
    return metrics
