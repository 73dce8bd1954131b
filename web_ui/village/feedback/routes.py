"""Feedback pages and their JSON twins.

- ``/feedback`` and ``/feedback/reply``: leave feedback and read the reply with its code, on
  the kiosk's own screen or a phone signed in with a family account (404 anywhere else). The
  code is shown in the answer to the form and travels only in form bodies, never in a URL.
- ``/staff/feedback``: the list with filters, one feedback and its reply (staff, admins).
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.accounts import Role
from agent.errors import RecordNotFoundError, ValidationError
from agent.village.feedback import (
    Actor,
    Category,
    CodePausedError,
    Feedback,
    FeedbackInput,
    FeedbackService,
    State,
)
from agent.village.feedback.records import MAX_REPLY, MAX_TEXT, parse_category, parse_state
from web_ui.errors import NotFoundError, api_error, validation_detail
from web_ui.params import RecordId, form_text
from web_ui.rendering import client_address, is_kiosk_screen, render, translator
from web_ui.security import Principal, public, require_roles, web_context

pages = APIRouter(include_in_schema=False)
api = APIRouter()

# Form values are cut here, well above every limit, so an over-long text still reaches the
# service and gets its own message rather than being shortened silently.
_MAX_FORM_VALUE = 20_000
_STAFF = (Role.STAFF, Role.ADMIN)


def _service(request: Request) -> FeedbackService:
    return web_context(request).service(FeedbackService)


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal.actor, principal.role, is_kiosk_screen(request))


def _not_here(request: Request, principal: Principal) -> Response:
    message = translator(request)("feedback.not_here")
    return render(request, "error.html", principal, status_code=404, status=404, message=message)


def _welcome(request: Request, principal: Principal) -> bool:
    return _service(request).welcomes(_actor(request, principal))


# -- villagers -----------------------------------------------------------------------------------


def _render_form(
    request: Request,
    principal: Principal,
    values: dict[str, str],
    *,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "feedback/form.html",
        principal,
        status_code=status_code,
        values=values,
        categories=tuple(Category),
        max_text=MAX_TEXT,
        error_text=validation_detail(translator(request), error) if error else None,
        error_input=error.field if error else None,
    )


@pages.get("/feedback")
def form_page(request: Request, principal: Annotated[Principal, public()]) -> Response:
    if not _welcome(request, principal):
        return _not_here(request, principal)
    return _render_form(request, principal, {"anonymous": "1"})


@pages.post("/feedback")
async def submit_page(request: Request, principal: Annotated[Principal, public()]) -> Response:
    """The answer shows the code once (no redirect: the code sits in no URL or history)."""
    if not _welcome(request, principal):
        return _not_here(request, principal)
    form = await request.form()
    values = {
        name: form_text(form, name, _MAX_FORM_VALUE, strip=False)
        for name in ("category", "text", "anonymous", "name", "phone")
    }
    feedback = FeedbackInput(
        values["category"],
        values["text"],
        anonymous=values["anonymous"] == "1",
        name=values["name"],
        phone=values["phone"],
    )
    try:
        submitted = await run_in_threadpool(
            partial(_service(request).submit, feedback, actor=_actor(request, principal))
        )
    except ValidationError as exc:
        return _render_form(request, principal, values, error=exc, status_code=422)
    return render(request, "feedback/submitted.html", principal, code=submitted.code)


def _render_lookup(
    request: Request,
    principal: Principal,
    *,
    code: str = "",
    view: Any = None,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    response = render(
        request,
        "feedback/reply.html",
        principal,
        status_code=status_code,
        code=code,
        view=view,
        error_text=validation_detail(translator(request), error) if error else None,
    )
    if isinstance(error, CodePausedError):
        response.headers["Retry-After"] = str(error.retry_after_seconds)
    return response


@pages.get("/feedback/reply")
def lookup_page(request: Request, principal: Annotated[Principal, public()]) -> Response:
    if not _welcome(request, principal):
        return _not_here(request, principal)
    return _render_lookup(request, principal)


@pages.post("/feedback/reply")
async def lookup_submit(request: Request, principal: Annotated[Principal, public()]) -> Response:
    if not _welcome(request, principal):
        return _not_here(request, principal)
    form = await request.form()
    code = form_text(form, "code", _MAX_FORM_VALUE, strip=False)[:40]
    read = partial(
        _service(request).read_reply,
        code,
        actor=_actor(request, principal),
        address=client_address(request),
    )
    try:
        view = await run_in_threadpool(read)
    except CodePausedError as exc:
        return _render_lookup(request, principal, code=code, error=exc, status_code=429)
    except ValidationError as exc:
        return _render_lookup(request, principal, code=code, error=exc, status_code=422)
    return _render_lookup(request, principal, view=view)


# -- staff ---------------------------------------------------------------------------------------


@pages.get("/staff/feedback")
def list_page(
    request: Request,
    principal: Annotated[Principal, require_roles(*_STAFF)],
    category: str = "",
    state: str = "",
) -> Response:
    items = _service(request).list(
        actor=_actor(request, principal),
        category=parse_category(category[:40]),
        state=parse_state(state[:40]),
    )
    return render(
        request,
        "feedback/list.html",
        principal,
        items=items,
        categories=tuple(Category),
        states=tuple(State),
        category=category,
        state=state,
    )


def _render_detail(
    request: Request,
    principal: Principal,
    item: Feedback,
    *,
    reply: str | None = None,
    error: ValidationError | None = None,
    status_code: int = 200,
) -> Response:
    t = translator(request)
    return render(
        request,
        "feedback/detail.html",
        principal,
        status_code=status_code,
        item=item,
        reply=item.reply if reply is None else reply,
        max_reply=MAX_REPLY,
        error_text=validation_detail(t, error) if error else None,
        error_input=error.field if error else None,
        notice=t("feedback.notice.replied") if request.query_params.get("done") else None,
    )


@pages.get("/staff/feedback/{feedback_id}")
def detail_page(
    request: Request,
    feedback_id: RecordId,
    principal: Annotated[Principal, require_roles(*_STAFF)],
) -> Response:
    item = _service(request).get(feedback_id, actor=_actor(request, principal))
    return _render_detail(request, principal, item)


@pages.post("/staff/feedback/{feedback_id}/reply")
async def reply_page(
    request: Request,
    feedback_id: RecordId,
    principal: Annotated[Principal, require_roles(*_STAFF)],
) -> Response:
    form = await request.form()
    text = form_text(form, "reply", _MAX_FORM_VALUE, strip=False)
    service = _service(request)
    actor = _actor(request, principal)
    try:
        await run_in_threadpool(partial(service.reply, feedback_id, text, actor=actor))
    except RecordNotFoundError:
        raise
    except ValidationError as exc:
        item = await run_in_threadpool(partial(service.get, feedback_id, actor=actor))
        return _render_detail(request, principal, item, reply=text, error=exc, status_code=422)
    return RedirectResponse(f"/staff/feedback/{feedback_id}?done=replied", status_code=303)


# -- JSON ----------------------------------------------------------------------------------------


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Annotated[str, Field(max_length=40)]
    text: Annotated[str, Field(max_length=_MAX_FORM_VALUE)]
    anonymous: bool = True
    name: Annotated[str, Field(max_length=_MAX_FORM_VALUE)] = ""
    phone: Annotated[str, Field(max_length=100)] = ""


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(max_length=40)]


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reply: Annotated[str, Field(max_length=_MAX_FORM_VALUE)]


class SubmittedOut(BaseModel):
    code: str = Field(description="shown once: the only key to the reply")
    state: str


class ReplyViewOut(BaseModel):
    category: str
    text: str
    state: str
    created_at: dt.datetime
    reply: str
    replied_at: dt.datetime | None


class FeedbackOut(BaseModel):
    id: int
    category: str
    text: str
    anonymous: bool
    name: str
    phone: str = Field(description="always masked")
    channel: str
    state: str
    created_at: dt.datetime
    reply: str
    replied_by: str
    replied_at: dt.datetime | None

    @classmethod
    def of(cls, item: Feedback) -> FeedbackOut:
        return cls(
            id=item.id,
            category=item.category.value,
            text=item.text,
            anonymous=item.anonymous,
            name=item.name,
            phone=item.phone,
            channel=item.channel,
            state=item.state.value,
            created_at=item.created_at,
            reply=item.reply,
            replied_by=item.replied_by,
            replied_at=item.replied_at,
        )


@api.post("/feedback", status_code=201, response_model=SubmittedOut)
def api_submit(
    request: Request, body: FeedbackIn, principal: Annotated[Principal, public()]
) -> Any:
    """Leave feedback from the kiosk's screen or a family phone (404 from anywhere else)."""
    if not _welcome(request, principal):
        raise NotFoundError("feedback")
    submitted = _service(request).submit(
        FeedbackInput(body.category, body.text, body.anonymous, body.name, body.phone),
        actor=_actor(request, principal),
    )
    return SubmittedOut(code=submitted.code, state=submitted.feedback.state.value)


@api.post(
    "/feedback/lookup",
    response_model=ReplyViewOut,
    responses={429: {"description": "too many wrong codes from this client"}},
)
def api_lookup(request: Request, body: CodeIn, principal: Annotated[Principal, public()]) -> Any:
    """The feedback a code belongs to and its reply; wrong codes are limited per client."""
    if not _welcome(request, principal):
        raise NotFoundError("feedback")
    try:
        view = _service(request).read_reply(
            body.code, actor=_actor(request, principal), address=client_address(request)
        )
    except CodePausedError as exc:
        t = translator(request)
        return api_error(
            429,
            "code",
            exc.message,
            t.error_message(exc.message),
            headers={"Retry-After": str(exc.retry_after_seconds)},
        )
    return ReplyViewOut(
        category=view.category.value,
        text=view.text,
        state=view.state.value,
        created_at=view.created_at,
        reply=view.reply,
        replied_at=view.replied_at,
    )


@api.get("/feedback", response_model=list[FeedbackOut])
def api_list(
    request: Request,
    principal: Annotated[Principal, require_roles(*_STAFF)],
    category: str = "",
    state: str = "",
) -> Any:
    items = _service(request).list(
        actor=_actor(request, principal),
        category=parse_category(category[:40]),
        state=parse_state(state[:40]),
    )
    return [FeedbackOut.of(item) for item in items]


@api.get("/feedback/{feedback_id}", response_model=FeedbackOut)
def api_get(
    request: Request,
    feedback_id: RecordId,
    principal: Annotated[Principal, require_roles(*_STAFF)],
) -> Any:
    return FeedbackOut.of(_service(request).get(feedback_id, actor=_actor(request, principal)))


@api.post("/feedback/{feedback_id}/reply", response_model=FeedbackOut)
def api_reply(
    request: Request,
    feedback_id: RecordId,
    body: ReplyIn,
    principal: Annotated[Principal, require_roles(*_STAFF)],
) -> Any:
    item = _service(request).reply(feedback_id, body.reply, actor=_actor(request, principal))
    return FeedbackOut.of(item)
