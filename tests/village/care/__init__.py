"""Tests of the care service; ACCESS is its part of the route access policy.

The kiosk check-in is public but answers 404 to any client but the kiosk's own screen."""

from tests.village import ACCESS_ROLES, ADMIN, FAMILY, STAFF, Access

ACCESS: Access = {
    ("GET", "/kiosk/care"): ACCESS_ROLES,
    ("GET", "/kiosk/care/{person_id}"): ACCESS_ROLES,
    ("POST", "/kiosk/care/{person_id}/checkin"): ACCESS_ROLES,
    ("GET", "/care"): {STAFF, ADMIN},
    ("GET", "/care/people/new"): {STAFF, ADMIN},
    ("POST", "/care/people"): {STAFF, ADMIN},
    ("GET", "/care/people/{person_id}"): {STAFF, ADMIN},
    ("POST", "/care/people/{person_id}/visit"): {STAFF, ADMIN},
    ("POST", "/care/people/{person_id}/pin"): {STAFF, ADMIN},
    ("POST", "/care/people/{person_id}/remove"): {STAFF, ADMIN},
    ("GET", "/family/care"): {FAMILY},
    ("GET", "/family/care/{person_id}"): {FAMILY},
    ("GET", "/api/kiosk/care"): ACCESS_ROLES,
    ("POST", "/api/kiosk/care/{person_id}/checkin"): ACCESS_ROLES,
    ("GET", "/api/care/today"): {STAFF, ADMIN},
    ("POST", "/api/care/people"): {STAFF, ADMIN},
    ("GET", "/api/care/people/{person_id}"): {STAFF, ADMIN},
    ("POST", "/api/care/people/{person_id}/visits"): {STAFF, ADMIN},
    ("GET", "/api/care/mine"): {FAMILY},
    ("GET", "/api/care/mine/{person_id}"): {FAMILY},
}
