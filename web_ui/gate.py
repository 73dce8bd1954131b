"""The Host names the kiosk answers to, checked before any route runs.

A redirect (a trailing slash, a sign-in) is built from the request's Host header; answering any
Host would let a link send a visitor on to another site that looks like the kiosk. (The body
size limit is FastAPI's own ``max_body_size``, set in the app factory.)
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})


def allowed_host_names(configured: Iterable[str], bind_host: str) -> frozenset[str]:
    """The Host names to answer: the configured list, else loopback plus the bind address."""
    names = {name.strip().lower().strip("[]") for name in configured if name.strip()}
    if names:
        return frozenset(names)
    names = set(LOOPBACK_HOSTS)
    if bind_host not in _WILDCARD_BINDS:
        names.add(bind_host.lower().strip("[]"))
    return frozenset(names)


def host_name(header: str) -> str | None:
    """``example:8080`` -> ``example``; ``[::1]:8080`` -> ``::1``; None when unreadable."""
    try:
        name = urlsplit("//" + header).hostname
    except ValueError:
        return None
    if not name:
        return None
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower().rstrip(".")


class TrustedHosts:
    """ASGI middleware: a request for a Host not in ``allowed`` is answered 400 at once."""

    def __init__(self, app: ASGIApp, *, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((value for key, value in scope["headers"] if key.lower() == b"host"), b"")
        name = host_name(header.decode("latin-1"))
        if name is not None and name in self.allowed:
            await self.app(scope, receive, send)
            return
        await _refuse(scope, send, 400, "request.host", "unknown Host header")


async def _refuse(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    """A minimal answer: no templates or sessions exist this far out."""
    if str(scope.get("path", "")).startswith("/api/"):
        error = {"error": {"field": None, "code": code, "message": message}}
        body = json.dumps(error).encode()
        content_type = b"application/json"
    else:
        body = f"{status} {message}\n".encode()
        content_type = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
