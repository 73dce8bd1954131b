"""Shared request parameter types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Bounded so an absurd number is a 422, not an overflow inside SQLite (a 500).
MAX_RECORD_ID = 2**53
RecordId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
