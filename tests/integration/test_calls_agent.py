"""A family call through the real agent (``python -m agent run``): the runtime's call service
relays a call between two Chromium pages, records and audits it, and when the agent stops in
the middle of a call both pages are told and the agent still stops at once."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest

from agent.store.media import database_path
from tests.fixtures.agent import AgentProcess
from tests.fixtures.media_browser import prepare_agent_households, sign_in
from tests.integration.test_calls_browser import (
    ALL_CLOSED,
    KIOSK,
    PHONE,
    inbound,
    media_rises,
    open_page,
)

pytestmark = pytest.mark.integration

FAMILY_USER = "chen.family"


def test_a_call_through_the_running_agent_ends_when_the_agent_stops(
    agent_factory: Callable[..., AgentProcess], media_chromium: Any
) -> None:
    agent = agent_factory({"device": {"id": "call-test"}, "rtc": {"ring_seconds": 10}})
    households = prepare_agent_households(agent.data_dir)
    agent.start()

    kiosk = open_page(media_chromium, KIOSK)
    kiosk.goto(agent.url + "/kiosk/calls")
    phone = open_page(media_chromium, PHONE)
    sign_in(phone, agent.url, FAMILY_USER)
    phone.click(f'[data-call-to="kiosk"][data-household="{households[FAMILY_USER]}"]')
    kiosk.wait_for_selector("[data-call-incoming]:not([hidden])")
    kiosk.click("[data-call-answer]")
    media_rises(kiosk, "the kiosk")
    media_rises(phone, "the phone")
    print(f"\nthrough the agent: kiosk {inbound(kiosk)}, phone {inbound(phone)}")

    started = time.monotonic()
    assert agent.stop(signal.SIGTERM, timeout=30) == 0, agent.log()
    print(f"the agent stopped {time.monotonic() - started:.1f} s after SIGTERM, in a call")
    for page in (kiosk, phone):
        page.wait_for_function(ALL_CLOSED)
        page.wait_for_selector("[data-call-view][hidden]", state="attached")

    with sqlite3.connect(database_path(agent.data_dir)) as db:
        calls = db.execute(
            "SELECT caller, family_user, answered_at IS NOT NULL, end_reason FROM calls"
        ).fetchall()
        actions = [
            row[0]
            for row in db.execute(
                "SELECT action FROM audit_log WHERE action LIKE 'call.%' ORDER BY id"
            )
        ]
    assert calls == [("family", FAMILY_USER, 1, "failed")]
    assert actions == ["call.start", "call.answer", "call.end"]
    kiosk.context.close()
    phone.context.close()
