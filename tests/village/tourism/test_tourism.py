"""Tourism's rules through the service and the app: rooms by the homestay's host only, the last
room never confirmed twice for overlapping nights, decisions by the homestay's own host, the
registration pre-fill of a confirmed booking, and attractions with cleaned photos."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.errors import NotAllowedError, RecordNotFoundError, ValidationError
from agent.village.homestay import HomestayService
from agent.village.service import CheckInPrefill
from agent.village.tourism import BookingInput, Room, RoomInput, TourismService
from tests.fixtures.browser import USERS, App
from tests.village.products.helpers import GPS_LATITUDE, header_markers, jpeg_with_gps

HOST = USERS["host"]
OTHER_HOST = "li.host"
GUEST_PHONE = "13700001111"


def tourism(app: App) -> TourismService:
    return app.parts.context.service(TourismService)


def add_room(app: App, count: int = 1, name: str = "山景大床房") -> Room:
    data = RoomInput.from_fields({"room_name": name, "price": "280", "count": str(count),
                                  "max_guests": "2"})  # fmt: skip
    return tourism(app).add_room(app.homestay_id, data, host_username=HOST)


def request(app: App, room: Room, start: int, nights: int, name: str = "林小雨") -> Any:
    service = tourism(app)
    today = service.today()
    fields = {
        "room_id": str(room.id),
        "check_in": (today + timedelta(days=start)).isoformat(),
        "check_out": (today + timedelta(days=start + nights)).isoformat(),
        "guests": "2",
        "name": name,
        "phone": GUEST_PHONE,
    }
    return service.request_booking(app.homestay_id, BookingInput.from_fields(fields, today=today))


def test_the_last_room_is_not_confirmed_twice_for_overlapping_nights(web_app: App) -> None:
    service = tourism(web_app)
    room = add_room(web_app, count=1)
    first = request(web_app, room, start=3, nights=3)
    overlapping = request(web_app, room, start=5, nights=2, name="周大海")
    after = request(web_app, room, start=6, nights=1, name="吴一凡")
    service.confirm_booking(first.id, host_username=HOST)
    with pytest.raises(ValidationError) as refused:
        service.confirm_booking(overlapping.id, host_username=HOST)
    assert refused.value.message == "tourism.booking.unavailable"
    assert service.booking_by_reference(overlapping.reference).status == "pending"
    # The night the first booking leaves is free again.
    assert service.confirm_booking(after.id, host_username=HOST).status == "confirmed"
    # A new request for a full night is refused at once.
    with pytest.raises(ValidationError) as refused:
        request(web_app, room, start=4, nights=1)
    assert refused.value.message == "tourism.booking.unavailable"
    nights = {n.day: n.free for n in service.calendar(web_app.homestay_id)[0].nights}
    today = service.today()
    assert [nights[today + timedelta(days=d)] for d in range(2, 8)] == [1, 0, 0, 0, 0, 1]


def test_two_rooms_take_two_overlapping_bookings_and_no_third(web_app: App) -> None:
    service = tourism(web_app)
    room = add_room(web_app, count=2)
    bookings = [request(web_app, room, start=1, nights=2, name=n) for n in ("甲乙", "丙丁", "戊己")]
    service.confirm_booking(bookings[0].id, host_username=HOST)
    service.confirm_booking(bookings[1].id, host_username=HOST)
    with pytest.raises(ValidationError):
        service.confirm_booking(bookings[2].id, host_username=HOST)


def test_a_host_cannot_decide_another_hosts_booking(web_app: App) -> None:
    web_app.parts.add_user(OTHER_HOST, "host")
    homestays = web_app.parts.context.service(HomestayService)
    homestays.create_homestay("李家小院", "竹林村 5 组", 3, OTHER_HOST)
    service = tourism(web_app)
    booking = request(web_app, add_room(web_app), start=2, nights=1)
    for decide in (service.confirm_booking, service.decline_booking):
        with pytest.raises(NotAllowedError) as refused:
            decide(booking.id, host_username=OTHER_HOST)
        assert refused.value.code == "tourism.booking.not_host"
    assert service.booking_by_reference(booking.reference).status == "pending"
    assert service.host_bookings(host_username=OTHER_HOST) == []

    # Through the app: the other host's session gets 403, the right host's confirms.
    other = TestClient(web_app.asgi, follow_redirects=False)
    grant = web_app.parts.context.accounts.start_session(
        web_app.parts.context.accounts.get_user(OTHER_HOST)
    )
    other.cookies.set("vk_session", grant.token)
    other.headers["X-CSRF-Token"] = grant.session.csrf_token
    answer = other.post(f"/api/host/bookings/{booking.id}/confirm")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "tourism.booking.not_host"
    with pytest.raises(RecordNotFoundError):
        service.add_room(
            web_app.homestay_id,
            RoomInput.from_fields(
                {"room_name": "x", "price": "1", "count": "1", "max_guests": "1"}
            ),
            host_username=OTHER_HOST,
        )
    host = web_app.session_client("host")
    assert host.post(f"/api/host/bookings/{booking.id}/confirm").json()["status"] == "confirmed"


def test_a_confirmed_booking_prefills_the_registration(web_app: App) -> None:
    service = tourism(web_app)
    provider = web_app.parts.context.services.providing(CheckInPrefill)
    assert provider is service
    booking = request(web_app, add_room(web_app), start=2, nights=3)
    with pytest.raises(RecordNotFoundError):
        service.check_in_prefill(booking.id, host_username=HOST)  # not confirmed yet
    service.confirm_booking(booking.id, host_username=HOST)
    with pytest.raises(RecordNotFoundError):
        service.check_in_prefill(booking.id, host_username=OTHER_HOST)
    values = service.check_in_prefill(booking.id, host_username=HOST)
    today = service.today()
    assert values == {
        "name": "林小雨",
        "phone": GUEST_PHONE,
        "room": "山景大床房",
        "check_in": f"{(today + timedelta(days=2)).isoformat()}T14:00",
        "expected_check_out": (today + timedelta(days=5)).isoformat(),
    }
    entries = web_app.parts.context.audit.entries(actor=HOST)
    assert any(e.action == "booking.prefill" for e in entries)


def test_the_guest_name_and_phone_are_sealed(web_app: App) -> None:
    booking = request(web_app, add_room(web_app), start=1, nights=1)
    assert booking.name == "林*雨" and booking.phone == "137****1111"
    with web_app.parts.context.database.read() as db:
        dump = "\n".join(db.conn.iterdump())
    assert GUEST_PHONE not in dump and "林小雨" not in dump


def test_a_tourist_books_through_the_json_api_and_follows_the_reference(web_app: App) -> None:
    room = add_room(web_app)
    tourist = web_app.session_client("anonymous")
    stays = tourist.get("/api/stays").json()["stays"]
    assert [s["homestay_id"] for s in stays] == [web_app.homestay_id]
    today = tourism(web_app).today()
    body = {
        "room_id": str(room.id), "check_in": (today + timedelta(days=1)).isoformat(),
        "check_out": (today + timedelta(days=2)).isoformat(), "guests": "3",
        "name": "林小雨", "phone": GUEST_PHONE,
    }  # fmt: skip
    too_many = tourist.post(f"/api/stays/{web_app.homestay_id}/bookings", json=body)
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "tourism.guests.too_many_for_room"
    sent = tourist.post(f"/api/stays/{web_app.homestay_id}/bookings", json={**body, "guests": "2"})
    assert sent.status_code == 201, sent.text
    reference = sent.json()["reference"]
    assert tourist.get(f"/api/stays/requests/{reference}").json()["status"] == "pending"
    page = tourist.get(f"/stays/requests/{reference}")
    assert "等待民宿主人确认" in page.text and GUEST_PHONE not in page.text
    assert tourist.get("/stays/requests/not-a-real-reference").status_code == 404


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"check_in": "yesterday"}, "tourism.check_in.invalid"),
        ({"start": -1}, "tourism.check_in.past"),
        ({"nights": 0}, "tourism.check_out.before_check_in"),
        ({"nights": 31}, "tourism.check_out.too_long"),
        ({"phone": "12345"}, "tourism.phone.format"),
        ({"guests": "0"}, "tourism.guests.range"),
    ],
)
def test_booking_requests_are_checked(change: dict[str, Any], code: str) -> None:
    today = date(2026, 5, 1)
    start, nights = change.pop("start", 1), change.pop("nights", 2)
    fields = {
        "room_id": "1",
        "check_in": (today + timedelta(days=start)).isoformat(),
        "check_out": (today + timedelta(days=start + nights)).isoformat(),
        "guests": "2",
        "name": "林小雨",
        "phone": GUEST_PHONE,
        **change,
    }
    with pytest.raises(ValidationError) as refused:
        BookingInput.from_fields(fields, today=today)
    assert refused.value.message == code


def test_rooms_do_not_add_up_to_more_than_the_homestay(web_app: App) -> None:
    add_room(web_app, count=4)  # the homestay has 5 rooms
    with pytest.raises(ValidationError) as refused:
        add_room(web_app, count=2, name="家庭房")
    assert refused.value.message == "tourism.count.over_homestay"


def test_undecided_requests_expire_and_old_bookings_are_purged(web_app: App) -> None:
    service = tourism(web_app)
    room = add_room(web_app)
    pending = request(web_app, room, start=0, nights=1)
    kept = request(web_app, room, start=1, nights=1, name="周大海")
    service.confirm_booking(kept.id, host_username=HOST)
    moved = datetime.now(UTC) + timedelta(days=3)
    service._clock = lambda: moved  # the service reads the time only through its clock
    service.tick()
    assert service.booking_by_reference(pending.reference).status == "expired"
    assert service.purge_expired() == 0  # decided today, stay ended 1 day ago
    service._clock = lambda: moved + timedelta(days=40)
    assert service.purge_expired() == 2
    with pytest.raises(RecordNotFoundError):
        service.booking_by_reference(kept.reference)


def test_attractions_are_edited_by_staff_and_shown_to_everyone(web_app: App) -> None:
    staff = web_app.session_client("staff")
    upload = jpeg_with_gps()
    created = staff.post(
        "/api/attractions",
        data={"name": "千年银杏", "description": "村口的古银杏。\n秋天最美。",
              "opening_hours": "全天开放", "directions": "从村口服务亭步行 5 分钟"},
        files=[("photos", ("a.jpg", io.BytesIO(upload), "image/jpeg"))],
    )  # fmt: skip
    assert created.status_code == 201, created.text
    attraction = created.json()
    tourist = TestClient(web_app.asgi)
    photo = tourist.get(attraction["photos"][0])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content != upload and GPS_LATITUDE not in photo.content
    assert 0xE1 not in header_markers(photo.content)
    page = tourist.get(f"/attractions/{attraction['id']}")
    assert "千年银杏" in page.text and "全天开放" in page.text
    host = web_app.session_client("host")
    assert host.post("/api/attractions", data={"name": "x"}).status_code == 403
    not_image = staff.post(
        f"/api/attractions/{attraction['id']}",
        data={"name": "千年银杏"},
        files=[("photos", ("b.jpg", io.BytesIO(b"plain text"), "image/jpeg"))],
    )
    assert not_image.json()["error"]["code"] == "tourism.photo.not_image"
    second = staff.post(
        f"/api/attractions/{attraction['id']}",
        data={"name": "千年银杏", "remove_photo": attraction["photos"][0].split("/")[-1][:-4]},
        files=[("photos", ("c.jpg", io.BytesIO(jpeg_with_gps()), "image/jpeg"))],
    ).json()
    assert len(second["photos"]) == 1 and second["photos"] != attraction["photos"]
    assert tourist.get(attraction["photos"][0]).status_code == 404
    attraction = second
    deleted = staff.post(f"/api/attractions/{attraction['id']}/delete")
    assert deleted.status_code == 200
    assert tourist.get(attraction["photos"][0]).status_code == 404
