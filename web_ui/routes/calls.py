"""Family video calls (视频通话): the kiosk's call screen, the phone's call page, their JSON API
and their event streams.

Two parties, two sets of routes:
- the kiosk's own screen (``/kiosk/calls``, ``/api/kiosk/calls/...``): the guard admits everyone,
  and the route answers 404 to any client but the kiosk's browser (loopback), which is the only
  one that may answer or place the kiosk's side of a call. State changes also check the page's
  CSRF token (the visitor's, or the session's when someone is signed in at the kiosk);
- a family account (``/family/calls``, ``/api/calls/...``): it calls the kiosk for one of its
  households and answers calls meant for it; any other household or call is 403.

Pages learn of calls through server-sent events (``GET .../events``, ``text/event-stream``):
``state`` when the stream opens (the calls on now, the number of missed calls), then
``ringing``, ``answered`` and ``ended``. A stream closes itself after STREAM_SECONDS and the
browser's EventSource reconnects; each audience holds a few streams at most.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from agent.accounts import Role
from agent.rtc.calls import (
    FAMILY,
    KIOSK,
    MAX_FPS,
    MAX_LONG_SIDE,
    MAX_SHORT_SIDE,
    CallBusyError,
    CallInfo,
    CallNotFoundError,
    CallService,
    CallStateError,
    NotYourCallError,
    SubscribersFullError,
    audience_of,
)
from agent.rtc.peers import Answer, Offer, PeerBusyError
from agent.village.family import Household, HouseholdNotFoundError
from web_ui.context import WebContext
from web_ui.errors import NotFoundError, api_error
from web_ui.i18n import Translator
from web_ui.kiosk import kiosk_screen_api
from web_ui.live_page import browser_ice_servers
from web_ui.params import MAX_RECORD_ID
from web_ui.rendering import render, translator
from web_ui.security import (
    AccessDeniedError,
    Principal,
    public,
    require_roles,
    web_context,
)

router = APIRouter()

# An event stream lives this long, then the browser reconnects (and its session is looked up
# again); a comment every KEEPALIVE_SECONDS keeps proxies from closing it and finds dead clients.
STREAM_SECONDS = 300.0
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 3000
_CALL_ID = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_BUSY_RETRY_SECONDS = "10"
_TEXT_KEYS = (
    "calling",
    "incoming",
    "mute",
    "unmute",
    "connecting",
    "in_call",
    "ended_hangup",
    "ended_declined",
    "ended_missed",
    "ended_failed",
    "ended_time_limit",
    "busy",
    "forbidden",
    "no_media",
    "failed",
    "missed_from",
)


class CallOffer(BaseModel):
    sdp: Annotated[str, Field(min_length=1, max_length=64 * 1024)]
    type: Annotated[str, Field(max_length=16)] = "offer"


class CallAnswer(BaseModel):
    session: str
    sdp: str
    type: str


class KioskCallRequest(BaseModel):
    household_id: Annotated[int, Field(ge=1, le=MAX_RECORD_ID)]
    username: Annotated[str, Field(min_length=1, max_length=64)]


class FamilyCallRequest(BaseModel):
    household_id: Annotated[int, Field(ge=1, le=MAX_RECORD_ID)]


class Directory(Protocol):
    """What calls need of the family link (agent.village.family.FamilyService)."""

    def list_households(self) -> list[Household]: ...

    def get_household(self, household_id: int) -> Household: ...

    def households_of(self, username: str) -> list[Household]: ...


# -- helpers -------------------------------------------------------------------------------------


def _service(context: WebContext) -> CallService:
    if context.calls is None:
        raise NotFoundError("calls")
    return context.calls


def _directory(context: WebContext) -> Directory:
    return context.family


def _username(principal: Principal) -> str:
    return str(principal.username)


async def _own_households(context: WebContext, principal: Principal) -> list[Household]:
    return await run_in_threadpool(_directory(context).households_of, _username(principal))


async def _require_member(context: WebContext, principal: Principal, household_id: int) -> None:
    """A family account acts only for a household it belongs to (now, not when it rang)."""
    households = await _own_households(context, principal)
    if all(household.id != household_id for household in households):
        raise AccessDeniedError(403, "auth.forbidden")


def _error(request: Request, exc: Exception) -> Response:
    """The JSON answer for a call error."""
    t = translator(request)
    if isinstance(exc, CallBusyError | PeerBusyError):
        headers = {"Retry-After": _BUSY_RETRY_SECONDS}
        return api_error(409, None, "call.busy", t("error.call.busy"), headers)
    if isinstance(exc, CallNotFoundError):
        return api_error(404, None, "not_found", t("error.not_found"))
    if isinstance(exc, NotYourCallError):
        return api_error(403, None, "auth.forbidden", t("error.auth.forbidden"))
    if isinstance(exc, CallStateError):
        return api_error(409, exc.field, exc.message, t(f"error.{exc.message}"))
    if isinstance(exc, SubscribersFullError):
        return api_error(503, None, "call.streams_full", t("error.call.streams_full"), {})
    raise exc


def _created(call: CallInfo) -> Response:
    return JSONResponse({"call": call.to_json()}, status_code=201)


def _answered(answer: Answer) -> Response:
    payload = CallAnswer(session=answer.peer.id, sdp=answer.sdp, type=answer.type)
    return Response(payload.model_dump_json(), status_code=201, media_type="application/json")


def call_page_settings(context: WebContext, side: str, api: str) -> str:
    """JSON for the call page's ``data-call-config``: ICE servers (TURN credentials go only to
    the kiosk's own screen and signed-in family pages), the API base and the ring time."""
    rtc = context.config.rtc
    settings = {
        "side": side,
        "api": api,
        "iceServers": browser_ice_servers(rtc),
        "ringSeconds": rtc.ring_seconds,
        "kioskIdleSeconds": int(context.config.web.kiosk_idle_seconds) if side == KIOSK else 0,
        # What the agent relays at most: a camera asked for more would be scaled down anyway.
        "video": {"width": MAX_LONG_SIDE, "height": MAX_SHORT_SIDE, "fps": MAX_FPS},
    }
    return json.dumps(settings, ensure_ascii=False)


def call_page_texts(t: Translator) -> str:
    return json.dumps({key: t(f"call.{key}") for key in _TEXT_KEYS}, ensure_ascii=False)


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _state(service: CallService, audience: str) -> dict[str, Any]:
    missed = await service.missed(audience)
    return {
        "calls": [call.to_json() for call in service.live(audience)],
        "missed": [call.to_json() for call in missed],
    }


def _event_stream(request: Request, service: CallService, audience: str) -> Response:
    if "text/event-stream" not in request.headers.get("accept", ""):
        # Only EventSource reads this route; anything else would hold a connection open.
        return api_error(406, None, "call.events_only", "Accept: text/event-stream")

    if not service.stream_room(audience):
        return _error(request, SubscribersFullError("too many event streams"))

    async def body() -> AsyncIterator[str]:
        deadline = time.monotonic() + STREAM_SECONDS
        try:
            async with service.subscribe(audience) as subscription:
                yield f"retry: {RETRY_MS}\n\n"
                yield _sse("state", await _state(service, audience))
                while time.monotonic() < deadline:
                    wait = min(KEEPALIVE_SECONDS, deadline - time.monotonic())
                    event = await subscription.next(wait)
                    if event is not None:
                        yield _sse(event.name, {"call": event.call.to_json()})
                    elif subscription.closed:
                        break
                    else:
                        yield ": keepalive\n\n"
        except SubscribersFullError:
            return  # taken by another stream since the check: the browser retries

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _offer(request: Request, answering: Awaitable[Answer]) -> Response:
    try:
        return _answered(await answering)
    except (
        CallBusyError,
        PeerBusyError,
        CallNotFoundError,
        NotYourCallError,
        CallStateError,
    ) as exc:
        return _error(request, exc)


# -- pages ---------------------------------------------------------------------------------------


@router.get("/kiosk/calls", include_in_schema=False)
def kiosk_call_page(request: Request, principal: Annotated[Principal, public()]) -> Response:
    """The kiosk's call screen: family members to call, the ring, the call itself."""
    kiosk_screen_api(request, principal)
    context = web_context(request)
    _service(context)
    households = _directory(context).list_households()
    return render(
        request,
        "call_kiosk.html",
        principal,
        contacts=[household for household in households if household.members],
        call_config=call_page_settings(context, KIOSK, "/api/kiosk/calls"),
        call_texts=call_page_texts(translator(request)),
        # This screen is where the kiosk rests and rings: call.js signs a forgotten session
        # out itself, and never during a call, instead of going home.
        kiosk_idle_seconds=0,
    )


@router.get("/family/calls", include_in_schema=False)
def family_call_page(
    request: Request, principal: Annotated[Principal, require_roles(Role.FAMILY)]
) -> Response:
    """The phone's call page: call the kiosk of a household, answer its calls."""
    context = web_context(request)
    _service(context)
    households = _directory(context).households_of(_username(principal))
    return render(
        request,
        "call_family.html",
        principal,
        households=households,
        call_config=call_page_settings(context, FAMILY, "/api/calls"),
        call_texts=call_page_texts(translator(request)),
    )


# -- the kiosk's side ----------------------------------------------------------------------------


@router.get("/api/kiosk/calls", tags=["calls"], include_in_schema=False)
async def kiosk_calls(request: Request, principal: Annotated[Principal, public()]) -> Response:
    """Whom the kiosk can call (households and their members), the calls on now, missed calls."""
    kiosk_screen_api(request, principal)
    context = web_context(request)
    service = _service(context)
    households = await run_in_threadpool(_directory(context).list_households)
    contacts = [
        {"household": {"id": h.id, "name": h.name}, "members": list(h.members)}
        for h in households
        if h.members
    ]
    return JSONResponse({"contacts": contacts, **await _state(service, KIOSK)})


@router.get("/api/kiosk/calls/events", include_in_schema=False)
async def kiosk_call_events(
    request: Request, principal: Annotated[Principal, public()]
) -> Response:
    """Server-sent events for the kiosk screen."""
    kiosk_screen_api(request, principal)
    return _event_stream(request, _service(web_context(request)), KIOSK)


@router.post("/api/kiosk/calls", include_in_schema=False, status_code=201)
async def kiosk_place_call(
    request: Request, body: KioskCallRequest, principal: Annotated[Principal, public()]
) -> Response:
    """The kiosk calls a member of a household."""
    kiosk_screen_api(request, principal)
    context = web_context(request)
    service = _service(context)
    try:
        household = await run_in_threadpool(_directory(context).get_household, body.household_id)
    except HouseholdNotFoundError as exc:
        raise NotFoundError("household") from exc
    if body.username not in household.members:
        raise NotFoundError("member")
    try:
        call = await service.start(
            caller=KIOSK,
            household_id=household.id,
            household_name=household.name,
            family_user=body.username,
        )
    except CallBusyError as exc:
        return _error(request, exc)
    return _created(call)


@router.post("/api/kiosk/calls/{call_id}/answer", include_in_schema=False, status_code=201)
async def kiosk_answer(
    request: Request,
    call_id: _CALL_ID,
    body: CallOffer,
    principal: Annotated[Principal, public()],
) -> Response:
    """The kiosk screen takes a ringing call: its offer in, the agent's answer out."""
    kiosk_screen_api(request, principal)
    service = _service(web_context(request))
    offer = Offer(sdp=body.sdp, type=body.type)
    return await _offer(request, service.answer(call_id, side=KIOSK, username=None, offer=offer))


@router.post("/api/kiosk/calls/{call_id}/join", include_in_schema=False, status_code=201)
async def kiosk_join(
    request: Request,
    call_id: _CALL_ID,
    body: CallOffer,
    principal: Annotated[Principal, public()],
) -> Response:
    """The kiosk's media for a call it placed, once the family member answered."""
    kiosk_screen_api(request, principal)
    service = _service(web_context(request))
    offer = Offer(sdp=body.sdp, type=body.type)
    return await _offer(request, service.join(call_id, side=KIOSK, username=None, offer=offer))


@router.post("/api/kiosk/calls/{call_id}/decline", include_in_schema=False)
async def kiosk_decline(
    request: Request, call_id: _CALL_ID, principal: Annotated[Principal, public()]
) -> Response:
    kiosk_screen_api(request, principal)
    service = _service(web_context(request))
    try:
        call = await service.decline(call_id, side=KIOSK, username=None)
    except (CallNotFoundError, NotYourCallError, CallStateError) as exc:
        return _error(request, exc)
    return JSONResponse({"call": call.to_json()})


@router.post("/api/kiosk/calls/{call_id}/hangup", include_in_schema=False)
async def kiosk_hangup(
    request: Request, call_id: _CALL_ID, principal: Annotated[Principal, public()]
) -> Response:
    kiosk_screen_api(request, principal)
    service = _service(web_context(request))
    try:
        call = await service.hangup(call_id, side=KIOSK, username=None)
    except (CallNotFoundError, NotYourCallError) as exc:
        return _error(request, exc)
    return JSONResponse({"call": call.to_json()})


@router.post("/api/kiosk/calls/missed/seen", include_in_schema=False)
async def kiosk_missed_seen(
    request: Request, principal: Annotated[Principal, public()]
) -> Response:
    """The missed calls shown at the kiosk were seen: they leave the list."""
    kiosk_screen_api(request, principal)
    seen = await _service(web_context(request)).mark_seen(KIOSK)
    return JSONResponse({"seen": seen})


# -- the family member's side --------------------------------------------------------------------

_FAMILY = require_roles(Role.FAMILY)


@router.get("/api/calls", tags=["calls"])
async def family_calls(
    request: Request, principal: Annotated[Principal, _FAMILY]
) -> dict[str, Any]:
    """The households this account may call the kiosk for, its calls now and missed calls."""
    context = web_context(request)
    service = _service(context)
    households = await _own_households(context, principal)
    audience = audience_of(FAMILY, _username(principal))
    return {
        "households": [{"id": h.id, "name": h.name} for h in households],
        **await _state(service, audience),
    }


@router.get("/api/calls/events", include_in_schema=False)
async def family_call_events(
    request: Request, principal: Annotated[Principal, _FAMILY]
) -> Response:
    """Server-sent events for a family account's pages."""
    service = _service(web_context(request))
    return _event_stream(request, service, audience_of(FAMILY, _username(principal)))


@router.post(
    "/api/calls",
    tags=["calls"],
    status_code=201,
    responses={409: {"description": "a call is on already (call.busy)"}, 403: {}, 404: {}},
)
async def family_place_call(
    request: Request, body: FamilyCallRequest, principal: Annotated[Principal, _FAMILY]
) -> Response:
    """Call the kiosk for one of this account's households."""
    context = web_context(request)
    service = _service(context)
    households = await _own_households(context, principal)
    household = next((h for h in households if h.id == body.household_id), None)
    if household is None:
        raise AccessDeniedError(403, "auth.forbidden")
    try:
        call = await service.start(
            caller=FAMILY,
            household_id=household.id,
            household_name=household.name,
            family_user=_username(principal),
        )
    except CallBusyError as exc:
        return _error(request, exc)
    return _created(call)


async def _family_call(request: Request, principal: Principal, call_id: str) -> CallService:
    """The service, once the call is this account's and its household still theirs."""
    context = web_context(request)
    service = _service(context)
    try:
        call = await service.get(call_id)
    except CallNotFoundError as exc:
        raise NotFoundError("call") from exc
    if call.family_user != principal.username:
        raise AccessDeniedError(403, "auth.forbidden")
    await _require_member(context, principal, call.household_id)
    return service


@router.post(
    "/api/calls/{call_id}/answer",
    tags=["calls"],
    status_code=201,
    response_model=CallAnswer,
    responses={409: {}, 403: {}, 404: {}},
)
async def family_answer(
    request: Request,
    call_id: _CALL_ID,
    body: CallOffer,
    principal: Annotated[Principal, _FAMILY],
) -> Response:
    """Take a call from the kiosk: the phone's offer in, the agent's answer out."""
    service = await _family_call(request, principal, call_id)
    offer = Offer(sdp=body.sdp, type=body.type)
    username = _username(principal)
    return await _offer(
        request, service.answer(call_id, side=FAMILY, username=username, offer=offer)
    )


@router.post(
    "/api/calls/{call_id}/join",
    tags=["calls"],
    status_code=201,
    response_model=CallAnswer,
    responses={409: {}, 403: {}, 404: {}},
)
async def family_join(
    request: Request,
    call_id: _CALL_ID,
    body: CallOffer,
    principal: Annotated[Principal, _FAMILY],
) -> Response:
    """The phone's media for a call it placed, once the kiosk answered."""
    service = await _family_call(request, principal, call_id)
    offer = Offer(sdp=body.sdp, type=body.type)
    username = _username(principal)
    return await _offer(request, service.join(call_id, side=FAMILY, username=username, offer=offer))


@router.post("/api/calls/{call_id}/decline", tags=["calls"], responses={409: {}, 403: {}})
async def family_decline(
    request: Request, call_id: _CALL_ID, principal: Annotated[Principal, _FAMILY]
) -> Response:
    service = _service(web_context(request))
    try:
        call = await service.decline(call_id, side=FAMILY, username=_username(principal))
    except (CallNotFoundError, NotYourCallError, CallStateError) as exc:
        return _error(request, exc)
    return JSONResponse({"call": call.to_json()})


@router.post("/api/calls/{call_id}/hangup", tags=["calls"], responses={403: {}, 404: {}})
async def family_hangup(
    request: Request, call_id: _CALL_ID, principal: Annotated[Principal, _FAMILY]
) -> Response:
    """End a call (or stop ringing); the other side is told at once."""
    service = _service(web_context(request))
    try:
        # No household check: whoever is in a call may always end it.
        call = await service.hangup(call_id, side=FAMILY, username=_username(principal))
    except (CallNotFoundError, NotYourCallError) as exc:
        return _error(request, exc)
    return JSONResponse({"call": call.to_json()})


@router.post("/api/calls/missed/seen", tags=["calls"])
async def family_missed_seen(
    request: Request, principal: Annotated[Principal, _FAMILY]
) -> dict[str, int]:
    """The missed calls shown on the phone were seen: they leave the list."""
    service = _service(web_context(request))
    return {"seen": await service.mark_seen(audience_of(FAMILY, _username(principal)))}
