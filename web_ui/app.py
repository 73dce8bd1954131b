"""The web UI's app factory; the runtime serves the result with uvicorn in the agent process."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from agent.metrics import LatencyHistogram
from web_ui.context import WebContext
from web_ui.errors import install_error_handlers
from web_ui.gate import TrustedHosts, allowed_host_names
from web_ui.i18n import LANGUAGE_COOKIE, pick_language
from web_ui.rendering import build_templates
from web_ui.request_timing import RequestTiming
from web_ui.routes import api, auth, calls, family, live, metrics, police, status
from web_ui.security import (
    CSRF_COOKIE,
    access_table,
    anonymous_csrf_is_valid,
    new_anonymous_csrf,
)
from web_ui.throttle import LoginThrottle, PasswordCheckGate
from web_ui.view_audit import ViewAuditThrottle
from web_ui.village import service_webs

STATIC_DIR = Path(__file__).parent / "static"

# Pages load only their own script and style; no inline code, no third-party origin.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Calls use the camera and microphone of this origin's pages only; nothing else is needed.
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()",
    # Another site's window keeps no handle on ours, and may not embed our pictures.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Pages and API answers carry personal data or live pictures: no cache keeps them. Only the
# static files (script, style) may be cached.
_NO_STORE = "no-store"


def create_app(context: WebContext) -> FastAPI:
    app = FastAPI(
        title="Village kiosk",
        summary="Local web UI and JSON API of a village video-patrol kiosk",
        version="1",
        docs_url=None,  # the interactive docs load scripts from a CDN the kiosk cannot reach
        redoc_url=None,
        openapi_url="/api/openapi.json",
        # Checked from Content-Length and while a chunked body streams in, before any route
        # parses it: one anonymous 400 MB body once took the agent to 1.4 GB.
        max_body_size=context.config.web.max_body_bytes,
    )
    app.state.context = context
    # Lockout and session length follow [web] however the store was built.
    context.accounts.apply_policy(context.config.web)
    app.state.templates = build_templates()
    app.state.login_throttle = LoginThrottle()
    app.state.password_gate = PasswordCheckGate(context.config.web.login_concurrency)
    app.state.camera_view_audit = ViewAuditThrottle()
    install_error_handlers(app)
    csrf_key = context.web_secret or secrets.token_bytes(32)

    @app.middleware("http")
    async def visitor_state(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Every visitor gets a CSRF cookie before signing in, so the sign-in form and the
        # language switch are protected too (double submit: form field == cookie).
        anonymous_csrf = request.cookies.get(CSRF_COOKIE, "")
        fresh = not anonymous_csrf_is_valid(csrf_key, anonymous_csrf)
        if fresh:
            anonymous_csrf = new_anonymous_csrf(csrf_key)
        request.state.anonymous_csrf = anonymous_csrf
        request.state.language = pick_language(
            request.cookies.get(LANGUAGE_COOKIE), context.config.web.language
        )
        response = await call_next(request)
        if fresh:
            response.set_cookie(
                CSRF_COOKIE,
                anonymous_csrf,
                httponly=True,
                samesite="lax",
                secure=context.config.web.secure_cookies,
                path="/",
            )
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = _NO_STORE
        return response

    web = context.config.web
    app.add_middleware(TrustedHosts, allowed=allowed_host_names(web.allowed_hosts, web.host))
    # Outermost: every answer is timed for /metrics, refusals of a foreign Host included.
    app.state.request_latency = LatencyHistogram()
    app.add_middleware(RequestTiming, histogram=app.state.request_latency)

    # Each village service brings its own pages, JSON API and menu entries.
    webs = service_webs(context.services)
    app.state.service_webs = webs
    routers = [
        ("", status.router),
        ("", auth.router),
        *(("", web.pages) for web in webs),
        ("", police.router),
        ("", family.router),
        ("", live.router),
        ("", calls.router),
        ("", metrics.router),
        ("/api", api.router),
        *(("/api", web.api) for web in webs if web.api is not None),
    ]
    # Built first: it refuses a route without exactly one role guard.
    app.state.access_table = access_table(routers)
    for prefix, router in routers:
        app.include_router(router, prefix=prefix)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
