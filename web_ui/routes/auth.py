"""Sign-in, sign-out and change of password (page and API), and the language switch.

A sign-in passes, in order: the per-address window (``LoginThrottle``, 429 when full), a place
at the password-check gate (429 at once when every place is taken), then
``AccountStore.authenticate`` in a gate thread, which counts the attempt against the name and
address before it checks anything. Every refusal reads the same, whatever its reason.
"""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, RedirectResponse, Response

from agent.accounts import AccountStore, LoginRefusedError, Role, SessionGrant
from agent.errors import ValidationError
from web_ui.errors import api_error, validation_detail
from web_ui.i18n import LANGUAGE_COOKIE, LANGUAGES
from web_ui.rendering import client_address, is_kiosk_screen, render, translator
from web_ui.security import (
    SESSION_COOKIE,
    SIGNED_IN,
    Principal,
    public,
    require_roles,
    web_context,
)
from web_ui.throttle import GateBusyError, LoginThrottle, PasswordCheckGate

router = APIRouter()

_MAX_FIELD = 256
_BUSY_RETRY_SECONDS = "1"


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


# Where each role starts after signing in with no page to go back to: its own work, not the
# camera status (staff and admin start on the home page, which shows their services' tiles).
START_PAGES: dict[Role, str] = {
    Role.HOST: "/host/homestays",
    Role.FAMILY: "/family",
    Role.POLICE: "/police/patrol",
    Role.STAFF: "/",
    Role.ADMIN: "/",
}


def landing_page(requested: str, role: Role) -> str:
    """The page a sign-in goes to: the page asked for, or the role's start page when none was
    (the sign-in form's default is "/")."""
    if requested in ("", "/"):
        return START_PAGES.get(role, "/")
    return safe_next(requested)


def password_gate(request: Request) -> PasswordCheckGate:
    """The app's one gate (made by the app factory)."""
    gate: PasswordCheckGate = request.app.state.password_gate
    return gate


def _set_session_cookie(request: Request, response: Response, grant: SessionGrant) -> None:
    # No Max-Age or Expires: the cookie goes when the browser closes; the server ends the
    # session itself after idle_minutes, session_hours (or kiosk_session_minutes).
    response.set_cookie(
        SESSION_COOKIE,
        grant.token,
        httponly=True,
        samesite="lax",
        secure=web_context(request).config.web.secure_cookies,
        path="/",
    )


def _authenticate_and_start(
    accounts: AccountStore, username: str, password: str, address: str, kiosk: bool
) -> SessionGrant:
    account = accounts.authenticate(username, password, address=address)
    return accounts.start_session(account, kiosk=kiosk)


async def _sign_in(request: Request, username: str, password: str) -> SessionGrant:
    """Raises TooManyAttemptsError, GateBusyError or LoginRefusedError; audited by the store."""
    throttle: LoginThrottle = request.app.state.login_throttle
    address = client_address(request)
    reservation = throttle.reserve(address)
    try:
        grant = await password_gate(request).run(
            _authenticate_and_start,
            web_context(request).accounts,
            username,
            password,
            address,
            is_kiosk_screen(request),
        )
    except GateBusyError:
        throttle.release(address, reservation)  # nothing was checked
        raise
    throttle.release(address, reservation)
    return grant


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
    requested = str(form.get("next", ""))
    target = safe_next(requested)
    t = translator(request)
    try:
        grant = await _sign_in(request, username, password)
    except (LoginRefusedError, GateBusyError) as exc:
        busy = isinstance(exc, GateBusyError)
        response = render(
            request,
            "login.html",
            principal,
            status_code=429 if busy else 401,
            next=target,
            error=t("error.auth.busy" if busy else "login.wrong"),
            username=username,
        )
        if busy:
            response.headers["Retry-After"] = _BUSY_RETRY_SECONDS
        return response
    response = RedirectResponse(landing_page(requested, grant.session.role), status_code=303)
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


@router.get("/account/password", include_in_schema=False)
def password_page(
    request: Request,
    principal: Annotated[Principal, require_roles(*SIGNED_IN)],
    done: bool = False,
) -> Response:
    return render(request, "account_password.html", principal, error=None, done=done)


@router.post("/account/password", include_in_schema=False)
async def password_submit(
    request: Request, principal: Annotated[Principal, require_roles(*SIGNED_IN)]
) -> Response:
    """Current password, new one twice; the user's other sessions end, this one stays."""
    form = await request.form()
    current = str(form.get("current_password", ""))[:_MAX_FIELD]
    # Not cut short: a cut new password would silently become a different password.
    new = str(form.get("new_password", ""))
    again = str(form.get("new_password_again", ""))
    t = translator(request)

    def refused(status: int, message: str) -> Response:
        return render(
            request, "account_password.html", principal, status_code=status, error=message,
            done=False,
        )  # fmt: skip

    if not current or not new:
        return refused(400, t("account.password.required"))
    if new != again:
        return refused(400, t("account.password.mismatch"))
    change = functools.partial(
        web_context(request).accounts.change_password,
        str(principal.username),
        current,
        new,
        address=client_address(request),
        keep_session=str(principal.session_token),
    )
    try:
        await password_gate(request).run(change)
    except ValidationError as exc:
        return refused(400, validation_detail(t, exc))
    except LoginRefusedError:
        return refused(400, t("account.password.wrong"))
    except GateBusyError:
        response = refused(429, t("error.auth.busy"))
        response.headers["Retry-After"] = _BUSY_RETRY_SECONDS
        return response
    return RedirectResponse("/account/password?done=1", status_code=303)


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
    responses={
        401: {"description": "wrong username or password (or sign-in paused)"},
        429: {"description": "too many attempts from this address, or password checks busy"},
    },
)
async def api_login(
    request: Request, body: LoginRequest, principal: Annotated[Principal, public()]
) -> Response:
    """Sign in; the response sets the session cookie and carries the CSRF token to send
    as X-CSRF-Token with every state-changing request."""
    t = translator(request)
    try:
        grant = await _sign_in(request, body.username, body.password)
    except LoginRefusedError:
        return api_error(401, None, "auth.wrong", t("login.wrong"))
    except GateBusyError:
        return api_error(
            429, None, "auth.busy", t("error.auth.busy"), {"Retry-After": _BUSY_RETRY_SECONDS}
        )
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
