"""The JSON API beside the pages (mounted under /api), described by /api/openapi.json.

Errors are ``{"error": {"field", "code", "message"}}`` with a 4xx status. A session-cookie
client sends the CSRF token from ``POST /api/session`` as ``X-CSRF-Token`` on every POST.
Each village service mounts its own part of the API beside this one (web_ui/village/<name>/).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from agent.accounts import Role
from web_ui.routes.police import AUDIT_PAGE_SIZE
from web_ui.security import Principal, require_roles, web_context

_ERROR = {"content": {"application/json": {"example": {"error": {
    "field": "id_number", "code": "id_number.check_digit", "message": "…"}}}}}  # fmt: skip
router = APIRouter(
    responses={
        401: {"description": "not signed in", **_ERROR},
        403: {"description": "wrong role or missing CSRF token", **_ERROR},
        422: {"description": "invalid input; field and code name the problem", **_ERROR},
    }
)


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: str
    actor: str
    action: str
    subject: str
    detail: str


@router.get("/audit", tags=["audit"])
def audit_entries(
    request: Request,
    principal: Annotated[Principal, require_roles(Role.POLICE, Role.ADMIN)],
    actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = AUDIT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[AuditEntryOut]:
    """Newest first."""
    entries = web_context(request).audit.entries(
        limit=limit, offset=offset, actor=actor or None, action=action or None
    )
    return [AuditEntryOut.model_validate(e, from_attributes=True) for e in entries]
