"""The patrol service's rules: routes name known cameras, points are looked at for the minimum
time, a round is its officer's alone, missed windows are recorded and reported once, records,
the weekly report and retention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.errors import NotAllowedError, RecordNotFoundError, ValidationError
from agent.village.patrol import MISSED_REPORT, ROUND_REPORT, RoundFilter, RoundStatus, Route
from tests.village.patrol.conftest import Patrol, local

OFFICER, OTHER, ADMIN = "li.police", "wu.police", "zhao.admin"
JPEG = b"\xff\xd8\xff\xe0 a masked still \xff\xd9"


def route(patrol: Patrol, schedule: str = "", cameras: tuple[str, ...] = ("square", "yard"),
          look: int = 10) -> Route:  # fmt: skip
    return patrol.service.create_route(
        name="夜间必巡线", cameras=list(cameras), min_look_seconds=look, schedule=schedule,
        actor=ADMIN,
    )  # fmt: skip


def walk(patrol: Patrol, route_id: int, officer: str = OFFICER, note: str = "") -> int:
    """A whole round, each point looked at for 12 s."""
    started = patrol.service.start_round(route_id, actor=officer)
    for point in started.points:
        patrol.clock.advance(seconds=12)
        patrol.service.complete_point(started.id, point.position, actor=officer, note=note)
    return started.id


# -- routes ----------------------------------------------------------------------------------


def test_a_route_with_an_unknown_camera_is_refused(patrol: Patrol) -> None:
    with pytest.raises(ValidationError) as refused:
        route(patrol, cameras=("square", "somewhere-else"))
    assert (refused.value.field, refused.value.message) == ("cameras", "patrol.cameras.unknown")
    assert patrol.service.list_routes() == []


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"name": "  "}, "name", "patrol.name.required"),
        ({"cameras": ["", " "]}, "cameras", "patrol.cameras.required"),
        ({"cameras": ["square", "square"]}, "cameras", "patrol.cameras.duplicate"),
        ({"min_look_seconds": "0"}, "min_look_seconds", "patrol.min_look_seconds.range"),
        ({"min_look_seconds": "ten"}, "min_look_seconds", "patrol.min_look_seconds.invalid"),
        ({"schedule": "22:00-23:00, 22:30-23:30"}, "schedule", "patrol.schedule.overlap"),
    ],
)
def test_route_fields_are_checked(
    patrol: Patrol, fields: dict[str, object], field: str, code: str
) -> None:
    values: dict[str, object] = {
        "name": "必巡线", "cameras": ["square"], "min_look_seconds": "10", "schedule": "",
        **fields,
    }  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        patrol.service.create_route(**values, actor=ADMIN)  # type: ignore[arg-type]
    assert (refused.value.field, refused.value.message) == (field, code)


def test_a_route_keeps_its_cameras_in_order_and_its_schedule(patrol: Patrol) -> None:
    made = route(patrol, "04:00-05:00, 22:00-23:00", cameras=("yard", "bridge", "square"))
    again = patrol.service.get_route(made.id)
    assert again.cameras == ("yard", "bridge", "square")
    assert again.schedule_text == "04:00-05:00, 22:00-23:00"
    assert again.min_look_seconds == 10
    actions = [entry.action for entry in patrol.audit.entries(actor=ADMIN)]
    assert actions == ["patrol.route.create"]


# -- walking a round -------------------------------------------------------------------------


def test_a_point_cannot_be_completed_before_the_minimum_look_time(patrol: Patrol) -> None:
    made = route(patrol, look=10)
    started = patrol.service.start_round(made.id, actor=OFFICER)
    patrol.clock.advance(seconds=9.5)
    with pytest.raises(ValidationError) as refused:
        patrol.service.complete_point(started.id, 0, actor=OFFICER)
    assert refused.value.message == "patrol.point.too_soon"
    assert patrol.service.get_round(started.id).points_done == 0
    patrol.clock.advance(seconds=0.5)
    after = patrol.service.complete_point(started.id, 0, actor=OFFICER)
    assert after.points_done == 1
    assert after.points[0].look_seconds == pytest.approx(10.0)
    # The next camera is shown from this moment: it needs its own full look.
    assert after.points[1].shown_at == patrol.clock.now
    patrol.clock.advance(seconds=3)
    with pytest.raises(ValidationError):
        patrol.service.complete_point(started.id, 1, actor=OFFICER)


def test_points_are_walked_in_order(patrol: Patrol) -> None:
    started = patrol.service.start_round(route(patrol).id, actor=OFFICER)
    patrol.clock.advance(seconds=60)
    with pytest.raises(ValidationError) as refused:
        patrol.service.complete_point(started.id, 1, actor=OFFICER)
    assert refused.value.message == "patrol.point.not_current"


def test_an_officer_cannot_write_into_another_officers_round(patrol: Patrol) -> None:
    made = route(patrol)
    started = patrol.service.start_round(made.id, actor=OFFICER)
    patrol.clock.advance(seconds=30)
    attempts = [
        lambda: patrol.service.complete_point(started.id, 0, actor=OTHER, note="mine now"),
        lambda: patrol.service.save_note(started.id, 0, actor=OTHER, note="mine now"),
        lambda: patrol.service.save_snapshot(
            started.id, 0, actor=OTHER, picture=lambda _camera: JPEG, note="mine now"
        ),
        lambda: patrol.service.end_round(started.id, actor=OTHER),
    ]
    for attempt in attempts:
        with pytest.raises(NotAllowedError) as refused:
            attempt()
        assert refused.value.code == "patrol.round.not_yours"
    untouched = patrol.service.get_round(started.id)
    assert untouched.status is RoundStatus.IN_PROGRESS
    assert (untouched.points[0].note, untouched.points[0].snapshots) == ("", ())
    assert untouched.points_done == 0
    # The other officer walks a round of their own meanwhile.
    assert patrol.service.start_round(made.id, actor=OTHER).officer == OTHER


def test_one_round_at_a_time_and_not_on_a_retired_route(patrol: Patrol) -> None:
    made = route(patrol)
    patrol.service.start_round(made.id, actor=OFFICER)
    with pytest.raises(NotAllowedError) as busy:
        patrol.service.start_round(made.id, actor=OFFICER)
    assert busy.value.code == "patrol.round.in_progress"
    patrol.service.retire_route(made.id, actor=ADMIN)
    with pytest.raises(NotAllowedError) as retired:
        patrol.service.start_round(made.id, actor=OTHER)
    assert retired.value.code == "patrol.route.retired"
    with pytest.raises(RecordNotFoundError):
        patrol.service.start_round(9999, actor=OTHER)


def test_a_walked_round_is_completed_and_reported_without_its_notes(patrol: Patrol) -> None:
    made = route(patrol, "19:30-20:30")  # the clock starts at 20:00 local: inside the window
    started = patrol.service.start_round(made.id, actor=OFFICER)
    assert started.scheduled
    patrol.clock.advance(seconds=11)
    patrol.service.save_snapshot(
        started.id, 0, actor=OFFICER, picture=lambda camera: JPEG, note="张三家门口有陌生车辆"
    )
    patrol.service.complete_point(started.id, 0, actor=OFFICER, note="张三家门口有陌生车辆")
    patrol.clock.advance(seconds=11)
    done = patrol.service.complete_point(started.id, 1, actor=OFFICER)
    assert done.status is RoundStatus.COMPLETED
    assert done.finished_at == patrol.clock.now
    assert [p.note for p in done.points] == ["张三家门口有陌生车辆", ""]
    assert len(done.points[0].snapshots) == 1
    (snapshot,) = done.points[0].snapshots
    assert patrol.service.snapshot_jpeg(snapshot.id, actor=ADMIN) == JPEG
    (payload,) = patrol.kinds(ROUND_REPORT)
    assert payload["status"] == "completed"
    assert (payload["notes"], payload["snapshots"], payload["points_looked"]) == (1, 1, 2)
    assert "张三" not in repr(payload), "note text stays on the kiosk"
    with pytest.raises(NotAllowedError) as finished:
        patrol.service.complete_point(started.id, 1, actor=OFFICER)
    assert finished.value.code == "patrol.round.finished"
    actions = {entry.action for entry in patrol.audit.entries()}
    assert {"patrol.snapshot.save", "patrol.snapshot.view", "patrol.round.start"} <= actions


def test_a_snapshot_needs_a_picture(patrol: Patrol) -> None:
    started = patrol.service.start_round(route(patrol).id, actor=OFFICER)
    with pytest.raises(ValidationError) as refused:
        patrol.service.save_snapshot(started.id, 0, actor=OFFICER, picture=lambda camera: None)
    assert refused.value.message == "patrol.snapshot.no_frame"


def test_a_round_ended_early_is_partial(patrol: Patrol) -> None:
    started = patrol.service.start_round(route(patrol).id, actor=OFFICER)
    patrol.clock.advance(seconds=15)
    patrol.service.complete_point(started.id, 0, actor=OFFICER)
    ended = patrol.service.end_round(started.id, actor=OFFICER)
    assert ended.status is RoundStatus.PARTIAL
    assert (ended.points_done, ended.points_total) == (1, 2)
    (payload,) = patrol.kinds(ROUND_REPORT)
    assert payload["status"] == "partial"


# -- missed windows ----------------------------------------------------------------------------


def test_a_window_without_a_completed_round_is_missed_once(patrol: Patrol) -> None:
    made = route(patrol, "22:00-23:00, 01:00-02:00")  # made at 20:00 local
    patrol.clock.now = local("2026-12-01T22:59:59")
    patrol.service.tick()
    assert patrol.kinds(MISSED_REPORT) == [], "the window is still open"
    patrol.clock.now = local("2026-12-01T23:00:30")
    patrol.service.tick()
    patrol.service.tick()
    (missed,) = patrol.kinds(MISSED_REPORT)
    assert missed["route_id"] == made.id
    assert missed["window"] == "22:00-23:00"
    assert missed["window_start"].startswith("2026-12-01T14:00:00")  # 22:00 in UTC+8
    # The 01:00 window after midnight is missed too, once; the 22:00 one is not reported again.
    patrol.clock.now = local("2026-12-02T02:00:00")
    patrol.service.tick()
    patrol.service.tick()
    assert [m["window"] for m in patrol.kinds(MISSED_REPORT)] == ["22:00-23:00", "01:00-02:00"]
    records = patrol.service.list_rounds(RoundFilter(status=RoundStatus.MISSED))
    assert [(r.officer, r.route_id) for r in records] == [(None, made.id), (None, made.id)]


def test_a_completed_round_in_the_window_keeps_it_from_being_missed(patrol: Patrol) -> None:
    made = route(patrol, "22:00-23:00, 01:00-02:00")
    patrol.clock.now = local("2026-12-01T22:10:00")
    walk(patrol, made.id)
    # A partial round does not count: the 01:00 window is missed although someone began it.
    patrol.clock.now = local("2026-12-02T01:10:00")
    started = patrol.service.start_round(made.id, actor=OTHER)
    patrol.service.end_round(started.id, actor=OTHER)
    patrol.clock.now = local("2026-12-02T03:00:00")
    patrol.service.tick()
    assert [m["window"] for m in patrol.kinds(MISSED_REPORT)] == ["01:00-02:00"]


def test_a_round_walked_across_the_window_end_decides_when_it_ends(patrol: Patrol) -> None:
    made = route(patrol, "22:00-23:00")
    patrol.clock.now = local("2026-12-01T22:59:00")
    started = patrol.service.start_round(made.id, actor=OFFICER)
    patrol.clock.now = local("2026-12-01T23:00:30")
    patrol.service.tick()
    assert patrol.kinds(MISSED_REPORT) == [], "the round begun in the window may still finish"
    for point in started.points:
        patrol.clock.advance(seconds=20)
        patrol.service.complete_point(started.id, point.position, actor=OFFICER)
    patrol.service.tick()
    assert patrol.kinds(MISSED_REPORT) == []


def test_an_abandoned_round_is_closed_partial_and_its_window_missed(patrol: Patrol) -> None:
    made = route(patrol, "22:00-23:00")
    patrol.clock.now = local("2026-12-01T22:30:00")
    started = patrol.service.start_round(made.id, actor=OFFICER)
    patrol.clock.now = local("2026-12-02T00:31:00")  # 2 h 1 min untouched
    patrol.service.tick()
    assert patrol.service.get_round(started.id).status is RoundStatus.PARTIAL
    patrol.service.tick()
    assert [m["window"] for m in patrol.kinds(MISSED_REPORT)] == ["22:00-23:00"]


def test_windows_before_the_route_existed_are_not_missed(patrol: Patrol) -> None:
    patrol.clock.now = local("2026-12-01T22:30:00")
    route(patrol, "22:00-23:00")  # made inside the window
    patrol.clock.now = local("2026-12-01T23:30:00")
    patrol.service.tick()
    assert patrol.kinds(MISSED_REPORT) == []


# -- records, report, retention --------------------------------------------------------------


def test_records_filter_by_status_officer_route_and_local_day(patrol: Patrol) -> None:
    night = route(patrol, "22:00-23:00")
    other = patrol.service.create_route(
        name="白天", cameras=["bridge"], min_look_seconds=5, schedule="", actor=ADMIN
    )
    patrol.clock.now = local("2026-12-01T22:05:00")
    first = walk(patrol, night.id, OFFICER)
    patrol.clock.now = local("2026-12-02T00:30:00")  # a new local day, still 1 Dec in UTC
    second = walk(patrol, other.id, OTHER)
    service = patrol.service
    assert [r.id for r in service.list_rounds(RoundFilter(officer=OTHER))] == [second]
    assert [r.id for r in service.list_rounds(RoundFilter(route_id=night.id))] == [first]
    day = local("2026-12-02T00:00").date()
    assert [r.id for r in service.list_rounds(RoundFilter(date_from=day, date_to=day))] == [second]
    completed = service.list_rounds(RoundFilter(status=RoundStatus.COMPLETED))
    assert {r.id for r in completed} == {first, second}
    assert service.officers() == [OFFICER, OTHER]


def test_weekly_report_per_officer_and_route(patrol: Patrol) -> None:
    made = route(patrol, "22:00-23:00")  # Tuesday 1 Dec 2026, week 49
    patrol.clock.now = local("2026-12-01T22:05:00")
    walk(patrol, made.id, OFFICER, note="正常")
    patrol.clock.now = local("2026-12-03T22:05:00")
    started = patrol.service.start_round(made.id, actor=OFFICER)
    patrol.clock.advance(seconds=30)
    patrol.service.complete_point(started.id, 0, actor=OFFICER)
    patrol.service.end_round(started.id, actor=OFFICER)
    patrol.clock.now = local("2026-12-03T23:30:00")
    # Missed: 2 Dec (nobody walked) and 3 Dec (only a partial round).
    patrol.service.tick()
    report = patrol.service.weekly_report("2026-W49")
    assert (report.start.isoformat(), report.end.isoformat()) == ("2026-11-30", "2026-12-06")
    rows = {(row.officer, row.completed, row.partial, row.missed) for row in report.rows}
    assert rows == {(OFFICER, 1, 1, 0), (None, 0, 0, 2)}
    (walked,) = [row for row in report.rows if row.officer == OFFICER]
    assert walked.average_look_seconds == pytest.approx((12 + 12 + 30) / 3, abs=0.1)
    assert patrol.service.weekly_report("2026-W50").rows == ()
    assert patrol.service.weekly_report(None).week == "2026-W49"
    with pytest.raises(ValidationError):
        patrol.service.weekly_report("last week")


def test_purge_removes_old_snapshots_first_and_old_rounds_later(patrol: Patrol) -> None:
    made = route(patrol)
    started = patrol.service.start_round(made.id, actor=OFFICER)
    patrol.service.save_snapshot(started.id, 0, actor=OFFICER, picture=lambda camera: JPEG)
    patrol.clock.advance(seconds=20)
    patrol.service.end_round(started.id, actor=OFFICER)
    patrol.clock.advance(days=29)
    assert patrol.service.purge_expired() == 0
    patrol.clock.advance(days=2)
    assert patrol.service.purge_expired() == 1, "the snapshot, a picture of people, goes"
    kept = patrol.service.get_round(started.id)
    assert kept.points[0].snapshots == ()
    patrol.clock.advance(days=335)
    assert patrol.service.purge_expired() == 1
    with pytest.raises(RecordNotFoundError):
        patrol.service.get_round(started.id)
    assert patrol.service.get_route(made.id).name == "夜间必巡线", "routes are not purged"


def test_a_round_in_progress_is_never_purged(patrol: Patrol) -> None:
    started = patrol.service.start_round(route(patrol).id, actor=OFFICER)
    patrol.clock.advance(days=400)
    patrol.service.purge_expired()
    assert patrol.service.get_round(started.id).id == started.id


def test_purge_timing_follows_the_settings(tmp_path: object) -> None:
    from pathlib import Path

    from tests.village.patrol.conftest import make_patrol

    assert isinstance(tmp_path, Path)
    short = make_patrol(tmp_path, snapshot_retention_days=1, round_retention_days=30)
    try:
        started = short.service.start_round(route(short).id, actor=OFFICER)
        short.service.save_snapshot(started.id, 0, actor=OFFICER, picture=lambda camera: JPEG)
        short.service.end_round(started.id, actor=OFFICER)
        short.clock.advance(days=1, seconds=1)
        assert short.service.purge_expired() == 1
        short.clock.advance(days=30)
        assert short.service.purge_expired() == 1
    finally:
        short.database.close()


def test_a_missed_round_is_in_the_same_transaction_as_its_report(patrol: Patrol) -> None:
    """A report that cannot be written leaves no missed record, so the next tick tries again."""
    route(patrol, "22:00-23:00")
    patrol.clock.now = local("2026-12-01T23:01:00")
    patrol.failing = True
    with pytest.raises(RuntimeError):
        patrol.service.tick()
    assert patrol.service.list_rounds() == []
    patrol.failing = False
    patrol.service.tick()
    assert len(patrol.kinds(MISSED_REPORT)) == 1
    assert len(patrol.service.list_rounds()) == 1


def test_timedelta_sanity_of_the_fixture_clock(patrol: Patrol) -> None:
    before = patrol.clock.now
    patrol.clock.advance(minutes=1)
    assert patrol.clock.now - before == timedelta(minutes=1)


def test_a_route_whose_camera_left_the_config_cannot_be_walked(patrol: Patrol) -> None:
    from agent.village.patrol import PatrolService, PatrolSettings

    made = route(patrol, cameras=("square", "bridge"))
    fewer = PatrolService(
        patrol.database,
        patrol.audit,
        lambda _db, _kind, _payload: None,
        vault=patrol.vault,
        cameras={"square": "村口广场"},
        settings=PatrolSettings(timezone="Asia/Shanghai"),
        clock=patrol.clock,
    )
    with pytest.raises(ValidationError) as refused:
        fewer.start_round(made.id, actor=OFFICER)
    assert refused.value.message == "patrol.cameras.unknown"
    assert fewer.open_round(OFFICER) is None


def test_notes_are_sealed_at_rest(patrol: Patrol) -> None:
    started = patrol.service.start_round(route(patrol).id, actor=OFFICER)
    patrol.service.save_note(started.id, 0, actor=OFFICER, note="王五家的车停在桥头")
    with patrol.database.read() as db:
        stored = [row[0] for row in db.execute("SELECT note FROM patrol_round_points")]
    assert all("王五" not in text for text in stored)
    assert patrol.vault.decrypt(stored[0]) == "王五家的车停在桥头"
    assert stored[1] == ""
    assert patrol.service.get_round(started.id).points[0].note == "王五家的车停在桥头"
    assert patrol.service.list_rounds()[0].notes == 1
