"""Tests of the patrol service; ACCESS is its part of the route access policy."""

from tests.village import ADMIN, POLICE, Access

ACCESS: Access = {
    ("GET", "/admin/patrol/routes"): {ADMIN},
    ("POST", "/admin/patrol/routes"): {ADMIN},
    ("GET", "/admin/patrol/routes/{route_id}"): {ADMIN},
    ("POST", "/admin/patrol/routes/{route_id}"): {ADMIN},
    ("POST", "/admin/patrol/routes/{route_id}/retire"): {ADMIN},
    ("GET", "/police/patrol/rounds"): {POLICE, ADMIN},
    ("POST", "/police/patrol/rounds"): {POLICE},
    ("GET", "/police/patrol/rounds/{round_id}"): {POLICE, ADMIN},
    ("POST", "/police/patrol/rounds/{round_id}/points/{position}"): {POLICE},
    ("POST", "/police/patrol/rounds/{round_id}/end"): {POLICE},
    ("GET", "/police/patrol/snapshots/{snapshot_id}.jpg"): {POLICE, ADMIN},
    ("GET", "/police/patrol/report"): {POLICE, ADMIN},
    ("GET", "/api/patrol/routes"): {POLICE, ADMIN},
    ("POST", "/api/patrol/routes"): {ADMIN},
    ("POST", "/api/patrol/routes/{route_id}"): {ADMIN},
    ("POST", "/api/patrol/routes/{route_id}/retire"): {ADMIN},
    ("GET", "/api/patrol/rounds"): {POLICE, ADMIN},
    ("POST", "/api/patrol/rounds"): {POLICE},
    ("GET", "/api/patrol/rounds/{round_id}"): {POLICE, ADMIN},
    ("POST", "/api/patrol/rounds/{round_id}/points/{position}/complete"): {POLICE},
    ("POST", "/api/patrol/rounds/{round_id}/points/{position}/snapshot"): {POLICE},
    ("POST", "/api/patrol/rounds/{round_id}/end"): {POLICE},
    ("GET", "/api/patrol/report"): {POLICE, ADMIN},
}
