"""Sign-in and sign-out (page and API) and the language switch."""

from __future__ import annotations

import math
import time
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from agent.accounts import Account, LoginRefusedError, SessionGrant
from web_ui.errors import TooManyAttemptsError, api_error
from web_ui.i18n import LANGUAGE_COOKIE, LANGUAGES
from web_ui.rendering import render, translator
from web_ui.security import (
    SESSION_COOKIE,
    SIGNED_IN,
    Principal,
    public,
    require_roles,
    web_context,
)
from web_ui.throttle import LoginThrottle

router = APIRouter()

_MAX_FIELD = 256


class LoginRequest(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=_MAX_FIELD)]
    password: Annotated[str, Field(min_length=1, max_length=_MAX_FIELD)]


class SessionInfo(BaseModel):
    username: str | None
    role: str
    csrf_token: str


def safe_next(target: str | None) -> str:
    """Only same-site paths; anything else (``//evil``, ``https://…``) goes home."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _set_session_cookie(request: Request, response: Response, grant: SessionGrant) -> None:
    web = web_context(request).config.web
    response.set_cookie(
        SESSION_COOKIE,
        grant.token,
        max_age=int(web.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=web.secure_cookies,
        path="/",
    )


def _sign_in(request: Request, username: str, password: str) -> SessionGrant:
    """Throttle, check the password, start a session; audited either way."""
    context = web_context(request)
    throttle: LoginThrottle = request.app.state.login_throttle
    address = _client_address(request)
    wait = throttle.retry_after(address)
    if wait:
        raise TooManyAttemptsError(wait)
    try:
        account: Account = context.accounts.authenticate(username, password)
    except LoginRefusedError as exc:
        throttle.failed(address)
        # The attempted name is logged only if it is a real account: a password typed into
        # the username box by mistake must not end up in the audit log.
        if context.accounts.get_user(username) is not None:
            detail = "locked" if exc.locked_until else ""
            context.audit.record(username, "auth.login_failed", f"user:{username}", detail)
        raise
    context.audit.record(account.username, "auth.login", f"user:{account.username}")
    return context.accounts.start_session(account)


def _refusal_message(request: Request, exc: LoginRefusedError) -> str:
    t = translator(request)
    if exc.locked_until:
        minutes = max(1, math.ceil((exc.locked_until - time.time()) / 60))
        return t("login.locked", minutes=minutes)
    return t("login.wrong")


@router.get("/login", include_in_schema=False)
def login_page(
    request: Request, principal: Annotated[Principal, public()], next: str = "/"
) -> Response:
    return render(request, "login.html", principal, next=safe_next(next), error=None, username="")


@router.post("/login", include_in_schema=False)
async def login_submit(request: Request, principal: Annotated[Principal, public()]) -> Response:
    form = await request.form()
    username = str(form.get("username", ""))[:_MAX_FIELD].strip()
    password = str(form.get("password", ""))[:_MAX_FIELD]
    target = safe_next(str(form.get("next", "/")))
    try:
        grant = await run_in_threadpool(_sign_in, request, username, password)
    except LoginRefusedError as exc:
        return render(
            request,
            "login.html",
            principal,
            status_code=401,
            next=target,
            error=_refusal_message(request, exc),
            username=username,
        )
    response = RedirectResponse(target, status_code=303)
    _set_session_cookie(request, response, grant)
    return response


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request, principal: Annotated[Principal, require_roles(*SIGNED_IN)]
) -> Response:
    if principal.session_token:
        web_context(request).accounts.end_session(principal.session_token)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language", include_in_schema=False)
async def switch_language(request: Request, principal: Annotated[Principal, public()]) -> Response:
    form = await request.form()
    language = str(form.get("language", ""))
    response = RedirectResponse(safe_next(str(form.get("next", "/"))), status_code=303)
    if language in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax", path="/"
        )
    return response


@router.post(
    "/api/session",
    tags=["session"],
    response_model=SessionInfo,
    responses={401: {"description": "wrong username or password, or locked"}, 429: {}},
)
async def api_login(
    request: Request, body: LoginRequest, principal: Annotated[Principal, public()]
) -> Response:
    """Sign in; the response sets the session cookie and carries the CSRF token to send
    as X-CSRF-Token with every state-changing request."""
    try:
        grant = await run_in_threadpool(_sign_in, request, body.username, body.password)
    except LoginRefusedError as exc:
        code = "auth.locked" if exc.locked_until else "auth.wrong"
        return api_error(401, None, code, _refusal_message(request, exc))
    response = JSONResponse(
        SessionInfo(
            username=grant.session.username,
            role=grant.session.role.value,
            csrf_token=grant.session.csrf_token,
        ).model_dump()
    )
    _set_session_cookie(request, response, grant)
    return response


@router.get("/api/session", tags=["session"])
def api_whoami(request: Request, principal: Annotated[Principal, public()]) -> SessionInfo:
    """Who the caller is (``anonymous`` without a session) and its CSRF token."""
    return SessionInfo(
        username=principal.username, role=principal.role_name, csrf_token=principal.csrf_token
    )


@router.delete("/api/session", tags=["session"], status_code=204)
def api_logout(
    request: Request, principal: Annotated[Principal, require_roles(*SIGNED_IN)]
) -> Response:
    if principal.session_token:
        web_context(request).accounts.end_session(principal.session_token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
