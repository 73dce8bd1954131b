"""Tests of the products service; ACCESS is its part of the route access policy."""

from tests.village import ADMIN, ANONYMOUS, FAMILY, HOST, POLICE, STAFF, Access

EVERYONE = {ANONYMOUS, HOST, POLICE, ADMIN, FAMILY, STAFF}

ACCESS: Access = {
    ("GET", "/products"): EVERYONE,
    ("GET", "/products/{product_id}"): EVERYONE,
    ("GET", "/products/photos/{photo_id}.jpg"): EVERYONE,
    ("GET", "/staff/products"): {STAFF},
    ("POST", "/staff/products"): {STAFF},
    ("POST", "/staff/products/{product_id}/withdraw"): {STAFF},
    ("GET", "/api/products"): EVERYONE,
    ("GET", "/api/products/{product_id}"): EVERYONE,
    ("POST", "/api/products"): {STAFF},
    ("POST", "/api/products/{product_id}/withdraw"): {STAFF},
}
