"""Notice pages: the board everyone may read, publishing for police, admin and village staff,
and the kiosk screen's urgent-notice takeover (a small JSON poll and the acknowledgement).

The kiosk routes answer 404 to any client but the kiosk's own screen: an acknowledgement
means someone stood at the kiosk and read the notice.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Body, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import JSONResponse, RedirectResponse, Response

from agent.accounts import Role
from agent.errors import ValidationError
from agent.village.notices import Notice, NoticeInput, NoticeService, Urgency
from agent.village.notices.records import MAX_TEXT, MAX_TITLE
from agent.village.photos import CONTENT_TYPE, UPLOAD_BODY_LIMIT
from web_ui.errors import validation_detail
from web_ui.kiosk import kiosk_screen_api
from web_ui.params import RecordId
from web_ui.rendering import render, translator
from web_ui.security import (
    Principal,
    public,
    require_roles,
    web_context,
)

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["notices"])

PUBLISHERS = (Role.POLICE, Role.ADMIN, Role.STAFF)
FORM_FIELDS = ("title", "text", "urgency", "expires_at")
URGENCIES = tuple(str(urgency) for urgency in Urgency)
# A new notice's expiry as the form suggests it.
DEFAULT_LIFETIME = dt.timedelta(days=1)


def notices(request: Request) -> NoticeService:
    return web_context(request).service(NoticeService)


# -- the board ---------------------------------------------------------------------------------


@router.get("/notices")
def board(request: Request, principal: Annotated[Principal, public()]) -> Response:
    return render(request, "notices/board.html", principal, notices=notices(request).active())


@router.get("/notices/{notice_id}/photo.jpg")
def notice_photo(
    request: Request, notice_id: RecordId, principal: Annotated[Principal, public()]
) -> Response:
    """The picture of a notice still shown (a notice is public; an expired one's is gone)."""
    return Response(
        notices(request).photo(notice_id),
        media_type=CONTENT_TYPE,
        headers={"Content-Disposition": "inline"},
    )


@api.get("/notices")
def list_notices(
    request: Request, principal: Annotated[Principal, public()]
) -> list[dict[str, Any]]:
    """The notices the board shows now (not expired), urgent first."""
    return [notice.summary() for notice in notices(request).active()]


# -- publishing --------------------------------------------------------------------------------


def _form_values(form: FormData) -> dict[str, str]:
    values = {}
    for name in FORM_FIELDS:
        value = form.get(name)
        # Cut well past the limits, so a too-long text is refused with its own message.
        values[name] = value.strip()[: MAX_TEXT * 2] if isinstance(value, str) else ""
    return values


def _render_manage(
    request: Request,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    t = translator(request)
    if values is None:
        expires = dt.datetime.now().replace(second=0, microsecond=0) + DEFAULT_LIFETIME
        values = {"urgency": "normal", "expires_at": expires.isoformat(timespec="minutes")}
    done = request.query_params.get("done") == "published"
    return render(
        request,
        "notices/manage.html",
        principal,
        status_code=status_code,
        values=values,
        urgencies=URGENCIES,
        recent=notices(request).recent(),
        now=dt.datetime.now(dt.UTC),
        max_title=MAX_TITLE,
        max_text=MAX_TEXT,
        published=done and error is None,
        # The message alone: it names what to fix, and sits beside its field as well.
        error_text=validation_detail(t, error) if error else None,
        error_detail=validation_detail(t, error) if error else None,
        error_input=error.field if error else None,
    )


@router.get("/notices/manage")
def manage_page(
    request: Request, principal: Annotated[Principal, require_roles(*PUBLISHERS)]
) -> Response:
    return _render_manage(request, principal)


def _upload(form: FormData) -> BinaryIO | None:
    photo = form.get("photo")
    if isinstance(photo, UploadFile) and (photo.filename or photo.size):
        return photo.file
    return None


def _input(values: dict[str, str]) -> NoticeInput:
    # An empty box is left out, so it reads as "required" rather than as an unreadable value.
    return NoticeInput.model_validate({name: value for name, value in values.items() if value})


def _publish(
    service: NoticeService, values: dict[str, str], photo: BinaryIO | None, actor: str
) -> Notice:
    return service.publish(_input(values), actor=actor, photo=photo)


# One photo may come with the form: this route's body limit is the photo store's.
@router.post("/notices/manage", max_body_size=UPLOAD_BODY_LIMIT)
async def manage_publish(
    request: Request, principal: Annotated[Principal, require_roles(*PUBLISHERS)]
) -> Response:
    form = await request.form()
    values = _form_values(form)
    try:
        await run_in_threadpool(_publish, notices(request), values, _upload(form), principal.actor)
    except ValidationError as exc:
        return await run_in_threadpool(
            partial(_render_manage, request, principal, values=values, error=exc, status_code=422)
        )
    return RedirectResponse("/notices/manage?done=published", status_code=303)


@api.post("/notices", status_code=201)
def api_publish(
    request: Request,
    body: Annotated[dict[str, Any], Body()],
    principal: Annotated[Principal, require_roles(*PUBLISHERS)],
) -> JSONResponse:
    """Publish a notice: ``title``, ``text``, ``urgency`` (normal/urgent), ``expires_at``."""
    notice = notices(request).publish(NoticeInput.model_validate(body), actor=principal.actor)
    return JSONResponse(notice.summary(), status_code=201)


# -- the kiosk screen --------------------------------------------------------------------------


@api.get("/kiosk/notices")
def kiosk_urgent(request: Request, principal: Annotated[Principal, public()]) -> dict[str, Any]:
    """What the kiosk screen's pages poll: the one urgent notice to show over any page (or
    none), with the overlay's texts in the screen's language."""
    kiosk_screen_api(request, principal)
    notice = notices(request).pending_urgent()
    t = translator(request)
    return {
        "urgent": notice.summary() if notice else None,
        "labels": {"heading": t("notices.urgent.heading"), "ack": t("notices.urgent.ack")},
    }


@api.post("/kiosk/notices/{notice_id}/ack")
def kiosk_acknowledge(
    request: Request, notice_id: RecordId, principal: Annotated[Principal, public()]
) -> dict[str, Any]:
    """Someone at the kiosk acknowledged the urgent notice; reported to the county."""
    kiosk_screen_api(request, principal)
    return notices(request).acknowledge(notice_id, actor=principal.actor).summary()
