"""Who may use which route: sessions, role guards and CSRF checks.

Every route takes exactly one guard (``require_roles(...)`` or ``public()``) as a dependency;
the guard is recorded on the route, so ``access_table`` lists the allowed roles of every route
(the app keeps it as ``app.state.access_table``) and a test checks each against each role.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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
# Sec-Fetch-Site values of a request this UI's own pages made, or that the user typed or
# bookmarked ("none"). "same-site" is refused too: another port of the same host is same-site.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})
_ANONYMOUS_MAC_CHARS = 32


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


def _anonymous_mac(key: bytes, nonce: str) -> str:
    digest = hmac.new(key, b"anonymous-csrf\x00" + nonce.encode(), hashlib.sha256).hexdigest()
    return digest[:_ANONYMOUS_MAC_CHARS]


def new_anonymous_csrf(key: bytes) -> str:
    """A visitor's CSRF token, signed by the kiosk: a value planted in the visitor's cookie by
    someone else (login CSRF) is not accepted unless this kiosk issued it."""
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{_anonymous_mac(key, nonce)}"


def anonymous_csrf_is_valid(key: bytes, token: str) -> bool:
    nonce, dot, mac = token.partition(".")
    if not dot or not 16 <= len(nonce) <= 64 or len(mac) != _ANONYMOUS_MAC_CHARS:
        return False
    return hmac.compare_digest(mac, _anonymous_mac(key, nonce))


def _origin(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_cross_site(request: Request) -> bool:
    """Whether a request was started by another website (or another port of this host).

    Browsers send Sec-Fetch-Site; without it, Origin and then Referer must name this UI. A
    request with none of the three comes from a program, not a browser page, and passes.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.lower() not in _OWN_FETCH_SITES
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value:
            return _origin(value) != own
    return False


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
    without a session cookie (no ambient credential to abuse) needs none. A state-changing
    request another site started is refused whatever it carries.
    """
    if request.method in _SAFE_METHODS:
        return
    if is_cross_site(request):
        raise AccessDeniedError(403, "request.cross_site")
    if is_api(request) and principal.session_token is None:
        return
    submitted = await _submitted_csrf_token(request)
    if not submitted or not hmac.compare_digest(submitted, principal.csrf_token):
        raise AccessDeniedError(403, "csrf.invalid")


# Reads the bearer token a route also accepts from the config; None: no token is accepted.
BearerToken = Callable[[WebContext], str | None]


class RoleGuard:
    """A route dependency that admits the listed roles (and the anonymous kiosk if public).

    ``same_origin`` marks an audited read (personal data in full, camera pictures): another
    website must not be able to make an officer's browser perform it, even as a plain GET,
    since the audit log would then blame the officer and the data would land in their browser.
    """

    def __init__(
        self,
        allowed: frozenset[str],
        *,
        same_origin: bool = False,
        bearer: BearerToken | None = None,
    ) -> None:
        self.allowed = allowed
        self.same_origin = same_origin
        self.bearer = bearer

    async def __call__(self, request: Request) -> Principal:
        if self.bearer is not None and "authorization" in request.headers:
            return self._bearer_principal(request)
        principal = await current_principal(request)
        if principal.role_name not in self.allowed:
            if principal.role is None:
                raise AccessDeniedError(401, "auth.required")
            raise AccessDeniedError(403, "auth.forbidden")
        if self.same_origin and is_cross_site(request):
            raise AccessDeniedError(403, "request.cross_site")
        await check_csrf(request, principal)
        return principal

    def _bearer_principal(self, request: Request) -> Principal:
        """A program (a Prometheus scraper) that sent ``Authorization: Bearer <token>``: the
        configured token, compared in constant time, or 401 whatever the session says."""
        assert self.bearer is not None
        expected = self.bearer(web_context(request))
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if (
            expected is None
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(given.strip().encode(), expected.encode())
        ):
            raise AccessDeniedError(401, "auth.token_invalid")
        return Principal(None, None, "")

    def __repr__(self) -> str:
        extra = ", same_origin" if self.same_origin else ""
        extra += ", bearer" if self.bearer is not None else ""
        return f"RoleGuard({sorted(self.allowed)}{extra})"


def require_roles(
    *roles: Role, same_origin: bool = False, bearer: BearerToken | None = None
) -> Any:
    """``Depends`` that admits only the given signed-in roles; ``same_origin`` for audited
    reads, which only this UI's own pages (or a typed address) may trigger. With ``bearer``,
    a request carrying an Authorization header is admitted by that token alone (a program
    that cannot sign in); the access table still lists the roles."""
    if not roles:
        raise ValueError("require_roles needs at least one role; use public() for everyone")
    allowed = frozenset(role.value for role in roles)
    return Depends(RoleGuard(allowed, same_origin=same_origin, bearer=bearer))


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
