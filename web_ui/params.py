"""Shared request parameter types, and reading a value from a form or query."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Path

# Bounded so an absurd number is a 422, not an overflow inside SQLite (a 500).
MAX_RECORD_ID = 2**53
RecordId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]


def form_text(values: Mapping[str, Any], name: str, limit: int, *, strip: bool = True) -> str:
    """A text field of a form or query, cut at ``limit`` characters ('' when absent or a file).
    ``strip=False`` keeps what was typed as typed, for a form shown again after a refusal."""
    value = values.get(name)
    if not isinstance(value, str):
        return ""
    return (value.strip() if strip else value)[:limit]
