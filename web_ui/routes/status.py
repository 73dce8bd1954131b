"""The home page, camera status (public), live snapshots (police and admin), /healthz.

The home page ("/") has a big tile for each service the visitor may use (the services' menu
entries marked ``tile``) above the camera status: the kiosk's own screen before anyone signs
in (the idle timeout brings it back here) and every signed-in account. A visitor elsewhere who
has not signed in gets the camera status alone, as on /status.

Who sees camera images: state and frame rate of every camera are public, so the kiosk screen
and any villager can tell whether the patrol cameras work. The images themselves show people
on the square and are shown only to police and admin accounts; every such view is audited as
``camera.view`` (once per viewer and camera per five minutes, since the page refreshes the
picture every few seconds).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from agent.accounts import Role
from web_ui.context import CameraLike, WebContext
from web_ui.errors import NotFoundError
from web_ui.rendering import is_kiosk_screen, render, service_entries
from web_ui.security import Principal, public, require_roles, web_context
from web_ui.view_audit import ViewAuditThrottle

router = APIRouter()

SNAPSHOT_ROLES = (Role.POLICE, Role.ADMIN)
HEALTH_DETAIL_ROLES = frozenset({Role.POLICE, Role.ADMIN})
_UNHEALTHY = frozenset({"error", "down", "offline", "failed", "degraded", "unhealthy"})


class CameraSummary(BaseModel):
    id: str
    name: str
    state: str
    fps: float
    frames: int
    width: int | None
    height: int | None
    last_frame_age_seconds: float | None


class HealthReport(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str  # "ok" or "degraded"
    parts: dict[str, Any]


def _summary(context: WebContext, camera_id: str, camera: CameraLike) -> CameraSummary:
    status = camera.status()
    name = status.name
    if not name:
        try:
            name = context.config.camera(camera_id).name
        except KeyError:
            name = ""
    last = status.last_frame_ts
    return CameraSummary(
        id=camera_id,
        name=name or camera_id,
        state=str(status.state),
        fps=round(float(status.fps), 1),
        frames=int(status.frames),
        width=status.width,
        height=status.height,
        last_frame_age_seconds=round(time.time() - last, 1) if last else None,
    )


def camera_summaries(context: WebContext) -> list[CameraSummary]:
    return [_summary(context, cid, camera) for cid, camera in context.cameras.items()]


def part_is_healthy(value: object) -> bool:
    """A part reports False, or a mapping with ``ok: false`` / a bad ``status``, when unwell."""
    if value is False:
        return False
    if isinstance(value, dict):
        if value.get("ok") is False or value.get("healthy") is False:
            return False
        status = value.get("status", value.get("state"))
        if isinstance(status, str) and status.lower() in _UNHEALTHY:
            return False
    return True


# The kiosk screen's call screen, a tile of its home before anyone signs in (when calls are on).
_KIOSK_CALLS_TILE = ("/kiosk/calls", "nav.calls")


def home_tiles(request: Request, principal: Principal) -> list[tuple[str, str]]:
    """(path, catalog key) of the home page's tiles: the services the visitor may use here. A
    tourist's phone gets the public ones (products, attractions, homestays); the kiosk-only
    ones (filing a dispute, the daily check-in) are left out away from the kiosk screen."""
    kiosk = principal.role is None and is_kiosk_screen(request)
    tiles = [(e.path, e.key) for e in service_entries(request, principal.role) if e.tile]
    if kiosk and web_context(request).calls is not None:
        tiles.append(_KIOSK_CALLS_TILE)
    return tiles


def _status(request: Request, principal: Principal, *, home: bool) -> Response:
    return render(
        request,
        "status.html",
        principal,
        cameras=camera_summaries(web_context(request)),
        show_snapshots=principal.role in SNAPSHOT_ROLES,
        home=home,
        tiles=home_tiles(request, principal) if home else [],
    )


@router.get("/", include_in_schema=False)
def home_page(request: Request, principal: Annotated[Principal, public()]) -> Response:
    return _status(request, principal, home=True)


@router.get("/status", include_in_schema=False)
def status_page(request: Request, principal: Annotated[Principal, public()]) -> Response:
    return _status(request, principal, home=False)


@router.get("/api/cameras", tags=["cameras"])
def list_cameras(
    request: Request, principal: Annotated[Principal, public()]
) -> list[CameraSummary]:
    """State and frame rate of every camera (no images)."""
    return camera_summaries(web_context(request))


@router.get(
    "/cameras/{camera_id}/snapshot.jpg",
    tags=["cameras"],
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {}, 503: {}},
)
def camera_snapshot(
    request: Request,
    camera_id: str,
    principal: Annotated[Principal, require_roles(*SNAPSHOT_ROLES, same_origin=True)],
) -> Response:
    """The camera's latest frame as JPEG, privacy masks blacked out; audited, so refused when
    another website asks for it."""
    context = web_context(request)
    pictures = context.pictures.get(camera_id)
    if pictures is None:
        raise NotFoundError("camera")
    picture = pictures.latest()
    if picture is None:
        return JSONResponse(
            {"error": {"field": None, "code": "camera.no_frame", "message": "no frame yet"}},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    throttle: ViewAuditThrottle = request.app.state.camera_view_audit
    if throttle.should_record(principal.actor, camera_id):
        context.audit.record(principal.actor, "camera.view", f"camera:{camera_id}", "snapshot")
    return Response(
        picture.jpeg,
        media_type="image/jpeg",
        headers={"Cache-Control": "no-store", "X-Frame-Seq": str(picture.seq)},
    )


def health_report(health: dict[str, object]) -> HealthReport:
    """Overall status plus every part.

    ``context.health()`` may already be a report (``status`` and ``parts`` keys, plus figures
    such as ``problems``), which is passed on with its status; a plain mapping of parts gets
    an overall status computed from them.
    """
    parts = health.get("parts")
    status = health.get("status")
    if isinstance(parts, dict) and isinstance(status, str):
        extra = {key: value for key, value in health.items() if key not in {"status", "parts"}}
        healthy = status == "ok" and all(part_is_healthy(value) for value in parts.values())
        return HealthReport(status="ok" if healthy else "degraded", parts=parts, **extra)
    healthy = all(part_is_healthy(value) for value in health.values())
    return HealthReport(status="ok" if healthy else "degraded", parts=dict(health))


class HealthStatus(BaseModel):
    status: str  # "ok" or "degraded"


@router.get("/healthz", tags=["health"])
def healthz(
    request: Request, principal: Annotated[Principal, public()]
) -> HealthReport | HealthStatus:
    """Overall health (``ok`` or ``degraded``), always 200 while the UI runs. Police and admin
    also get every part: camera errors, link state, the host's memory and disk are a map for
    an attacker, so an anonymous visitor (a monitor, the kiosk screen) gets the status only."""
    report = health_report(web_context(request).health())
    if principal.role in HEALTH_DETAIL_ROLES:
        return report
    return HealthStatus(status=report.status)
