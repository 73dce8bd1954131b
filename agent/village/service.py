"""The shape every village service has (homestay, patrol rounds, care, disputes, ...).

A service is a folder under agent/village/ whose ``__init__`` exports ``SERVICE``, a
:class:`ServiceSpec`. The runtime builds every service in ``agent.village.services.SERVICES``
from one :class:`ServiceParts`, migrates it and purges it in one loop; the web layer finds the
service's pages in the ``web_ui.village`` folder of the same name.

Domain errors are the kinds in ``agent.errors``: ``ValidationError`` (invalid input, 422),
``RecordNotFoundError`` (404) and ``NotAllowedError`` (403); the web layer translates them once.
Business rules (who may do what to which record) live in the service, never in a route.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import sqlite_utils
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from agent.errors import ConfigError, field_path

if TYPE_CHECKING:
    from agent.accounts import AccountStore
    from agent.audit import AuditLog
    from agent.config import AgentConfig
    from agent.privacy import Vault
    from agent.store.database import Database

# Writes a report for the county in the caller's transaction: (db, kind, payload). The outbox
# sends it when the link is up (sealed to the centre's key where one is configured).
SettingsT = TypeVar("SettingsT", bound=BaseModel)
ReportSink = Callable[[sqlite_utils.Database, str, dict[str, Any]], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _no_report(db: sqlite_utils.Database, kind: str, payload: dict[str, Any]) -> None:
    """For a kiosk built without an alert service (tests of one service): reports are dropped."""


@dataclass(frozen=True)
class ServiceParts:
    """What a service may be built from: the kiosk's shared parts and its settings."""

    database: Database
    audit: AuditLog
    accounts: AccountStore
    vault: Vault
    config: AgentConfig
    report: ReportSink = _no_report
    clock: Callable[[], datetime] = utc_now

    def settings(self, name: str, model: type[SettingsT]) -> SettingsT:
        """The service's ``[services.<name>]`` table checked by ``model``; a bad table is a
        ConfigError naming each key, like every other part of the config."""
        try:
            return model.model_validate(self.config.services.get(name, {}))
        except PydanticValidationError as exc:
            raise ConfigError(
                [
                    f"services.{name}.{field_path(error['loc'])}: {error['msg']}"
                    for error in exc.errors()
                ]
            ) from exc


class VillageService(Protocol):
    """What the runtime asks of every service."""

    def migrate(self) -> None:
        """Create or upgrade the service's tables (idempotent; runs at every start)."""

    def purge_expired(self) -> int:
        """Delete what the service may no longer keep; returns how many records went."""

    def tick(self) -> None:
        """Scheduled work: raise what is due (a missed check-in, a missed patrol round).
        Called every TICK_SECONDS from a worker thread; a service with nothing scheduled
        returns at once."""


# How often the runtime calls every service's tick: a missed check-in or round is raised
# within this long of its deadline.
TICK_SECONDS = 30.0


@dataclass(frozen=True)
class ServiceSpec:
    """One line of the service list: the service's name (also its web folder's and its
    locale keys' prefix), how to build it, and its error codes' English texts (the fallback
    when a catalog lacks a code)."""

    name: str
    build: Callable[[ServiceParts], VillageService]
    error_messages: Mapping[str, str] = field(default_factory=dict)
