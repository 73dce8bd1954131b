"""What a page with live players (web_ui/static/live.js) is given: ICE servers, tiers, texts."""

from __future__ import annotations

import json
from pathlib import Path

from agent.accounts import Role
from agent.config import RtcConfig
from web_ui.context import WebContext
from web_ui.i18n import Translator

LIVE_ROLES = frozenset({Role.POLICE, Role.ADMIN, Role.FAMILY})
_TEXT_KEYS = ("start", "stop", "connecting", "busy", "forbidden", "failed", "fallback")


def live_page_settings(context: WebContext, role: Role | None) -> str:
    """JSON for ``data-live-config``; empty when this visitor may not watch.

    TURN credentials go only to signed-in viewers' pages: a static TURN password is as good as
    the page that shows it.
    """
    if context.live is None or role not in LIVE_ROLES:
        return ""
    rtc = context.config.rtc
    settings = {
        "iceServers": browser_ice_servers(rtc),
        "tiers": sorted(rtc.tiers),
        "maxPlayers": min(4, rtc.max_viewers),
    }
    return json.dumps(settings, ensure_ascii=False)


def live_page_texts(t: Translator) -> str:
    return json.dumps({key: t(f"live.{key}") for key in _TEXT_KEYS}, ensure_ascii=False)


def browser_ice_servers(rtc: RtcConfig) -> list[dict[str, object]]:
    """The configured STUN/TURN servers as a page's RTCPeerConnection takes them."""
    servers: list[dict[str, object]] = []
    for server in rtc.ice_servers:
        entry: dict[str, object] = {"urls": list(server.urls)}
        if server.username:
            entry["username"] = server.username
        if server.credential_file is not None:
            entry["credential"] = _credential(server.credential_file)
        servers.append(entry)
    return servers


def _credential(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""  # the agent refused to start with it unreadable; a page gets no TURN relay
