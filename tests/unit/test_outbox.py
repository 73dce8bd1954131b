"""The durable outbox: atomic with the caller's record, ordered, bounded, never silent."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.alerts import outbox
from agent.alerts.outbox import MessageKind, OutboxLimits
from agent.alerts.sealing import load_private_key, open_report
from agent.alerts.service import AlertService
from agent.errors import ConfigError, KioskError, ValidationError
from agent.privacy import Vault
from agent.store.database import Database
from tests.fixtures.mosquitto import (
    TINY_JPEG,
    RecordingTarget,
    Transition,
    centre_keys,
    kiosk_config,
)

ROOMY = OutboxLimits(max_rows=10_000, max_bytes=10_000_000)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "kiosk.sqlite3")
    outbox.migrate(db)
    yield db
    db.close()


def _add(database: Database, kind: MessageKind, limits: OutboxLimits = ROOMY, **kw: object) -> str:
    with database.write() as db:
        return outbox.enqueue(
            db,
            topic=str(kw.pop("topic", f"village/k/{kind}")),
            payload=bytes(kw.pop("payload", b"{}")),  # type: ignore[call-overload]
            kind=kind,
            limits=limits,
            **kw,  # type: ignore[arg-type]
        )


def _kinds(database: Database) -> list[str]:
    with database.read() as db:
        return [row.kind for row in outbox.fetch_after(db, 0, 1000)]


def test_message_is_written_only_if_the_callers_transaction_commits(database: Database) -> None:
    with database.write() as db:
        db.execute("CREATE TABLE guests (name TEXT)")
    with pytest.raises(RuntimeError), database.write() as db:
        db.execute("INSERT INTO guests VALUES ('a')")
        outbox.enqueue(
            db, topic="village/k/report/guest", payload=b"{}", kind=MessageKind.REPORT, limits=ROOMY
        )
        raise RuntimeError("the record failed")
    with database.read() as db:
        assert outbox.stats(db).depth == 0
        assert db.execute("SELECT COUNT(*) FROM guests").fetchone()[0] == 0
        # The rolled-back message did not consume a sequence number either.
    with database.write() as db:
        db.execute("INSERT INTO guests VALUES ('b')")
        assert outbox.next_sequence(db) == 1
        outbox.enqueue(
            db, topic="village/k/report/guest", payload=b"{}", kind=MessageKind.REPORT, limits=ROOMY
        )
    with database.read() as db:
        assert outbox.stats(db).depth == 1
        assert db.execute("SELECT COUNT(*) FROM guests").fetchone()[0] == 1


def test_rows_come_back_in_order_and_leave_only_when_deleted(database: Database) -> None:
    ids = [_add(database, MessageKind.ALERT, payload=f'{{"n": {n}}}'.encode()) for n in range(5)]
    with database.read() as db:
        rows = outbox.fetch_after(db, 0, 3)
        assert [row.message_id for row in rows] == ids[:3]
        assert [row.message_id for row in outbox.fetch_after(db, rows[-1].seq, 10)] == ids[3:]
    with database.write() as db:
        outbox.delete(db, [rows[0].seq, rows[1].seq])
        outbox.delete(db, [rows[0].seq])  # an ack for a row already gone changes nothing
    with database.read() as db:
        remaining = outbox.fetch_after(db, 0, 10)
        stats = outbox.stats(db, now=remaining[0].seq + 1e10)
    assert [row.message_id for row in remaining] == ids[2:]
    assert stats.depth == 3
    assert stats.bytes == sum(len(r.payload) + len(r.topic) for r in remaining)
    assert stats.oldest_age_seconds is not None and stats.oldest_age_seconds > 0


def test_full_outbox_drops_snapshots_first_then_oldest_alerts_and_counts(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    limits = OutboxLimits(max_rows=4, max_bytes=10_000_000)
    _add(database, MessageKind.ALERT, limits, payload=b"a0")
    _add(
        database,
        MessageKind.SNAPSHOT,
        limits,
        payload=TINY_JPEG,
        topic="village/k/camera/c1/snapshot",
    )
    _add(
        database,
        MessageKind.SNAPSHOT,
        limits,
        payload=TINY_JPEG,
        topic="village/k/camera/c2/snapshot",
    )
    _add(database, MessageKind.ALERT, limits, payload=b"a1")
    caplog.set_level(logging.WARNING)
    _add(database, MessageKind.REPORT, limits, payload=b"r0")
    assert _kinds(database) == ["alert", "snapshot", "alert", "report"]
    _add(database, MessageKind.ALERT, limits, payload=b"a2")
    assert _kinds(database) == ["alert", "alert", "report", "alert"]
    _add(database, MessageKind.ALERT, limits, payload=b"a3")
    with database.read() as db:
        payloads = [row.payload for row in outbox.fetch_after(db, 0, 10)]
        stats = outbox.stats(db)
    assert payloads == [b"a1", b"r0", b"a2", b"a3"]
    assert stats.dropped == {"snapshot": 2, "alert": 1}
    assert "dropped the oldest snapshot message" in caplog.text
    assert "dropped the oldest alert message" in caplog.text


def test_byte_limit_is_enforced_too(database: Database) -> None:
    limits = OutboxLimits(max_rows=1000, max_bytes=3000)
    for _ in range(5):
        _add(database, MessageKind.ALERT, limits, payload=b"x" * 900)
    with database.read() as db:
        stats = outbox.stats(db)
    assert stats.bytes <= 3000
    assert stats.depth == 3
    assert stats.dropped == {"alert": 2}


def test_a_newer_snapshot_replaces_the_pending_one_of_the_same_camera(database: Database) -> None:
    for n in range(3):
        _add(
            database,
            MessageKind.SNAPSHOT,
            payload=TINY_JPEG + bytes([n]),
            topic="village/k/camera/c1/snapshot",
            retain=True,
            replace_pending=True,
        )
    _add(database, MessageKind.SNAPSHOT, topic="village/k/camera/c2/snapshot", replace_pending=True)
    with database.read() as db:
        rows = outbox.fetch_after(db, 0, 10)
        stats = outbox.stats(db)
    assert [(r.topic, r.payload[-1:]) for r in rows] == [
        ("village/k/camera/c1/snapshot", b"\x02"),
        ("village/k/camera/c2/snapshot", b"}"),
    ]
    assert rows[0].retain is True
    assert stats.dropped == {}  # superseded, not lost


def test_migration_is_idempotent(database: Database) -> None:
    assert outbox.migrate(database) == len(outbox.MIGRATIONS)
    assert outbox.migrate(database) == len(outbox.MIGRATIONS)


ID_NUMBER = "110101199003070078"
PHONE = "13912345678"
GUEST = {"guest": {"name": "张三丰", "id_number": ID_NUMBER, "phone": PHONE}}


def _no_personal_data(data: bytes) -> bool:
    return not any(
        value in data for value in (ID_NUMBER.encode(), PHONE.encode(), "张三丰".encode())
    )


def _only_row(database: Database) -> outbox.OutboxRow:
    with database.read() as db:
        (row,) = outbox.fetch_after(db, 0, 10)
    return row


def test_without_the_centres_key_reports_wait_sealed_with_the_vault(tmp_path: Path) -> None:
    database = Database(tmp_path / "kiosk.sqlite3")
    vault = Vault.load_or_create(tmp_path / "secrets" / "key")
    config = kiosk_config(tmp_path, 1883, enabled=False)
    service = AlertService(config, database, RecordingTarget(), sealer=vault)
    with database.write() as db:
        service.enqueue_report(db, "registration", GUEST)
    row = _only_row(database)
    database.close()
    assert row.seal is outbox.Seal.VAULT
    assert _no_personal_data(row.payload)
    assert json.loads(vault.unseal(row.payload))["data"] == GUEST
    for path in tmp_path.glob("kiosk.sqlite3*"):
        assert _no_personal_data(path.read_bytes())


def test_with_the_centres_key_reports_are_sealed_to_it_at_once(tmp_path: Path) -> None:
    database = Database(tmp_path / "kiosk.sqlite3")
    vault = Vault.load_or_create(tmp_path / "secrets" / "key")
    keys = centre_keys(tmp_path)
    config = kiosk_config(tmp_path, 1883, enabled=False, report_public_key=str(keys.public))
    service = AlertService(config, database, RecordingTarget(), sealer=vault)
    with database.write() as db:
        service.enqueue_report(db, "registration", GUEST)
    row = _only_row(database)
    # Published as it is: what waits on disk is what the centre receives.
    assert service._wire_payload(row) == row.payload
    database.close()
    assert row.seal is outbox.Seal.CENTRE
    for path in tmp_path.glob("kiosk.sqlite3*"):
        assert _no_personal_data(path.read_bytes())
    report = open_report(load_private_key(keys.private), "kiosk-1", row.payload)
    assert report.id == row.message_id and report.data == GUEST


@pytest.mark.parametrize("at_rest", ["vault", "plain"])
def test_reports_written_before_the_key_are_sealed_to_the_centre_on_their_way_out(
    tmp_path: Path, at_rest: str
) -> None:
    database = Database(tmp_path / "kiosk.sqlite3")
    vault = Vault.load_or_create(tmp_path / "secrets" / "key")
    demo = AlertService(
        kiosk_config(tmp_path, 1883, enabled=False),
        database,
        RecordingTarget(),
        sealer=vault if at_rest == "vault" else None,
    )
    with database.write() as db:
        demo.enqueue_report(db, "registration", GUEST)
        demo.enqueue_event(db, Transition("start", "e1", "cam1", 1.0, 1.0))
    report_row, event_row = _rows(demo)
    keys = centre_keys(tmp_path)
    linked = AlertService(kiosk_config(tmp_path, 1883), database, RecordingTarget(), sealer=vault)
    wire = linked._wire_payload(report_row)
    assert _no_personal_data(wire)
    report = open_report(load_private_key(keys.private), "kiosk-1", wire)
    assert (report.id, report.seq, report.data) == (report_row.message_id, 1, GUEST)
    assert linked._wire_payload(event_row) == event_row.payload  # events go as they are
    database.close()


def test_a_waiting_report_that_cannot_be_sealed_is_refused_not_sent_in_clear(
    tmp_path: Path,
) -> None:
    database = Database(tmp_path / "kiosk.sqlite3")
    other_vault = Vault(b"\x01" * 32)
    demo = AlertService(
        kiosk_config(tmp_path, 1883, enabled=False),
        database,
        RecordingTarget(),
        sealer=other_vault,
    )
    with database.write() as db:
        demo.enqueue_report(db, "registration", GUEST)
    (row,) = _rows(demo)
    keys = centre_keys(tmp_path)
    config = kiosk_config(tmp_path, 1883, enabled=False, report_public_key=str(keys.public))
    mine = Vault.load_or_create(tmp_path / "secrets" / "key")
    with pytest.raises(KioskError):  # the link drops and counts it
        AlertService(config, database, RecordingTarget(), sealer=mine)._wire_payload(row)
    with pytest.raises(KioskError, match="no command centre key"):
        demo._wire_payload(row)
    database.close()


def test_an_enabled_link_without_the_centres_key_is_never_built(tmp_path: Path) -> None:
    config = kiosk_config(tmp_path, 1883)
    keyless = config.model_copy(
        update={"mqtt": config.mqtt.model_copy(update={"report_public_key": None})}
    )
    database = Database(tmp_path / "kiosk.sqlite3")
    with pytest.raises(ConfigError, match=r"mqtt\.report_public_key: required"):
        AlertService(keyless, database, RecordingTarget())
    bad_key = tmp_path / "bad.pem"
    bad_key.write_text("not a key")
    with pytest.raises(ConfigError, match="is not a PEM public key"):
        config = kiosk_config(tmp_path, 1883, report_public_key=str(bad_key))
        AlertService(config, database, RecordingTarget())
    database.close()


def test_reports_older_than_the_guest_retention_expire_from_the_outbox(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = kiosk_config(tmp_path, 1883, enabled=False)
    config = config.model_copy(
        update={"storage": config.storage.model_copy(update={"guest_retention_days": 30})}
    )
    database = Database(tmp_path / "kiosk.sqlite3")
    service = AlertService(config, database, RecordingTarget())
    day = 86400.0
    now = 1_800_000_000.0
    limits = OutboxLimits(max_rows=1000, max_bytes=10_000_000)
    with database.write() as db:
        for kind, age_days in (
            (MessageKind.REPORT, 31),
            (MessageKind.ALERT, 400),
            (MessageKind.REPORT, 45),
            (MessageKind.SNAPSHOT, 400),
            (MessageKind.REPORT, 29),
        ):
            outbox.enqueue(
                db,
                topic=f"village/kiosk-1/{kind}",
                payload=f"{kind}-{age_days}".encode(),
                kind=kind,
                limits=limits,
                now=now - age_days * day,
            )
    caplog.set_level(logging.INFO)
    assert service.purge_expired(now=now) == 2
    assert service.purge_expired(now=now) == 0
    assert [row.payload for row in _rows(service)] == [b"alert-400", b"snapshot-400", b"report-29"]
    outbox_health = service.health()["outbox"]
    assert isinstance(outbox_health, dict)
    assert outbox_health["dropped"] == {"report_expired": 2}
    assert "2 undelivered report(s) older than the guest retention (30 days)" in caplog.text
    database.close()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(list(MessageKind)), st.integers(min_value=1, max_value=400)),
        max_size=60,
    ),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=500, max_value=3000),
)
def test_limits_and_running_totals_hold_for_any_sequence(
    tmp_path_factory: pytest.TempPathFactory,
    messages: list[tuple[MessageKind, int]],
    max_rows: int,
    max_bytes: int,
) -> None:
    database = Database(tmp_path_factory.mktemp("outbox") / "kiosk.sqlite3")
    outbox.migrate(database)
    limits = OutboxLimits(max_rows=max_rows, max_bytes=max_bytes)
    try:
        for kind, size in messages:
            with database.write() as db:
                snapshots_before = db.execute(
                    "SELECT COUNT(*) FROM outbox WHERE kind = 'snapshot'"
                ).fetchone()[0]
                dropped_before = outbox.stats(db).dropped
                outbox.enqueue(db, topic="t", payload=b"x" * size, kind=kind, limits=limits)
                after = outbox.stats(db)
                rows, size_sum = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
                ).fetchone()
            assert (after.depth, after.bytes) == (rows, size_sum)
            assert after.depth <= max_rows and after.bytes <= max_bytes
            # An alert or report only goes when no older snapshot was left to drop.
            lost_other = sum(
                after.dropped.get(k, 0) - dropped_before.get(k, 0) for k in ("alert", "report")
            )
            lost_snapshots = after.dropped.get("snapshot", 0) - dropped_before.get("snapshot", 0)
            if lost_other:
                assert lost_snapshots >= snapshots_before
    finally:
        database.close()


# ---- AlertService writes, with MQTT off (alerts wait in the outbox) -------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AlertService]:
    config = kiosk_config(tmp_path / "data", 1883, enabled=False)
    database = Database(tmp_path / "data" / "kiosk.sqlite3")
    service = AlertService(config, database, RecordingTarget())
    service.start()
    yield service
    service.stop()
    database.close()


def _rows(service: AlertService) -> list[outbox.OutboxRow]:
    with service._database.read() as db:
        return outbox.fetch_after(db, 0, 100)


def test_event_message_carries_the_documented_fields_and_its_snapshot(
    service: AlertService, tmp_path: Path
) -> None:
    media = tmp_path / "data" / "media" / "cam1"
    media.mkdir(parents=True)
    (media / "ev-7.jpg").write_bytes(TINY_JPEG)
    transition = Transition(
        kind="start",
        event_id="ev-7",
        camera_id="cam1",
        ts=1_700_000_000.25,
        started_at=1_700_000_000.0,
        score=0.8,
        snapshot_path="cam1/ev-7.jpg",
    )
    with service._database.write() as db:
        service.enqueue_event(db, transition)
        service.enqueue_event(
            db,
            Transition(
                "end", "ev-7", "cam1", 1.0, 0.0, ended_at=1.0, snapshot_path="cam1/ev-7.jpg"
            ),
        )
    rows = _rows(service)
    assert [(row.topic, row.kind) for row in rows] == [
        ("village/kiosk-1/events", "alert"),
        ("village/kiosk-1/camera/cam1/snapshot", "snapshot"),
        ("village/kiosk-1/events", "alert"),
    ]
    event = json.loads(rows[0].payload)
    assert event == {
        "id": rows[0].message_id,
        "seq": 1,
        "type": "start",
        "event_id": "ev-7",
        "camera": "cam1",
        "ts": "2023-11-14T22:13:20.250Z",
        "started_at": "2023-11-14T22:13:20.000Z",
        "ended_at": None,
        "score": 0.8,
        "boxes": [[0.1, 0.2, 0.3, 0.4]],
        "zones": ["gate"],
        "snapshot": "cam1/ev-7.jpg",
        "end_reason": None,
    }
    assert rows[1].payload == TINY_JPEG and rows[1].retain
    assert json.loads(rows[2].payload)["seq"] == 2
    assert json.loads(rows[2].payload)["ended_at"] == "1970-01-01T00:00:01.000Z"


def test_snapshot_outside_the_media_dir_or_missing_is_skipped_but_the_event_goes(
    service: AlertService, tmp_path: Path
) -> None:
    (tmp_path / "secret.jpg").write_bytes(TINY_JPEG)
    with service._database.write() as db:
        service.enqueue_event(
            db, Transition("start", "e1", "cam1", 1.0, 1.0, snapshot_path="../../secret.jpg")
        )
        service.enqueue_event(
            db, Transition("start", "e2", "cam1", 1.0, 1.0, snapshot_path="cam1/none.jpg")
        )
    assert [row.kind for row in _rows(service)] == ["alert", "alert"]


def test_report_goes_to_its_kind_topic_and_bad_kinds_are_refused(service: AlertService) -> None:
    with service._database.write() as db:
        service.enqueue_report(db, "care_missed", {"elder": "E-12", "due": "09:00"})
    row = _rows(service)[0]
    assert row.topic == "village/kiosk-1/report/care_missed"
    body = json.loads(row.payload)
    assert body["kind"] == "care_missed" and body["data"] == {"elder": "E-12", "due": "09:00"}
    assert body["id"] == row.message_id and body["seq"] == 1
    with pytest.raises(ValidationError), service._database.write() as db:
        service.enqueue_report(db, "care/#", {})
    assert len(_rows(service)) == 1


def test_health_reports_depth_age_and_drops_while_disconnected(service: AlertService) -> None:
    with service._database.write() as db:
        service.enqueue_event(db, Transition("start", "e1", "cam1", 1.0, 1.0))
    health = service.health()
    assert health["enabled"] is False and health["connected"] is False
    assert health["outbox"] == {
        "depth": 1,
        "bytes": health["outbox"]["bytes"],  # type: ignore[index]
        "oldest_age_seconds": health["outbox"]["oldest_age_seconds"],  # type: ignore[index]
        "dropped": {},
    }


def test_the_event_trackers_own_transitions_are_accepted(service: AlertService) -> None:
    from agent.motion.tracker import EventTransition

    transition = EventTransition(
        kind="end",
        event_id="e9",
        camera_id="cam2",
        ts=10.0,
        started_at=4.0,
        ended_at=10.0,
        score=0.31,
        boxes=((12, 40, 64, 128),),
        zones=("gate", "road"),
        end_reason="quiet",
    )
    with service._database.write() as db:
        service.enqueue_event(db, transition)
    body = json.loads(_rows(service)[0].payload)
    assert body["type"] == "end" and body["end_reason"] == "quiet"
    assert body["boxes"] == [[12, 40, 64, 128]] and body["zones"] == ["gate", "road"]
    assert body["ended_at"] == "1970-01-01T00:00:10.000Z"


def test_health_message_summarises_cameras_from_the_runtime_report() -> None:
    from agent.alerts.service import camera_summary

    runtime_report = {
        "status": "degraded",
        "parts": {
            "cameras": {
                "gate": {"fps": 14.8, "state": "online", "armed": True, "last_error": None},
                "road": {"fps": 0.0, "state": "reconnecting", "armed": False},
            },
        },
    }
    assert camera_summary(runtime_report) == {
        "gate": {"fps": 14.8, "state": "online", "armed": True},
        "road": {"fps": 0.0, "state": "reconnecting", "armed": False},
    }
    assert camera_summary({"cameras": {"c": {"fps": 5, "state": "online"}}}) == {
        "c": {"fps": 5, "state": "online"}
    }
    assert camera_summary({"cameras": "garbage"}) == {}


def test_housekeeping_expires_reports_the_broker_never_took(tmp_path: Path) -> None:
    from agent.config import parse_config
    from agent.runtime import Runtime

    config = parse_config(
        {
            "device": {"id": "kiosk-1", "data_dir": str(tmp_path)},
            "storage": {"guest_retention_days": 7},
            "web": {"enabled": False},
        },
        environ={},
    )
    runtime = Runtime(config)
    try:
        day = 86400.0
        with runtime.database.write() as db:
            runtime.alerts.enqueue_report(db, "registration", GUEST)  # today: stays
            outbox.enqueue(
                db,
                topic="village/kiosk-1/report/registration",
                payload=b"sealed long ago",
                kind=MessageKind.REPORT,
                limits=ROOMY,
                seal=outbox.Seal.VAULT,
                now=time.time() - 8 * day,
            )
        runtime._apply_retention()
        health = runtime.health()["parts"]["mqtt"]  # type: ignore[index]
        with runtime.database.read() as db:
            left = outbox.fetch_after(db, 0, 10)
    finally:
        runtime.database.close()
    (kept,) = left  # today's report
    assert kept.payload != b"sealed long ago"
    assert health["outbox"]["dropped"] == {"report_expired": 1}
