"""Police pages of the core: the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from agent.accounts import Role
from web_ui.rendering import render
from web_ui.security import Principal, require_roles, web_context

router = APIRouter(include_in_schema=False)

AUDIT_PAGE_SIZE = 50
_MAX_TEXT = 100


@router.get("/police/audit")
def audit_log(
    request: Request,
    principal: Annotated[Principal, require_roles(Role.POLICE, Role.ADMIN)],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    actor: str = "",
    action: str = "",
) -> Response:
    actor, action = actor.strip()[:_MAX_TEXT], action.strip()[:_MAX_TEXT]
    entries = web_context(request).audit.entries(
        limit=AUDIT_PAGE_SIZE + 1,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
        actor=actor or None,
        action=action or None,
    )
    return render(
        request,
        "police_audit.html",
        principal,
        entries=entries[:AUDIT_PAGE_SIZE],
        page=page,
        has_next=len(entries) > AUDIT_PAGE_SIZE,
        actor=actor,
        action=action,
    )
