"""A missed check-in end to end: the real agent (a subprocess) with a real Mosquitto raises the
care alert on its first tick, the county centre opens the sealed care_alert report, and the
guardian's phone (headless Chromium, 360 px) shows the missed check-in.

The kiosk's zone is chosen so that it is just past noon there whenever the test runs, with the
deadline at 06:00: today's deadline has passed. The person was taken into care yesterday
afternoon (after yesterday's deadline), so today is the one day that can be missed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from agent.accounts import AccountStore
from agent.audit import AuditLog
from agent.privacy import Vault
from agent.store.database import Database
from agent.village.care import CareService, CareSettings, PersonInput
from simulators.command_center import CommandCenter
from tests.fixtures.agent import AgentProcess
from tests.fixtures.mosquitto import MosquittoBroker, centre_keys
from tests.integration.test_agent_e2e import DEVICE, PASSWORD, add_user, kiosk_sections
from tests.integration.test_mqtt_sealed_reports import personal_data_in
from tests.integration.test_web_ui import PHONE, TIMEOUT_MS, new_page, shoot

pytestmark = pytest.mark.integration

GUARDIAN, CARER = "chen.family", "zhou.staff"
NAME = "张三丰"  # one of the names personal_data_in looks for on the wire
DEADLINE = time(6, 0)


def zone_past_noon(now: datetime) -> str:
    """An IANA zone where ``now`` is between 12:00 and 13:00 (Etc/GMT-N is UTC+N)."""
    offset = 12 - now.hour
    if offset > 14:
        offset -= 24
    if offset < -12:
        offset += 24
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"


def take_into_care(data_dir: Path, settings: CareSettings, registered_at: datetime) -> str:
    """Register the person with the agent's own database and vault key, as staff did
    yesterday; returns the person's report reference."""
    database = Database(data_dir / "kiosk.sqlite3")
    try:
        vault = Vault.load_or_create(data_dir / "secrets" / "personal-data.key")
        accounts = AccountStore(database)
        # The CLI's ``user add`` offers no staff role yet: the carer's account is made here.
        accounts.create_user(CARER, "staff", PASSWORD)
        care = CareService(
            database,
            vault,
            AuditLog(database),
            accounts,
            lambda _db, _kind, _payload: None,
            settings=settings,
            clock=lambda: registered_at,
        )
        care.migrate()
        person = care.register(PersonInput(NAME, "elder", GUARDIAN, CARER, "4826"), actor=CARER)
        return person.ref
    finally:
        database.close()


def test_a_missed_check_in_reaches_the_centre_and_the_guardians_phone(
    agent_factory: Callable[..., AgentProcess],
    mosquitto: MosquittoBroker,
    chromium: Any,
    screenshots_dir: Path,
) -> None:
    now = datetime.now(UTC)
    zone = zone_past_noon(now)
    today = now.astimezone(ZoneInfo(zone)).date()
    settings = {"timezone": zone, "default_deadline": DEADLINE.strftime("%H:%M")}
    sections = kiosk_sections(mosquitto, [])
    sections["services.care"] = settings
    agent = agent_factory(sections)
    add_user(agent.config_path, agent.data_dir, GUARDIAN, "family")
    ref = take_into_care(
        agent.data_dir, CareSettings.model_validate(settings), now - timedelta(days=1)
    )

    keys = centre_keys(mosquitto.workdir)
    centre = CommandCenter(port=mosquitto.port, kiosks=[DEVICE], report_key=keys.private).start()
    nosy = CommandCenter(port=mosquitto.port, kiosks=[DEVICE], client_id="nosy").start()
    try:
        agent.start()
        assert centre.wait_for(lambda: centre.reports(DEVICE, "care_alert"), 60), agent.log()
        assert nosy.wait_for(lambda: nosy.reports(DEVICE, "care_alert"), 30)
        (report,) = centre.reports(DEVICE, "care_alert")
        assert report["data"] == {
            "person_ref": ref,
            "kind": "elder",
            "date": today.isoformat(),
            "deadline": f"{today.isoformat()}T06:00{report['data']['deadline'][-6:]}",
            "raised_at": report["data"]["raised_at"],
        }
        deadline = datetime.fromisoformat(report["data"]["deadline"])
        assert deadline.utcoffset() == datetime.now(ZoneInfo(zone)).utcoffset()
        assert "data" not in nosy.reports(DEVICE, "care_alert")[0], "sealed to the centre"
        for alert in centre.alerts(DEVICE) + nosy.alerts(DEVICE):
            assert personal_data_in(alert.raw) == [], alert.topic
            assert GUARDIAN.encode() not in alert.raw

        phone = new_page(chromium, PHONE, phone=True)
        phone.goto(f"{agent.url}/login?next=/family/care")
        phone.fill("#username", GUARDIAN)
        phone.fill("#password", PASSWORD)
        phone.click("form.form button[type=submit]")
        phone.wait_for_url(re.compile(r"/family/care$"))
        card = phone.locator(".care-person").first
        expect(card).to_contain_text(NAME, timeout=TIMEOUT_MS)
        expect(card.locator("[data-state]")).to_have_attribute("data-state", "missed")
        expect(card.locator("[data-alerted]")).to_be_visible()
        shoot(phone, screenshots_dir, "phone-care-missed")
        card.locator("a.button").click()
        phone.wait_for_url(re.compile(r"/family/care/\d+$"))
        expect(phone.locator(f'[data-alert-day="{today.isoformat()}"]')).to_contain_text(
            "06:00", timeout=TIMEOUT_MS
        )
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"page is {width}px wide on a 360px phone"
        shoot(phone, screenshots_dir, "phone-care-history")
        phone.context.close()

        # One alert for the day, however many ticks the agent has run meanwhile.
        assert len(centre.reports(DEVICE, "care_alert")) == 1
        assert agent.stop() == 0
    finally:
        nosy.stop()
        centre.stop()
    assert "Traceback" not in agent.log()
