"""A broker outage in the middle of a burst: the outbox holds everything and delivers it after."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from agent.alerts.service import AlertService
from agent.store.database import Database
from simulators.command_center import CommandCenter
from tests.fixtures.mosquitto import (
    MosquittoBroker,
    RecordingTarget,
    Transition,
    kiosk_config,
    produce_events,
)
from tests.fixtures.servers import wait_until

pytestmark = pytest.mark.integration

TOTAL = 1000


def test_broker_stopped_mid_burst_delivers_all_events_in_order(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kiosk"
    database = Database(data_dir / "kiosk.sqlite3")
    service = AlertService(kiosk_config(data_dir, mosquitto.port), database, RecordingTarget())
    centre = CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"]).start()
    service.start()
    try:
        wait_until(lambda: centre.status("kiosk-1") == "online", 10, "kiosk online")
        producer = threading.Thread(
            target=produce_events, args=(service, database, TOTAL, 5, 0.02), daemon=True
        )
        producer.start()
        wait_until(lambda: len(centre.events("kiosk-1")) >= 100, 20, "first events")

        mosquitto.stop()
        wait_until(lambda: not service.health()["connected"], 10, "link to notice the outage")
        producer.join(60)
        assert not producer.is_alive()
        waiting = service.health()["outbox"]
        assert isinstance(waiting, dict) and waiting["depth"] > 0, "the outage held nothing back"
        received_before_restart = len(centre.events("kiosk-1"))
        assert received_before_restart < TOTAL

        mosquitto.start()
        wait_until(lambda: len(centre.events("kiosk-1")) >= TOTAL, 30, "all events")
        wait_until(lambda: service.health()["outbox"]["depth"] == 0, 10, "outbox drained")  # type: ignore[index]
    finally:
        service.stop()
        centre.stop()
        database.close()

    events = centre.events("kiosk-1")
    assert sorted(e["event_id"] for e in events) == sorted(f"ev-{n}" for n in range(TOTAL))
    assert len(events) == TOTAL  # each id kept once; repeats only counted as duplicates
    assert centre.order_violations("kiosk-1") == []
    for camera in ("cam1", "cam2"):
        numbers = [int(e["event_id"][3:]) for e in events if e["camera"] == camera]
        assert numbers == sorted(numbers), f"{camera} events out of order"
    assert centre.gaps("kiosk-1") == []


def test_a_full_outbox_drops_visibly_and_the_command_centre_sees_the_gap(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kiosk"
    database = Database(data_dir / "kiosk.sqlite3")
    config = kiosk_config(data_dir, mosquitto.port, outbox_max_rows=100)
    service = AlertService(config, database, RecordingTarget())
    with CommandCenter(port=mosquitto.port, kiosks=["kiosk-1"]) as centre:
        service.start()
        try:
            produce_events(service, database, 20, 10, 0)
            wait_until(lambda: len(centre.events("kiosk-1")) >= 20, 10, "first 20 events")
            wait_until(lambda: service.health()["outbox"]["depth"] == 0, 10, "drained")  # type: ignore[index]

            # A long outage: 150 more events into an outbox that holds 100.
            mosquitto.stop()
            wait_until(lambda: not service.health()["connected"], 10, "outage noticed")
            produce_events(service, database, 170, 10, 0)
            outbox = service.health()["outbox"]
            assert isinstance(outbox, dict)
            assert (outbox["depth"], outbox["dropped"]) == (100, {"alert": 50})

            mosquitto.start()
            wait_until(lambda: len(centre.events("kiosk-1")) >= 120, 20, "the kept events")
            # The next health message tells the centre about the loss as well.
            wait_until(
                lambda: (centre.health("kiosk-1") or {}).get("outbox", {}).get("dropped"),
                15,
                "health reporting the drop",
            )
            reported = centre.health("kiosk-1")
        finally:
            service.stop()
            database.close()
    events = centre.events("kiosk-1")
    # The oldest waiting went; the newest arrived, and the centre names exactly what is missing.
    assert [e["event_id"] for e in events] == [f"ev-{n}" for n in (*range(20), *range(70, 170))]
    assert centre.gaps("kiosk-1") == list(range(21, 71))
    assert reported is not None and reported["outbox"]["dropped"] == {"alert": 50}


def test_a_message_the_broker_never_accepts_is_dropped_and_the_rest_flows(
    mosquitto_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Mosquitto hangs up on a packet above max_packet_size without acknowledging it; paho
    # would re-send it on every reconnect and nothing behind it would ever go.
    broker: MosquittoBroker = mosquitto_factory(extra_config=("max_packet_size 4000",))
    data_dir = tmp_path / "kiosk"
    database = Database(data_dir / "kiosk.sqlite3")
    service = AlertService(kiosk_config(data_dir, broker.port), database, RecordingTarget())
    with CommandCenter(port=broker.port, kiosks=["kiosk-1"]) as centre:
        service.start()
        try:
            wait_until(lambda: centre.status("kiosk-1") == "online", 10, "kiosk online")
            with database.write() as db:
                service.enqueue_event(db, Transition("start", "before", "cam1", 1.0, 1.0))
                service.enqueue_report(db, "oversized", {"blob": "x" * 10_000})
                service.enqueue_event(db, Transition("start", "after", "cam1", 2.0, 2.0))
            wait_until(lambda: len(centre.alerts("kiosk-1")) >= 2, 30, "the other messages")
            wait_until(lambda: service.health()["outbox"]["depth"] == 0, 10, "outbox empty")  # type: ignore[index]
            assert service.health()["rejected"] == 1
        finally:
            service.stop()
            database.close()
    assert [e["event_id"] for e in centre.events("kiosk-1")] == ["before", "after"]
    assert centre.reports("kiosk-1") == []
    assert centre.gaps("kiosk-1") == [2]  # the centre can tell something is missing
    assert "dropped: the broker closed the connection" in caplog.text
