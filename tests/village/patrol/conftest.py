"""A patrol service on a real database with a clock the tests move, and its reports recorded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils

from agent.audit import AuditLog
from agent.privacy import Vault
from agent.store.database import Database
from agent.village.patrol import PatrolService, PatrolSettings

ZONE = ZoneInfo("Asia/Shanghai")
CAMERAS = {"square": "村口广场", "yard": "院子", "bridge": "桥头"}


def local(text: str) -> datetime:
    """A kiosk-local wall-clock time (Asia/Shanghai) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Patrol:
    service: PatrolService
    vault: Vault
    clock: Clock
    database: Database
    audit: AuditLog
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # While set, writing a report fails (a full outbox, a disk error).
    failing: bool = False

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [payload for found, payload in self.reports if found == kind]


def make_patrol(tmp_path: Path, **settings: Any) -> Patrol:
    database = Database(tmp_path / "kiosk.sqlite3")
    audit = AuditLog(database)
    clock = Clock(local("2026-12-01T20:00:00").astimezone(UTC))
    reports: list[tuple[str, dict[str, Any]]] = []
    built: list[Patrol] = []

    def report(_db: sqlite_utils.Database, kind: str, payload: dict[str, Any]) -> None:
        if built and built[0].failing:
            raise RuntimeError("the report could not be written")
        reports.append((kind, payload))

    service_vault = Vault.load_or_create(tmp_path / "secrets" / "personal-data.key")
    service = PatrolService(
        database,
        audit,
        report,
        vault=service_vault,
        cameras=CAMERAS,
        settings=PatrolSettings(timezone="Asia/Shanghai", **settings),
        clock=clock,
    )
    service.migrate()
    built.append(Patrol(service, service_vault, clock, database, audit, reports))
    return built[0]


@pytest.fixture
def patrol(tmp_path: Path) -> Iterator[Patrol]:
    built = make_patrol(tmp_path)
    yield built
    built.database.close()
