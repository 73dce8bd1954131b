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

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import sqlite_utils
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from agent.errors import ConfigError, ValidationError, field_path

if TYPE_CHECKING:
    from agent.accounts import AccountStore
    from agent.audit import AuditLog
    from agent.config import AgentConfig
    from agent.privacy import Vault
    from agent.store.database import Database

# Writes a report for the county in the caller's transaction: (db, kind, payload). The outbox
# sends it when the link is up (sealed to the centre's key where one is configured).
SettingsT = TypeVar("SettingsT", bound=BaseModel)
ServiceT = TypeVar("ServiceT")
ReportSink = Callable[[sqlite_utils.Database, str, dict[str, Any]], None]
# A remote command a service answers (``<prefix>/<device>/cmd/<name>``): handler(service,
# request) -> the reply's ``result``. ``request`` is the JSON object as it arrived, its ``id``
# already checked; bad input raises ValidationError(field, code) with a code of the service's
# ERROR_MESSAGES, which the reply spells out in English.
ServiceCommand = Callable[[Any, Mapping[str, Any]], Mapping[str, Any]]
# The same, bound to the running service: request -> result.
BoundCommand = Callable[[Mapping[str, Any]], Mapping[str, Any]]


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
    # The services built before this one (earlier in the list), for a service that relies on
    # another: tourism's bookings name homestays. Filled in by build_services.
    earlier: Mapping[str, VillageService] = field(default_factory=dict)

    def service(self, kind: type[ServiceT]) -> ServiceT:
        """The earlier-built service of class ``kind`` (a service the list puts before this)."""
        for built in self.earlier.values():
            if isinstance(built, kind):
                return built
        raise LookupError(f"{kind.__name__} must come earlier in the service list")

    # The names whose settings a service read while being built: a table nobody reads (a
    # service without settings) is refused rather than silently ignored.
    settings_read: set[str] = field(default_factory=set, compare=False)

    def settings(self, name: str, model: type[SettingsT]) -> SettingsT:
        """The service's ``[services.<name>]`` table checked by ``model``; a bad table is a
        ConfigError naming each key, like every other part of the config."""
        self.settings_read.add(name)
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
    # Remote commands from the county command centre, by command name (one topic segment).
    commands: Mapping[str, ServiceCommand] = field(default_factory=dict)

    def bound_commands(self, service: VillageService) -> dict[str, BoundCommand]:
        """This service's commands bound to its running instance; a refusal's code becomes its
        English text, since the command centre reads the reply, not a catalog."""
        return {
            name: functools.partial(_run_command, handler, service, self.error_messages)
            for name, handler in self.commands.items()
        }


def _run_command(
    handler: ServiceCommand,
    service: VillageService,
    messages: Mapping[str, str],
    request: Mapping[str, Any],
) -> Mapping[str, Any]:
    try:
        return handler(service, request)
    except ValidationError as exc:
        raise ValidationError(exc.field, messages.get(exc.message, exc.message)) from exc


def service_commands(
    specs: Sequence[ServiceSpec], services: Mapping[str, VillageService]
) -> dict[str, BoundCommand]:
    """Every running service's remote commands by name; two services answering one name is a
    mistake in the list, refused at start."""
    commands: dict[str, BoundCommand] = {}
    for spec in specs:
        if spec.name not in services:
            continue
        for name, bound in spec.bound_commands(services[spec.name]).items():
            if name in commands:
                raise ValueError(f"two services answer the remote command {name!r}")
            commands[name] = bound
    return commands


@runtime_checkable
class CheckInPrefill(Protocol):
    """A service that can fill in a guest registration for a host (tourism: a confirmed
    booking). The homestay registration form asks whichever service provides this."""

    def check_in_prefill(self, booking_id: int, *, host_username: str) -> Mapping[str, str]:
        """Guest-form field values (``name``, ``phone``, ``check_in``, ``expected_check_out``
        ...) of a confirmed booking at one of ``host_username``'s homestays; raises
        RecordNotFoundError for any other booking."""
        ...
