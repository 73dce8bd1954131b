"""Tests of the homestay service; ACCESS is its part of the route access policy."""

from tests.village import ADMIN, HOST, POLICE, Access

ACCESS: Access = {
    ("GET", "/host/homestays"): {HOST},
    ("GET", "/host/homestays/{homestay_id}/register"): {HOST},
    ("POST", "/host/homestays/{homestay_id}/register"): {HOST},
    ("GET", "/host/guests/{guest_id}/checkout"): {HOST},
    ("POST", "/host/guests/{guest_id}/checkout"): {HOST},
    ("GET", "/host/guests/{guest_id}/delete"): {HOST},
    ("POST", "/host/guests/{guest_id}/delete"): {HOST},
    ("GET", "/admin/homestays"): {ADMIN},
    ("POST", "/admin/homestays"): {ADMIN},
    ("GET", "/police/registrations"): {POLICE},
    ("POST", "/police/registrations/search"): {POLICE},
    ("GET", "/police/registrations.csv"): {POLICE},
    ("GET", "/police/registrations/{guest_id}"): {POLICE},
    ("GET", "/api/homestays"): {HOST, ADMIN, POLICE},
    ("POST", "/api/homestays"): {ADMIN},
    ("POST", "/api/homestays/{homestay_id}/guests"): {HOST},
    ("POST", "/api/guests/{guest_id}/checkout"): {HOST},
    ("POST", "/api/guests/{guest_id}/delete"): {HOST},
    ("POST", "/api/homestays/{homestay_id}/draft"): {HOST},
    ("GET", "/api/guests"): {POLICE, HOST},
    ("GET", "/api/guests.csv"): {POLICE},
    ("POST", "/api/guests/search"): {POLICE, HOST},
    ("POST", "/api/guests.csv"): {POLICE},
    ("GET", "/api/guests/{guest_id}"): {POLICE},
}
