"""Tests of the notices service; ACCESS is its part of the route access policy."""

from tests.village import ACCESS_ROLES, ADMIN, POLICE, STAFF, Access

ACCESS: Access = {
    ("GET", "/notices"): ACCESS_ROLES,
    ("GET", "/notices/manage"): {POLICE, ADMIN, STAFF},
    ("POST", "/notices/manage"): {POLICE, ADMIN, STAFF},
    ("GET", "/notices/{notice_id}/photo.jpg"): ACCESS_ROLES,
    ("GET", "/api/notices"): ACCESS_ROLES,
    ("POST", "/api/notices"): {POLICE, ADMIN, STAFF},
    # The kiosk screen's own routes: public, but 404 to any client but the kiosk (loopback).
    ("GET", "/api/kiosk/notices"): ACCESS_ROLES,
    ("POST", "/api/kiosk/notices/{notice_id}/ack"): ACCESS_ROLES,
}
