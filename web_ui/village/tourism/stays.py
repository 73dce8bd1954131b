"""Homestays for tourists (预订民宿): rooms and a calendar, booking requests followed by their
reference; the host's rooms and booking list (confirm, decline, 办理入住)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from agent.accounts import Role
from agent.errors import ValidationError
from agent.village.tourism import Booking, BookingInput, Room, RoomCalendar, RoomInput, Stay
from web_ui.params import RecordId
from web_ui.rendering import render, translator
from web_ui.security import Principal, public, require_roles
from web_ui.village.tourism.common import (
    api,
    error_context,
    json_fields,
    pages,
    service,
    text_fields,
)

Reference = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{10,40}$")]
_BOOKING_FIELDS = ("room_id", "check_in", "check_out", "guests", "name", "phone")
_ROOM_FIELDS = ("room_name", "price", "count", "max_guests")
_HOST_NOTICES = frozenset({"confirmed", "declined"})
_ROOM_NOTICES = frozenset({"added", "removed"})


def room_json(room: Room) -> dict[str, Any]:
    return {
        "id": room.id,
        "name": room.name,
        "price": room.price,
        "count": room.count,
        "max_guests": room.max_guests,
    }


def stay_json(stay: Stay, calendar: list[RoomCalendar] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "homestay_id": stay.homestay_id,
        "name": stay.name,
        "address": stay.address,
        "rooms": [room_json(room) for room in stay.rooms],
    }
    if calendar is not None:
        answer["calendar"] = {
            str(entry.room.id): {night.day.isoformat(): night.free for night in entry.nights}
            for entry in calendar
        }
    return answer


def booking_json(booking: Booking, *, reference: bool = False) -> dict[str, Any]:
    answer = {
        "id": booking.id,
        "homestay_id": booking.homestay_id,
        "homestay": booking.homestay_name,
        "room_id": booking.room_id,
        "room": booking.room_name,
        "check_in": booking.check_in.isoformat(),
        "check_out": booking.check_out.isoformat(),
        "guests": booking.guests,
        "name": booking.name,
        "phone": booking.phone,
        "status": booking.status,
    }
    if reference:
        answer["reference"] = booking.reference
    return answer


# -- tourists ----------------------------------------------------------------------------------


@pages.get("/stays")
def stays(request: Request, principal: Annotated[Principal, public()]) -> Response:
    return render(request, "tourism/stays.html", principal, stays=service(request).stays())


def _render_stay(
    request: Request,
    principal: Principal,
    homestay_id: int,
    *,
    values: dict[str, str] | None = None,
    error: ValidationError | None = None,
) -> Response:
    tourism = service(request)
    stay = tourism.stay(homestay_id)
    today = tourism.today()
    return render(
        request,
        "tourism/stay.html",
        principal,
        status_code=422 if error else 200,
        stay=stay,
        calendar=tourism.calendar(homestay_id),
        today=today.isoformat(),
        values=values or {"guests": "2"},
        **error_context(request, error),
    )


@pages.get("/stays/{homestay_id}")
def stay(
    request: Request, homestay_id: RecordId, principal: Annotated[Principal, public()]
) -> Response:
    return _render_stay(request, principal, homestay_id)


@pages.post("/stays/{homestay_id}/book")
async def book(
    request: Request, homestay_id: RecordId, principal: Annotated[Principal, public()]
) -> Response:
    tourism = service(request)
    values = text_fields(await request.form(), _BOOKING_FIELDS)
    try:
        data = BookingInput.from_fields(values, today=tourism.today())
        booking = await run_in_threadpool(tourism.request_booking, homestay_id, data)
    except ValidationError as exc:
        return await run_in_threadpool(
            partial(_render_stay, request, principal, homestay_id, values=values, error=exc)
        )
    return RedirectResponse(f"/stays/requests/{booking.reference}", status_code=303)


@pages.get("/stays/requests/{reference}")
def booking_status(
    request: Request, reference: Reference, principal: Annotated[Principal, public()]
) -> Response:
    booking = service(request).booking_by_reference(reference)
    return render(request, "tourism/request.html", principal, booking=booking)


# -- the host ----------------------------------------------------------------------------------


@pages.get("/host/bookings")
def host_bookings(
    request: Request, principal: Annotated[Principal, require_roles(Role.HOST)]
) -> Response:
    done = request.query_params.get("done", "")
    homestays, bookings = service(request).host_overview(host_username=principal.actor)
    return render(
        request,
        "tourism/host_bookings.html",
        principal,
        homestays=homestays,
        bookings=bookings,
        notice=translator(request)(f"tourism.notice.{done}") if done in _HOST_NOTICES else None,
    )


@pages.post("/host/bookings/{booking_id}/confirm")
def host_confirm(
    request: Request,
    booking_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    service(request).confirm_booking(booking_id, host_username=principal.actor)
    return RedirectResponse("/host/bookings?done=confirmed", status_code=303)


@pages.post("/host/bookings/{booking_id}/decline")
def host_decline(
    request: Request,
    booking_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    service(request).decline_booking(booking_id, host_username=principal.actor)
    return RedirectResponse("/host/bookings?done=declined", status_code=303)


def _render_rooms(
    request: Request,
    principal: Principal,
    homestay_id: int,
    *,
    values: dict[str, str] | None = None,
    error: ValidationError | None = None,
) -> Response:
    homestay, rooms = service(request).host_rooms(homestay_id, host_username=principal.actor)
    done = request.query_params.get("done", "")
    return render(
        request,
        "tourism/host_rooms.html",
        principal,
        status_code=422 if error else 200,
        homestay=homestay,
        rooms=rooms,
        values=values or {"max_guests": "2", "count": "1"},
        notice=translator(request)(f"tourism.notice.room_{done}")
        if done in _ROOM_NOTICES
        else None,
        **error_context(request, error),
    )


@pages.get("/host/homestays/{homestay_id}/rooms")
def host_rooms(
    request: Request,
    homestay_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    return _render_rooms(request, principal, homestay_id)


@pages.post("/host/homestays/{homestay_id}/rooms")
async def host_add_room(
    request: Request,
    homestay_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    values = text_fields(await request.form(), _ROOM_FIELDS)
    try:
        data = RoomInput.from_fields(values)
        await run_in_threadpool(
            partial(service(request).add_room, homestay_id, data, host_username=principal.actor)
        )
    except ValidationError as exc:
        return await run_in_threadpool(
            partial(_render_rooms, request, principal, homestay_id, values=values, error=exc)
        )
    return RedirectResponse(f"/host/homestays/{homestay_id}/rooms?done=added", status_code=303)


@pages.post("/host/rooms/{room_id}/delete")
def host_remove_room(
    request: Request,
    room_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> Response:
    tourism = service(request)
    homestay_id = tourism.host_room(room_id, host_username=principal.actor).homestay_id
    tourism.remove_room(room_id, host_username=principal.actor)
    return RedirectResponse(f"/host/homestays/{homestay_id}/rooms?done=removed", status_code=303)


# -- JSON twins --------------------------------------------------------------------------------


@api.get("/stays")
def api_stays(request: Request, _: Annotated[Principal, public()]) -> dict[str, Any]:
    return {"stays": [stay_json(stay) for stay in service(request).stays()]}


@api.get("/stays/{homestay_id}")
def api_stay(
    request: Request, homestay_id: RecordId, _: Annotated[Principal, public()]
) -> dict[str, Any]:
    tourism = service(request)
    return stay_json(tourism.stay(homestay_id), tourism.calendar(homestay_id))


@api.post("/stays/{homestay_id}/bookings", status_code=201)
async def api_book(
    request: Request, homestay_id: RecordId, _: Annotated[Principal, public()]
) -> JSONResponse:
    tourism = service(request)
    fields = await json_fields(request, _BOOKING_FIELDS)
    data = BookingInput.from_fields(fields, today=tourism.today())
    booking = await run_in_threadpool(tourism.request_booking, homestay_id, data)
    return JSONResponse(booking_json(booking, reference=True), status_code=201)


@api.get("/stays/requests/{reference}")
def api_booking_status(
    request: Request, reference: Reference, _: Annotated[Principal, public()]
) -> dict[str, Any]:
    return booking_json(service(request).booking_by_reference(reference))


@api.get("/host/bookings")
def api_host_bookings(
    request: Request, principal: Annotated[Principal, require_roles(Role.HOST)]
) -> dict[str, Any]:
    bookings = service(request).host_bookings(host_username=principal.actor)
    return {"bookings": [booking_json(booking) for booking in bookings]}


@api.post("/host/bookings/{booking_id}/confirm")
def api_confirm(
    request: Request,
    booking_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> dict[str, Any]:
    return booking_json(service(request).confirm_booking(booking_id, host_username=principal.actor))


@api.post("/host/bookings/{booking_id}/decline")
def api_decline(
    request: Request,
    booking_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> dict[str, Any]:
    return booking_json(service(request).decline_booking(booking_id, host_username=principal.actor))


@api.get("/host/homestays/{homestay_id}/rooms")
def api_host_rooms(
    request: Request,
    homestay_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> dict[str, Any]:
    _, rooms = service(request).host_rooms(homestay_id, host_username=principal.actor)
    return {"rooms": [room_json(room) for room in rooms]}


@api.post("/host/homestays/{homestay_id}/rooms", status_code=201)
async def api_add_room(
    request: Request,
    homestay_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> JSONResponse:
    fields = await json_fields(request, _ROOM_FIELDS)
    room = await run_in_threadpool(
        partial(service(request).add_room, homestay_id, RoomInput.from_fields(fields),
                host_username=principal.actor)
    )  # fmt: skip
    return JSONResponse(room_json(room), status_code=201)


@api.post("/host/rooms/{room_id}/delete")
def api_remove_room(
    request: Request,
    room_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.HOST)],
) -> dict[str, Any]:
    service(request).remove_room(room_id, host_username=principal.actor)
    return {"deleted": room_id}
