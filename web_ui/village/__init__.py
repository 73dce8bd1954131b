"""The web side of the village services: each service's pages live in web_ui/village/<name>/,
named like its service in agent/village/services.py.

A service's web folder holds:
- ``__init__.py`` exporting ``WEB``, a :class:`ServiceWeb` (its routers and menu entries);
- its routes (a page route and its JSON twin call the same service method);
- ``templates/`` (rendered as ``"<name>/<file>"``) and ``locales/<language>.json`` (merged
  into the catalogs; keys start with the service's name).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter

from agent.accounts import Role

VILLAGE_DIR = Path(__file__).parent


@dataclass(frozen=True)
class NavEntry:
    """A menu entry: where it goes, its catalog key, and the roles that see it (``None`` is
    the visitor who is not signed in)."""

    path: str
    key: str
    roles: frozenset[Role | None]
    # Shown as a big tile on the kiosk's home screen (to roles that see the entry).
    tile: bool = False
    # Only on the kiosk's own touchscreen (filing a dispute, the daily check-in): elsewhere the
    # page answers 404, so the menu of a phone does not offer it.
    kiosk_only: bool = False


@dataclass(frozen=True)
class ServiceWeb:
    """The pages of one service: page routes, the JSON API (mounted under /api) and menu."""

    name: str
    pages: APIRouter
    api: APIRouter | None = None
    nav: Sequence[NavEntry] = field(default_factory=tuple)

    @property
    def folder(self) -> Path:
        return VILLAGE_DIR / self.name


def service_webs(names: Iterable[str]) -> list[ServiceWeb]:
    """The web side of each named service, in order."""
    webs = []
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        web = getattr(module, "WEB", None)
        if not isinstance(web, ServiceWeb) or web.name != name:
            raise TypeError(
                f"web_ui/village/{name}/__init__.py must export WEB = ServiceWeb({name!r}, ...)"
            )
        webs.append(web)
    return webs


def service_folders() -> list[Path]:
    """Every service web folder (for templates and locale catalogs)."""
    return sorted(path for path in VILLAGE_DIR.iterdir() if (path / "__init__.py").is_file())


def roles(*names: Role | None) -> frozenset[Role | None]:
    return frozenset(names)
