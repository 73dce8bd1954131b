"""Police pages of the core: the audit log, in the reader's words, by actor, action and days."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from agent.accounts import Role
from agent.audit import AuditEntry
from agent.store.database import Database
from web_ui.i18n import Translator
from web_ui.rendering import render, translator
from web_ui.security import Principal, require_roles, web_context

router = APIRouter(include_in_schema=False)

AUDIT_PAGE_SIZE = 50
_MAX_TEXT = 100


def _day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _utc_start(day: dt.date) -> str:
    """The first moment of a local day, in the audit log's stored form (ISO 8601 UTC)."""
    start = dt.datetime.combine(day, dt.time()).astimezone()
    return start.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def audit_entries(
    database: Database,
    *,
    limit: int,
    offset: int,
    actor: str | None,
    action: str | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
) -> list[AuditEntry]:
    """Newest first, filtered by actor, action and a range of local days (both included).

    Read here rather than through AuditLog.entries, which has no date filter yet."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("actor", actor), ("action", action)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if date_from is not None:
        clauses.append("at >= ?")
        params.append(_utc_start(date_from))
    if date_to is not None:
        clauses.append("at < ?")
        params.append(_utc_start(date_to + dt.timedelta(days=1)))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with database.read() as db:
        rows = db.execute(
            "SELECT id, at, actor, action, subject, detail FROM audit_log "  # noqa: S608
            f"{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
    return [AuditEntry(*row) for row in rows]


def _catalog_key(t: Translator, request: Request, kind: str, name: str) -> str | None:
    """The catalog key for an action or detail word: the core's ``audit.<kind>.<name>`` or a
    service's ``<service>.audit.<kind>.<name>``."""
    keys = [f"audit.{kind}.{name}"] + [
        f"{web.name}.audit.{kind}.{name}" for web in getattr(request.app.state, "service_webs", [])
    ]
    return next((key for key in keys if t.has(key)), None)


def action_text(t: Translator, request: Request, action: str) -> str:
    key = _catalog_key(t, request, "action", action)
    return t(key) if key else action


def detail_text(t: Translator, request: Request, detail: str) -> str:
    """``rows=3 filters=name,date_from ids=4-6`` as words in the reader's language; a detail
    that is not such key=value pairs is shown as it is."""
    words = []
    for part in detail.split():
        key, sep, value = part.partition("=")
        label = _catalog_key(t, request, "detail", key) if sep else None
        if label is None:
            words.append(part)
            continue
        if key == "filters":
            value = "、".join(
                t(found) if (found := _catalog_key(t, request, "filter", name)) else name
                for name in value.split(",")
            )
        words.append(t(label, value=value))
    return "; ".join(words) if t.language == "en" else "；".join(words)


@router.get("/police/audit")
def audit_log(
    request: Request,
    principal: Annotated[Principal, require_roles(Role.POLICE, Role.ADMIN)],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    actor: str = "",
    action: str = "",
    date_from: str = "",
    date_to: str = "",
) -> Response:
    t = translator(request)
    actor, action = actor.strip()[:_MAX_TEXT], action.strip()[:_MAX_TEXT]
    first, last = _day(date_from.strip()), _day(date_to.strip())
    error = None
    if (date_from.strip() and first is None) or (date_to.strip() and last is None):
        error = t("error.date.format")
    elif first is not None and last is not None and first > last:
        error = t("error.date.range_reversed")
    entries = (
        []
        if error
        else audit_entries(
            web_context(request).database,
            limit=AUDIT_PAGE_SIZE + 1,
            offset=(page - 1) * AUDIT_PAGE_SIZE,
            actor=actor or None,
            action=action or None,
            date_from=first,
            date_to=last,
        )
    )
    rows = [
        (entry, action_text(t, request, entry.action), detail_text(t, request, entry.detail))
        for entry in entries[:AUDIT_PAGE_SIZE]
    ]
    return render(
        request,
        "police_audit.html",
        principal,
        status_code=200 if error is None else 400,
        rows=rows,
        page=page,
        has_next=len(entries) > AUDIT_PAGE_SIZE,
        actor=actor,
        action=action,
        date_from=date_from.strip()[:10],
        date_to=date_to.strip()[:10],
        query=urlencode(
            {"actor": actor, "action": action, "date_from": date_from, "date_to": date_to}
        ),
        error_text=error,
    )
