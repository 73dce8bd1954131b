"""Tourism (景点, 预订民宿): attractions staff edit, homestay rooms hosts keep, booking requests
tourists send and hosts decide; a confirmed booking pre-fills the guest registration."""

from agent.village.photos import error_messages as photo_error_messages
from agent.village.service import ServiceSpec
from agent.village.tourism.inputs import AttractionInput, BookingInput, RoomInput
from agent.village.tourism.records import Attraction, Booking, Night, Room, RoomCalendar, Stay
from agent.village.tourism.service import (
    AREA,
    CONFIRMED,
    DECLINED,
    EXPIRED,
    MAX_ATTRACTION_PHOTOS,
    PENDING,
    TourismService,
    TourismSettings,
    build,
)

ERROR_MESSAGES: dict[str, str] = {
    **photo_error_messages(AREA),
    "tourism.photo.too_many": f"An attraction has at most {MAX_ATTRACTION_PHOTOS} photos.",
    "tourism.name.required": "Enter the name.",
    "tourism.name.too_long": "The name is too long (at most 50 characters).",
    "tourism.name.format": "The name contains characters that are not allowed.",
    "tourism.description.too_long": "The description is too long (at most 2000 characters).",
    "tourism.description.format": "The description contains characters that are not allowed.",
    "tourism.opening_hours.too_long": "The opening hours are too long.",
    "tourism.opening_hours.format": "The opening hours contain characters that are not allowed.",
    "tourism.directions.too_long": "The directions are too long (at most 2000 characters).",
    "tourism.directions.format": "The directions contain characters that are not allowed.",
    "tourism.attraction.too_many": "There are as many attractions as this kiosk keeps.",
    "tourism.attraction.not_found": "This attraction does not exist.",
    "tourism.room_name.required": "Enter the room type (标准间, 家庭房 ...).",
    "tourism.room_name.too_long": "The room type is too long (at most 20 characters).",
    "tourism.room_name.format": "The room type contains characters that are not allowed.",
    "tourism.room_name.taken": "This homestay has a room type of this name already.",
    "tourism.price.required": "Enter the price a night.",
    "tourism.price.invalid": "Enter the price in yuan, like 180 or 180.50.",
    "tourism.price.range": "The price must be more than 0 and at most 100000 yuan.",
    "tourism.count.required": "Enter how many rooms of this type there are.",
    "tourism.count.invalid": "The number of rooms must be a whole number.",
    "tourism.count.range": "The number of rooms must be between 1 and 500.",
    "tourism.count.over_homestay": "The room types would have more rooms than the homestay.",
    "tourism.max_guests.required": "Enter how many guests a room takes.",
    "tourism.max_guests.invalid": "The number of guests must be a whole number.",
    "tourism.max_guests.range": "A room takes between 1 and 20 guests.",
    "tourism.room.too_many": "This homestay has as many room types as it may.",
    "tourism.room.has_bookings": "This room type has bookings still to come.",
    "tourism.room.not_found": "This room type does not exist.",
    "tourism.homestay.not_found": "This homestay does not exist or takes no bookings.",
    "tourism.room_id.required": "Choose a room type.",
    "tourism.room_id.invalid": "Choose one of this homestay's room types.",
    "tourism.check_in.required": "Enter the arrival date.",
    "tourism.check_in.invalid": "The arrival date is not a valid date.",
    "tourism.check_in.past": "The arrival date is in the past.",
    "tourism.check_in.too_far": "Bookings are taken up to a year ahead.",
    "tourism.check_out.required": "Enter the departure date.",
    "tourism.check_out.invalid": "The departure date is not a valid date.",
    "tourism.check_out.before_check_in": "The departure must be after the arrival.",
    "tourism.check_out.too_long": "A booking is for at most 30 nights.",
    "tourism.guests.required": "Enter the number of guests.",
    "tourism.guests.invalid": "The number of guests must be a whole number.",
    "tourism.guests.range": "The number of guests must be between 1 and 20.",
    "tourism.guests.too_many_for_room": "That many guests do not fit in this room type.",
    "tourism.phone.required": "Enter a phone number the host can call.",
    "tourism.phone.format": "Enter a mainland mobile number (11 digits starting with 1) or "
    "+country code and number.",
    "tourism.booking.unavailable": "No room of this type is free for all of these nights.",
    "tourism.booking.too_many_pending": "This homestay has many open requests; please try "
    "again later or call the homestay.",
    "tourism.booking.not_pending": "This request has been decided already.",
    "tourism.booking.not_host": "Only the host of this homestay decides its bookings.",
    "tourism.booking.not_found": "This booking does not exist.",
    "tourism.body.invalid": "The request body must be a JSON object.",
}

SERVICE = ServiceSpec(AREA, build, ERROR_MESSAGES)

__all__ = [
    "CONFIRMED",
    "DECLINED",
    "ERROR_MESSAGES",
    "EXPIRED",
    "MAX_ATTRACTION_PHOTOS",
    "PENDING",
    "SERVICE",
    "Attraction",
    "AttractionInput",
    "Booking",
    "BookingInput",
    "Night",
    "Room",
    "RoomCalendar",
    "RoomInput",
    "Stay",
    "TourismService",
    "TourismSettings",
]
