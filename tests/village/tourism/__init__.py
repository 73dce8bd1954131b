"""Tests of the tourism service; ACCESS is its part of the route access policy."""

from tests.village import ADMIN, ANONYMOUS, FAMILY, HOST, POLICE, STAFF, Access

EVERYONE = {ANONYMOUS, HOST, POLICE, ADMIN, FAMILY, STAFF}
EDITORS = {STAFF, ADMIN}

ACCESS: Access = {
    ("GET", "/attractions"): EVERYONE,
    ("GET", "/attractions/{attraction_id}"): EVERYONE,
    ("GET", "/attractions/photos/{photo_id}.jpg"): EVERYONE,
    ("GET", "/staff/attractions"): EDITORS,
    ("POST", "/staff/attractions"): EDITORS,
    ("GET", "/staff/attractions/{attraction_id}"): EDITORS,
    ("POST", "/staff/attractions/{attraction_id}"): EDITORS,
    ("POST", "/staff/attractions/{attraction_id}/delete"): EDITORS,
    ("GET", "/stays"): EVERYONE,
    ("GET", "/stays/{homestay_id}"): EVERYONE,
    ("POST", "/stays/{homestay_id}/book"): EVERYONE,
    ("GET", "/stays/requests/{reference}"): EVERYONE,
    ("GET", "/host/bookings"): {HOST},
    ("POST", "/host/bookings/{booking_id}/confirm"): {HOST},
    ("POST", "/host/bookings/{booking_id}/decline"): {HOST},
    ("GET", "/host/homestays/{homestay_id}/rooms"): {HOST},
    ("POST", "/host/homestays/{homestay_id}/rooms"): {HOST},
    ("POST", "/host/rooms/{room_id}/delete"): {HOST},
    ("GET", "/api/attractions"): EVERYONE,
    ("GET", "/api/attractions/{attraction_id}"): EVERYONE,
    ("POST", "/api/attractions"): EDITORS,
    ("POST", "/api/attractions/{attraction_id}"): EDITORS,
    ("POST", "/api/attractions/{attraction_id}/delete"): EDITORS,
    ("GET", "/api/stays"): EVERYONE,
    ("GET", "/api/stays/{homestay_id}"): EVERYONE,
    ("POST", "/api/stays/{homestay_id}/bookings"): EVERYONE,
    ("GET", "/api/stays/requests/{reference}"): EVERYONE,
    ("GET", "/api/host/bookings"): {HOST},
    ("POST", "/api/host/bookings/{booking_id}/confirm"): {HOST},
    ("POST", "/api/host/bookings/{booking_id}/decline"): {HOST},
    ("GET", "/api/host/homestays/{homestay_id}/rooms"): {HOST},
    ("POST", "/api/host/homestays/{homestay_id}/rooms"): {HOST},
    ("POST", "/api/host/rooms/{room_id}/delete"): {HOST},
}
