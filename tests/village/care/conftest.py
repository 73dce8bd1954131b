"""A care service on a real database, with a clock the test moves and reports recorded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest

from agent.accounts import AccountStore, Role
from agent.audit import AuditLog
from agent.privacy import Vault
from agent.store.database import Database
from agent.village.care import CareService, CareSettings, PersonInput
from agent.village.care.records import Person
from tests.fixtures.browser import FAST_HASHER, PASSWORD

GUARDIAN, OTHER_GUARDIAN, CARER = "chen.family", "lin.family", "zhou.staff"
PIN = "4826"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Care:
    service: CareService
    database: Database
    clock: Clock
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def register(self, name: str = "王奶奶", **overrides: str) -> Person:
        data = {"name": name, "kind": "elder", "guardian": GUARDIAN, "carer": CARER, "pin": PIN}
        data.update(overrides)
        return self.service.register(PersonInput(**data), actor=CARER)


def make_care(tmp_path: Path, now: datetime, **settings: Any) -> Iterator[Care]:
    database = Database(tmp_path / "kiosk.sqlite3")
    accounts = AccountStore(database, hasher=FAST_HASHER)
    accounts.create_user(GUARDIAN, Role.FAMILY.value, PASSWORD)
    accounts.create_user(OTHER_GUARDIAN, Role.FAMILY.value, PASSWORD)
    accounts.create_user(CARER, Role.STAFF.value, PASSWORD)
    accounts.create_user("zhao.admin", Role.ADMIN.value, PASSWORD)
    clock = Clock(now)
    reports: list[tuple[str, dict[str, Any]]] = []
    service = CareService(
        database,
        Vault.load_or_create(tmp_path / "secrets" / "key"),
        AuditLog(database),
        accounts,
        lambda _db, kind, payload: reports.append((kind, payload)),
        settings=CareSettings(**{"timezone": "Asia/Shanghai", **settings}),
        clock=clock,
        hasher=FAST_HASHER,
    )
    service.migrate()
    yield Care(service, database, clock, reports)
    database.close()


@pytest.fixture
def care(tmp_path: Path) -> Iterator[Care]:
    """Kiosk time Asia/Shanghai (UTC+8), deadline 10:00 local; the clock at 07:00 local."""
    yield from make_care(
        tmp_path,
        datetime(2026, 12, 1, 23, 0, tzinfo=UTC),
        default_deadline=time(10, 0),
        pin_max_failures=3,
        pause_minutes=15,
    )
