"""Jinja2 page rendering with the visitor's language and CSRF token in every template."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    select_autoescape,
)
from starlette.responses import Response

from agent.accounts import Role
from web_ui.i18n import LANGUAGES, Translator
from web_ui.live_page import live_page_settings, live_page_texts
from web_ui.security import CSRF_FIELD, Principal
from web_ui.village import NavEntry, ServiceWeb, service_folders

TEMPLATES_DIR = Path(__file__).parent / "templates"

# What each role sees in the navigation bar besides the services' own entries: (path, key).
_NAV: dict[str | None, list[tuple[str, str]]] = {
    None: [("/status", "nav.status"), ("/family/join", "nav.family_join"), ("/login", "nav.login")],
    Role.HOST: [("/status", "nav.status")],
    Role.ADMIN: [
        ("/status", "nav.status"),
        ("/police/patrol", "nav.patrol"),
        ("/admin/households", "nav.households"),
        ("/police/audit", "nav.audit"),
    ],
    Role.POLICE: [
        ("/status", "nav.status"),
        ("/police/patrol", "nav.patrol"),
        ("/police/audit", "nav.audit"),
    ],
    Role.FAMILY: [
        ("/status", "nav.status"),
        ("/family", "nav.family"),
        ("/family/calls", "nav.calls"),
    ],
    Role.STAFF: [("/status", "nav.status")],
}
# The services' entries come before these, which close the menu.
_LAST_ENTRIES = frozenset({"/admin/households", "/police/audit", "/family/join", "/login"})
# The kiosk's call screen, in the anonymous menu of the kiosk's own screen only (elsewhere it
# answers 404), before the sign-in.
_KIOSK_CALLS = ("/kiosk/calls", "nav.calls")


def service_entries(request: Request, role: Role | None) -> list[NavEntry]:
    """The menu entries of the services that ``role`` may use, in the service list's order."""
    webs: list[ServiceWeb] = getattr(request.app.state, "service_webs", [])
    kiosk = is_kiosk_screen(request)
    return [
        entry
        for web in webs
        for entry in web.nav
        if role in entry.roles and (kiosk or not entry.kiosk_only)
    ]


def _navigation(request: Request, role: Role | None) -> list[tuple[str, str]]:
    core = _NAV[role]
    cut = next((i for i, (path, _) in enumerate(core) if path in _LAST_ENTRIES), len(core))
    entries = service_entries(request, role)
    if role is None and is_kiosk_screen(request):
        # The kiosk's home screen has a big tile for each of these: the menu bar keeps one
        # "home" entry instead of a second row of small buttons above them.
        services = [("/", "nav.home")] + [(e.path, e.key) for e in entries if not e.tile]
        return [*services, *core[:cut], *core[cut:]]
    services = [(entry.path, entry.key) for entry in entries]
    return [*core[:cut], *services, *core[cut:]]


def _kiosk_call_events(request: Request, role: Role | None) -> str:
    """The kiosk's call events for an idle kiosk screen's page, not for the call screen itself
    (it listens on its own) nor while someone is signed in at the kiosk."""
    if role is not None or request.app.state.context.calls is None:
        return ""
    if not is_kiosk_screen(request) or request.url.path.startswith(_KIOSK_CALLS[0]):
        return ""
    return "/api/kiosk/calls/events"


def _kiosk_notices(request: Request) -> str:
    """Where the kiosk screen's pages ask for an urgent notice to show over whatever they show
    (every page of the screen, whoever is signed in: an urgent notice is for everyone)."""
    if "notices" not in request.app.state.context.services or not is_kiosk_screen(request):
        return ""
    return "/api/kiosk/notices"


def _format_time(value: object, with_seconds: bool = False) -> str:
    """Local wall-clock text for an epoch float or datetime; '' for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value)
    elif isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone()
        return value.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def build_templates() -> Jinja2Templates:
    # A service's templates are named "<service>/<file>" and live in its own folder.
    services = {folder.name: FileSystemLoader(folder / "templates") for folder in service_folders()}
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(TEMPLATES_DIR), PrefixLoader(services)]),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _format_time
    return Jinja2Templates(env=env)


def translator(request: Request) -> Translator:
    return Translator(str(request.state.language))


def done_notice(request: Request, prefix: str, known: frozenset[str]) -> str | None:
    """The confirmation a redirect asked for with ``?done=<what>`` (``<prefix>.notice.<what>``
    in the catalogs); anything else in the URL shows nothing."""
    done = request.query_params.get("done", "")
    return translator(request)(f"{prefix}.notice.{done}") if done in known else None


def client_address(request: Request) -> str:
    """The client's address as uvicorn gives it (rewritten only for a configured proxy)."""
    return request.client.host if request.client else "unknown"


def is_kiosk_screen(request: Request) -> bool:
    """Whether the request comes from the kiosk's own touchscreen: its browser runs on this
    machine, so it is the one client that connects over loopback."""
    try:
        return ipaddress.ip_address(client_address(request)).is_loopback
    except ValueError:
        return False


def render(
    request: Request,
    template: str,
    principal: Principal,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    t = translator(request)
    web = request.app.state.context.config.web
    return templates.TemplateResponse(
        request,
        template,
        {
            "t": t,
            "lang": t.language,
            "languages": LANGUAGES,
            "principal": principal,
            "csrf_field": CSRF_FIELD,
            "csrf_token": principal.csrf_token,
            "nav": _navigation(request, principal.role),
            "path": request.url.path,
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "device_name": request.app.state.context.config.device.name,
            # The kiosk screen goes home (signing out first) after this long without a touch.
            "kiosk_idle_seconds": int(web.kiosk_idle_seconds) if is_kiosk_screen(request) else 0,
            # Background refreshes stop after this long without input, so an open page does
            # not keep its session alive past the idle timeout.
            "session_idle_seconds": int(web.idle_minutes * 60) if principal.role else 0,
            # Live players on this page (patrol, family): settings and texts for live.js.
            "live_config": live_page_settings(request.app.state.context, principal.role),
            "live_texts": live_page_texts(t),
            # The kiosk rings wherever its screen is: a ringing call takes it to the call screen.
            "kiosk_calls_events": _kiosk_call_events(request, principal.role),
            # An urgent notice takes the kiosk screen over from any page until acknowledged.
            "kiosk_notices": _kiosk_notices(request),
            **context,
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )
