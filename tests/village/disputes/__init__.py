"""Tests of the dispute mediation service; ACCESS is its part of the route access policy.

The kiosk routes are public but answer 404 anywhere but the kiosk's own screen."""

from tests.village import ACCESS_ROLES, ADMIN, POLICE, STAFF, Access

EVERYONE = set(ACCESS_ROLES)

ACCESS: Access = {
    ("GET", "/kiosk/disputes"): EVERYONE,
    ("POST", "/kiosk/disputes"): EVERYONE,
    ("GET", "/disputes"): {STAFF, ADMIN, POLICE},
    ("GET", "/disputes/stats"): {STAFF, ADMIN, POLICE},
    ("GET", "/disputes/{dispute_id}"): {STAFF, ADMIN, POLICE},
    ("POST", "/disputes/{dispute_id}/state"): {STAFF, ADMIN},
    ("POST", "/api/kiosk/disputes"): EVERYONE,
    ("GET", "/api/disputes"): {STAFF, ADMIN, POLICE},
    ("GET", "/api/disputes/stats"): {STAFF, ADMIN, POLICE},
    ("GET", "/api/disputes/{dispute_id}"): {STAFF, ADMIN, POLICE},
    ("POST", "/api/disputes/{dispute_id}/state"): {STAFF, ADMIN},
}
