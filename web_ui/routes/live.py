"""Live video: WebRTC signaling over HTTP (offer in, answer out), the MJPEG fallback, and the
police patrol page (视频巡逻).

Who may watch: police and admin any camera; a family account only the cameras of its
households (agent.village.family). Every view is audited with its start and end by
agent.rtc.views, and counts against the viewer limits, whichever way it is delivered.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response, StreamingResponse

from agent.accounts import Role
from agent.rtc.peers import Offer, PeerBusyError
from agent.rtc.views import LiveViews
from web_ui.context import WebContext
from web_ui.errors import NotFoundError, api_error
from web_ui.rendering import render, translator
from web_ui.routes.status import camera_summaries
from web_ui.security import AccessDeniedError, Principal, require_roles, web_context

router = APIRouter()

LIVE_ROLES = (Role.POLICE, Role.ADMIN, Role.FAMILY)
PATROL_ROLES = (Role.POLICE, Role.ADMIN)
_BOUNDARY = "kiosk-frame"
_TIER = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class LiveOffer(BaseModel):
    sdp: Annotated[str, Field(min_length=1, max_length=64 * 1024)]
    type: Annotated[str, Field(max_length=16)] = "offer"
    tier: _TIER = "low"


class LiveAnswer(BaseModel):
    session: str
    sdp: str
    type: str


def _views(context: WebContext) -> LiveViews:
    if context.live is None:
        raise NotFoundError("live")
    return context.live


def _may_watch(context: WebContext, principal: Principal, camera_id: str) -> None:
    """Police and admin watch every camera; a family account only its households' cameras,
    and for any other camera it is told no more than for one that does not exist."""
    if principal.role is Role.FAMILY:
        allowed = context.family.cameras_for(principal.username or "")
        if camera_id not in allowed:
            raise AccessDeniedError(403, "auth.forbidden")


def _busy(request: Request) -> Response:
    t = translator(request)
    return api_error(409, None, "live.busy", t("error.live.busy"), {"Retry-After": "10"})


@router.post(
    "/api/live/{camera_id}/offer",
    tags=["live"],
    status_code=201,
    responses={409: {"description": "too many viewers (live.busy)"}, 404: {}, 403: {}},
)
async def live_offer(
    request: Request,
    camera_id: Annotated[str, Path(max_length=64)],
    body: LiveOffer,
    principal: Annotated[Principal, require_roles(*LIVE_ROLES)],
) -> Response:
    """Watch a camera live: a WebRTC offer (recvonly video) in, the agent's answer out.
    The view ends with DELETE /api/live/sessions/{session}, or when the browser goes away."""
    context = web_context(request)
    _may_watch(context, principal, camera_id)
    views = _views(context)
    try:
        answer = await views.open(
            Offer(sdp=body.sdp, type=body.type),
            viewer=principal.actor,
            camera_id=camera_id,
            tier=body.tier,
        )
    except PeerBusyError:
        return _busy(request)
    payload = LiveAnswer(session=answer.peer.id, sdp=answer.sdp, type=answer.type)
    return Response(payload.model_dump_json(), status_code=201, media_type="application/json")


@router.delete("/api/live/sessions/{session_id}", tags=["live"], status_code=204)
async def live_close(
    request: Request,
    session_id: Annotated[str, Path(max_length=64)],
    principal: Annotated[Principal, require_roles(*LIVE_ROLES)],
) -> Response:
    """Stop watching; only the viewer who opened a session can end it."""
    if not await _views(web_context(request)).close(principal.actor, session_id):
        raise NotFoundError("session")
    return Response(status_code=204)


@router.get(
    "/live/{camera_id}/mjpeg",
    tags=["live"],
    response_class=StreamingResponse,
    responses={200: {"content": {"multipart/x-mixed-replace": {}}}, 409: {}},
)
async def live_mjpeg(
    request: Request,
    camera_id: Annotated[str, Path(max_length=64)],
    principal: Annotated[Principal, require_roles(*LIVE_ROLES, same_origin=True)],
    tier: Annotated[str, Query(max_length=64)] = "low",
) -> Response:
    """The fallback where WebRTC fails: masked JPEG stills as multipart/x-mixed-replace, with
    the same roles, audit and limits as a WebRTC view."""
    context = web_context(request)
    _may_watch(context, principal, camera_id)
    views = _views(context)
    try:
        views.check(camera_id, tier)
    except PeerBusyError:
        return _busy(request)
    deadline = time.monotonic() + context.config.rtc.max_view_minutes * 60.0

    async def body() -> AsyncIterator[bytes]:
        # The view (its place under the limits, its audit) is taken only once the stream
        # runs: a client gone before the first byte leaves nothing held.
        view = views.stream(viewer=principal.actor, camera_id=camera_id, tier=tier)
        try:
            async with view as stills:
                async for jpeg in stills:
                    if time.monotonic() > deadline or await request.is_disconnected():
                        break
                    yield (
                        (
                            f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n"
                        ).encode()
                        + jpeg
                        + b"\r\n"
                    )
        except PeerBusyError:
            return  # another viewer took the last place since the check: an empty stream

    return StreamingResponse(
        body(),
        media_type=f"multipart/x-mixed-replace; boundary={_BOUNDARY}",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/police/patrol", include_in_schema=False)
def patrol_page(
    request: Request, principal: Annotated[Principal, require_roles(*PATROL_ROLES)]
) -> Response:
    """A grid of the village's cameras (state, last event), each live on a tap."""
    context = web_context(request)
    last_events = context.last_events() if context.last_events is not None else {}
    return render(
        request,
        "patrol.html",
        principal,
        cameras=camera_summaries(context),
        last_events=last_events,
    )
