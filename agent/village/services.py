"""The village services this kiosk runs: one line each. The runtime builds, migrates and purges
them in this order; the web layer shows the pages of each from web_ui/village/<name>/.

To add a service, copy a service's folders (agent/village/<name>/, web_ui/village/<name>/ and
tests/village/<name>/), rename them, and import and list its SERVICE here. A service that uses
another (tourism books homestays) comes after it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar

from agent.errors import ConfigError
from agent.village import care, disputes, feedback, homestay, notices, patrol, products, tourism
from agent.village.service import ServiceParts, ServiceSpec, VillageService

log = logging.getLogger(__name__)

SERVICES: tuple[ServiceSpec, ...] = (
    homestay.SERVICE,
    notices.SERVICE,
    disputes.SERVICE,
    feedback.SERVICE,
    care.SERVICE,
    products.SERVICE,
    patrol.SERVICE,
    tourism.SERVICE,
)

ServiceT = TypeVar("ServiceT")


class Services(Mapping[str, VillageService]):
    """The built services by name, in the order of the list."""

    def __init__(self, services: Mapping[str, VillageService]) -> None:
        self._services = dict(services)

    def __getitem__(self, name: str) -> VillageService:
        return self._services[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._services)

    def __len__(self) -> int:
        return len(self._services)

    def get_typed(self, kind: type[ServiceT]) -> ServiceT:
        """The one service of class ``kind`` (for a route that needs it by type)."""
        for service in self._services.values():
            if isinstance(service, kind):
                return service
        raise LookupError(f"no {kind.__name__} is running on this kiosk")

    def providing(self, kind: type[ServiceT]) -> ServiceT | None:
        """The first service that implements the runtime-checkable protocol ``kind``."""
        for service in self._services.values():
            if isinstance(service, kind):
                return service
        return None

    def purge_expired(self) -> dict[str, int]:
        """Every service's purge; one failing service is logged and the others still run."""
        purged: dict[str, int] = {}
        for name, service in self._services.items():
            try:
                purged[name] = service.purge_expired()
            except Exception:
                log.exception("purging the %s service failed; it is tried again next pass", name)
        return purged

    def tick(self) -> None:
        """Every service's scheduled work; one failing service is logged, the others run."""
        for name, service in self._services.items():
            try:
                service.tick()
            except Exception:
                log.exception("the scheduled work of the %s service failed", name)


def error_messages(specs: Sequence[ServiceSpec] = SERVICES) -> dict[str, str]:
    """Every service's error codes with their English text."""
    messages: dict[str, str] = {}
    for spec in specs:
        messages.update(spec.error_messages)
    return messages


def build_services(parts: ServiceParts, specs: Sequence[ServiceSpec] = SERVICES) -> Services:
    """Build and migrate every service; a ``[services.<name>]`` table for no service is a
    config error (a typo would otherwise be ignored silently)."""
    names = [spec.name for spec in specs]
    unknown = sorted(set(parts.config.services) - set(names))
    if unknown:
        raise ConfigError(
            [f"services.{name}: no such service (known: {', '.join(names)})" for name in unknown]
        )
    built: dict[str, VillageService] = {}
    for spec in specs:
        own = dataclasses.replace(parts, earlier=dict(built), settings_read=set())
        service = spec.build(own)
        if spec.name in parts.config.services and spec.name not in own.settings_read:
            raise ConfigError([f"services.{spec.name}: this service has no settings"])
        service.migrate()
        built[spec.name] = service
    return Services(built)
