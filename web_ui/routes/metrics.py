"""GET /metrics: the agent's figures in the Prometheus text format, for an admin or a scraper.

A signed-in admin reads it in the browser; a Prometheus server, which cannot sign in, sends
``Authorization: Bearer <web.metrics_token>`` (compared in constant time; no token configured:
admin sessions only). Every figure is read from what the agent already reports — the health
report, the cameras' status, live views, calls — and the event count from the database:
nothing here touches a frame. The rendering lives in agent/metrics.py.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from agent.accounts import Role
from agent.camera.capture import CameraState
from agent.metrics import (
    CONTENT_TYPE,
    CameraFigures,
    KioskFigures,
    LatencyHistogram,
    OutboxFigures,
    kiosk_metrics,
    process_figures,
    process_metrics,
    render,
)
from web_ui.context import WebContext
from web_ui.routes.status import health_report
from web_ui.security import Principal, require_roles, web_context

router = APIRouter()


def configured_token(context: WebContext) -> str | None:
    token = context.config.web.metrics_token
    return token.get_secret_value() if token is not None else None


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: object) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def stored_events(context: WebContext) -> dict[str, int] | None:
    """Motion events stored per camera; None where the events table does not exist."""
    with context.database.read() as db:
        if not db["events"].exists():
            return None
        rows = db.execute("SELECT camera_id, COUNT(*) FROM events GROUP BY camera_id").fetchall()
    return {str(camera_id): int(count) for camera_id, count in rows}


def kiosk_figures(context: WebContext, now: float | None = None) -> KioskFigures:
    now = time.time() if now is None else now
    report = context.health()
    parts = _mapping(report.get("parts")) if "parts" in report else report
    health_cameras = _mapping(parts.get("cameras"))
    events = stored_events(context)
    live = context.live
    cameras = []
    for camera_id, camera in context.cameras.items():
        status = camera.status()
        reported = _mapping(health_cameras.get(camera_id))
        last = status.last_frame_ts
        cameras.append(
            CameraFigures(
                camera_id=camera_id,
                state=str(status.state),
                fps=float(status.fps),
                frames=int(status.frames),
                dropped=_count(reported.get("dropped", getattr(status, "dropped", None))),
                reconnects=_count(reported.get("reconnects", getattr(status, "reconnects", None))),
                last_frame_age_seconds=None if last is None else round(max(0.0, now - last), 3),
                events=None if events is None else events.get(camera_id, 0),
                live_viewers=live.viewers(camera_id) if live is not None else None,
            )
        )
    mqtt = _mapping(parts.get("mqtt"))
    outbox_part = _mapping(mqtt.get("outbox"))
    outbox = None
    if "depth" in outbox_part:
        dropped = _mapping(outbox_part.get("dropped"))
        outbox = OutboxFigures(
            depth=_count(outbox_part.get("depth")) or 0,
            bytes=_count(outbox_part.get("bytes")),
            oldest_age_seconds=_number(outbox_part.get("oldest_age_seconds")),
            dropped={str(kind): _count(n) or 0 for kind, n in dropped.items()},
        )
    calls = None
    if context.calls is not None:
        calls = dict(Counter(str(call.state) for call in context.calls.live()))
        for state in ("ringing", "active"):
            calls.setdefault(state, 0)
    return KioskFigures(
        healthy=health_report(dict(report)).status == "ok",
        cameras=cameras,
        camera_states=[str(state) for state in CameraState],
        outbox=outbox,
        mqtt_connected=bool(mqtt.get("connected")) if mqtt.get("enabled") else None,
        live_viewers=live.viewers() if live is not None else None,
        peers=_count(_mapping(parts.get("live")).get("peers")),
        calls=calls,
        uptime_seconds=_number(report.get("uptime_seconds")),
    )


@router.get("/metrics", include_in_schema=False)
def metrics(
    request: Request,
    principal: Annotated[Principal, require_roles(Role.ADMIN, bearer=configured_token)],
) -> Response:
    """The text format, version 0.0.4. A plain route runs in a worker thread: the health
    report and the event count read the database."""
    context = web_context(request)
    latency: LatencyHistogram = request.app.state.request_latency
    text = render(
        [
            *kiosk_metrics(kiosk_figures(context)),
            latency.metric(),
            *process_metrics(process_figures()),
        ]
    )
    return Response(text, media_type=CONTENT_TYPE)
