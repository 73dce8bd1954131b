"""Tests of the feedback service; ACCESS is its part of the route access policy.

The villagers' routes are public but answer 404 anywhere but the kiosk's own screen or a phone
signed in with a family account."""

from tests.village import ACCESS_ROLES, ADMIN, STAFF, Access

EVERYONE = set(ACCESS_ROLES)

ACCESS: Access = {
    ("GET", "/feedback"): EVERYONE,
    ("POST", "/feedback"): EVERYONE,
    ("GET", "/feedback/reply"): EVERYONE,
    ("POST", "/feedback/reply"): EVERYONE,
    ("GET", "/staff/feedback"): {STAFF, ADMIN},
    ("GET", "/staff/feedback/{feedback_id}"): {STAFF, ADMIN},
    ("POST", "/staff/feedback/{feedback_id}/reply"): {STAFF, ADMIN},
    ("POST", "/api/feedback"): EVERYONE,
    ("POST", "/api/feedback/lookup"): EVERYONE,
    ("GET", "/api/feedback"): {STAFF, ADMIN},
    ("GET", "/api/feedback/{feedback_id}"): {STAFF, ADMIN},
    ("POST", "/api/feedback/{feedback_id}/reply"): {STAFF, ADMIN},
}
