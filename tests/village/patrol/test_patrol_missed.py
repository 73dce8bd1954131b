"""A missed window through the kiosk's real parts: the service built from the service list
with its ``[services.patrol]`` table, its report written to the MQTT outbox by the alert
service, once however many ticks pass."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.accounts import AccountStore
from agent.alerts.service import AlertService
from agent.audit import AuditLog
from agent.config import parse_config
from agent.privacy import Vault
from agent.store.database import Database
from agent.village.patrol import MISSED_REPORT, PatrolService, RoundFilter, RoundStatus
from agent.village.service import ServiceParts
from agent.village.services import build_services
from tests.fixtures.mosquitto import RecordingTarget


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def outbox_reports(database: Database, kind: str) -> list[dict[str, object]]:
    with database.read() as db:
        rows = db.execute(
            "SELECT payload FROM outbox WHERE topic LIKE ? ORDER BY seq", [f"%/report/{kind}"]
        ).fetchall()
    return [json.loads(bytes(row[0]))["data"] for row in rows]


def test_a_past_window_is_reported_missed_once_through_the_outbox(tmp_path: Path) -> None:
    config = parse_config(
        {
            "device": {"id": "patrol-kiosk", "data_dir": str(tmp_path)},
            "cameras": [{"id": "square", "name": "村口广场", "source": "sim://walker"}],
            "services": {"patrol": {"timezone": "Asia/Shanghai"}},
        }
    )
    database = Database(tmp_path / "kiosk.sqlite3")
    audit = AuditLog(database)
    alerts = AlertService(config, database, RecordingTarget())  # not started: the outbox only
    made_at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
    clock = Clock(made_at)
    services = build_services(
        ServiceParts(
            database=database,
            audit=audit,
            accounts=AccountStore(database),
            vault=Vault.load_or_create(tmp_path / "secrets" / "personal-data.key"),
            config=config,
            report=alerts.enqueue_report,
            clock=clock,
        )
    )
    patrol = services.get_typed(PatrolService)
    route = patrol.create_route(
        name="夜间必巡线", cameras=["square"], min_look_seconds=10, schedule="22:00-23:00",
        actor="zhao.admin",
    )  # fmt: skip
    try:
        services.tick()
        assert outbox_reports(database, MISSED_REPORT) == []
        # The 22:00-23:00 window (14:00-15:00 UTC) is over and nobody walked the route.
        clock.now = made_at + timedelta(hours=3, seconds=30)
        services.tick()
        (report,) = outbox_reports(database, MISSED_REPORT)
        assert report["route_id"] == route.id
        assert report["window"] == "22:00-23:00"
        assert str(report["window_start"]).startswith("2026-12-01T14:00:00")
        services.tick()
        clock.now += timedelta(minutes=30)
        services.tick()
        assert len(outbox_reports(database, MISSED_REPORT)) == 1, "reported once"
        missed = patrol.list_rounds(RoundFilter(status=RoundStatus.MISSED))
        assert [(r.route_id, r.officer) for r in missed] == [(route.id, None)]
    finally:
        database.close()
