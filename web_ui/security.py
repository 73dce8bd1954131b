"""Who may use which route: sessions, role guards and CSRF checks.

Every route takes exactly one guard (``require_roles(...)`` or ``public()``) as a dependency;
the guard is recorded on the route, so ``access_table`` lists the allowed roles of every route
(the app keeps it as ``app.state.access_table``) and a test checks each against each role.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from agent.accounts import Role
from agent.errors import KioskError
from web_ui.context import WebContext

ANONYMOUS = "anonymous"  # the kiosk screen itself, or any visitor who has not signed in
EVERYONE: frozenset[str] = frozenset({ANONYMOUS, *Role})
SIGNED_IN: frozenset[Role] = frozenset(Role)
SESSION_COOKIE = "vk_session"
CSRF_COOKIE = "vk_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AccessDeniedError(KioskError):
    """Not signed in (401), wrong role (403) or a missing/wrong CSRF token (403)."""

    def __init__(self, status: int, code: str) -> None:
        self.status = status
        self.code = code
        super().__init__(code)


@dataclass(frozen=True)
class Principal:
    """Who is making the request; ``role`` is None for the anonymous kiosk screen."""

    username: str | None
    role: Role | None
    csrf_token: str
    session_token: str | None = None

    @property
    def actor(self) -> str:
        """The name audit entries use."""
        return self.username or ANONYMOUS

    @property
    def role_name(self) -> str:
        return self.role.value if self.role else ANONYMOUS


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def current_principal(request: Request) -> Principal:
    """The signed-in user from the session cookie, else the anonymous visitor."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = request.cookies.get(SESSION_COOKIE, "")
    principal: Principal | None = None
    if token:
        session = await run_in_threadpool(web_context(request).accounts.session, token)
        if session is not None:
            principal = Principal(session.username, session.role, session.csrf_token, token)
    if principal is None:
        principal = Principal(None, None, str(request.state.anonymous_csrf))
    request.state.principal = principal
    return principal


async def _submitted_csrf_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: Request, principal: Principal) -> None:
    """State-changing requests must echo the session's (or the visitor's) CSRF token.

    Pages send it as a form field, the JSON API as the X-CSRF-Token header. An API client
    without a session cookie (no ambient credential to abuse) needs none.
    """
    if request.method in _SAFE_METHODS:
        return
    if is_api(request) and principal.session_token is None:
        return
    submitted = await _submitted_csrf_token(request)
    if not submitted or not hmac.compare_digest(submitted, principal.csrf_token):
        raise AccessDeniedError(403, "csrf.invalid")


class RoleGuard:
    """A route dependency that admits the listed roles (and the anonymous kiosk if public)."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed

    async def __call__(self, request: Request) -> Principal:
        principal = await current_principal(request)
        if principal.role_name not in self.allowed:
            if principal.role is None:
                raise AccessDeniedError(401, "auth.required")
            raise AccessDeniedError(403, "auth.forbidden")
        await check_csrf(request, principal)
        return principal

    def __repr__(self) -> str:
        return f"RoleGuard({sorted(self.allowed)})"


def require_roles(*roles: Role) -> Any:
    """``Depends`` that admits only the given signed-in roles."""
    if not roles:
        raise ValueError("require_roles needs at least one role; use public() for everyone")
    return Depends(RoleGuard(frozenset(role.value for role in roles)))


def public() -> Any:
    """``Depends`` that admits everyone, the anonymous kiosk screen included."""
    return Depends(RoleGuard(EVERYONE))


def _guards(dependant: Dependant) -> Iterator[RoleGuard]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, RoleGuard):
            yield dependency.call
        yield from _guards(dependency)


def access_table(
    routers: Iterable[tuple[str, APIRouter]],
) -> dict[tuple[str, str], frozenset[str]]:
    """``{(method, full path): allowed roles}`` for every route of the mounted routers."""
    table: dict[tuple[str, str], frozenset[str]] = {}
    for prefix, router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                raise TypeError(f"{route!r} is not an API route and cannot carry a guard")
            for method in sorted(route.methods or ()):
                table[(method, prefix + route.path)] = route_access(route)
    return table


def route_access(route: APIRoute) -> frozenset[str]:
    """The roles (and ``anonymous``) a route admits; a route must carry exactly one guard."""
    guards = {id(guard): guard for guard in _guards(route.dependant)}
    if len(guards) != 1:
        raise LookupError(f"{route.path} must declare exactly one role guard, has {len(guards)}")
    return next(iter(guards.values())).allowed
