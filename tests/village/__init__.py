"""Tests per village service, one folder each (tests/village/<name>/).

A service's ``__init__`` holds ``ACCESS``: every route of the service with the roles that may
use it, written out by hand; tests/unit/test_web_access.py checks the app against the union of
the core table and these.
"""

from __future__ import annotations

import importlib

from agent.village.services import SERVICES

Access = dict[tuple[str, str], set[str]]

ANONYMOUS, HOST, POLICE, ADMIN, FAMILY, STAFF = (
    "anonymous",
    "host",
    "police",
    "admin",
    "family",
    "staff",
)
ACCESS_ROLES = {ANONYMOUS, HOST, POLICE, ADMIN, FAMILY, STAFF}


def service_access() -> Access:
    """Every service's ACCESS table; a service without one fails the access test."""
    table: Access = {}
    for spec in SERVICES:
        module = importlib.import_module(f"{__name__}.{spec.name}")
        table.update(module.ACCESS)
    return table
