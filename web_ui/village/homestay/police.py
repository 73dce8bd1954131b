"""Police pages of the homestay service: guest registrations (masked lists, full detail
audited) and the CSV export.

A search by name or ID number is a POST: the server keeps it (web_ui.searches) and redirects to
``/police/registrations?search=<id>``, so the name or number never travels in a URL. It is
audited and limited per officer and hour (``web.searches_per_hour``). Filters that identify
nobody (dates, homestay, staying now) stay plain GET parameters. The full record and the CSV
export are audited reads, refused when another website asks for them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.accounts import Role
from agent.errors import ValidationError
from agent.village.homestay import GuestQuery, HomestayService, SearchLimitError, countries
from agent.village.homestay.export import COLUMNS, CsvLabels
from web_ui.errors import validation_text
from web_ui.i18n import Translator
from web_ui.params import RecordId, form_text
from web_ui.rendering import render, translator
from web_ui.security import Principal, require_roles, web_context
from web_ui.village.homestay import pages
from web_ui.village.homestay.searches import search_store

# The pages' router: the app mounts one router of pages per service.
router = pages.router

_MAX_TEXT = 100
# ASCII only: str.isdigit() also accepts "²" or "١٢", which int() refuses or reads as another
# number.
_RECORD_NUMBER = re.compile(r"[0-9]{1,15}", re.ASCII)
# What identifies a person: never accepted in a URL.
IDENTIFYING = ("name", "id_number")


@dataclass(frozen=True)
class GuestFilters:
    """Filters that identify nobody, as HomestayService.query keywords."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    homestay_id: int | None = None
    active_only: bool = False

    def keywords(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if value not in (None, False)}

    def query_string(self) -> str:
        """The filters as GET parameters, for the results page and its export link."""
        params = {
            key: "1" if value is True else str(value) for key, value in self.keywords().items()
        }
        return urlencode(params)

    @classmethod
    def of(cls, query: GuestQuery) -> GuestFilters:
        return cls(query.date_from, query.date_to, query.homestay_id, query.active_only)


def _date(field: str, text: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(field, "date.format") from exc


def parse_filters(params: Any) -> GuestFilters:
    """Raises ValidationError naming the bad filter (a date or the homestay number)."""
    homestay = form_text(params, "homestay_id", _MAX_TEXT)
    if homestay and not _RECORD_NUMBER.fullmatch(homestay):
        raise ValidationError("homestay_id", "homestay_id.format")
    return GuestFilters(
        date_from=_date("date_from", form_text(params, "date_from", _MAX_TEXT)),
        date_to=_date("date_to", form_text(params, "date_to", _MAX_TEXT)),
        homestay_id=int(homestay) if homestay else None,
        active_only=form_text(params, "active_only", _MAX_TEXT) in {"1", "true", "on"},
    )


def _refuse_identifying_url(params: Any) -> None:
    for name in IDENTIFYING:
        if params.get(name):
            raise ValidationError(name, "search.in_url")


def _search_query(request: Request, principal: Principal) -> tuple[GuestQuery, str | None]:
    """The query a page or export asks for: a kept search (``?search=``) or plain filters.

    Returns the query and the kept search's id (None for plain filters); raises
    ValidationError for a bad filter, a name or number in the URL, or an expired search.
    """
    params = request.query_params
    _refuse_identifying_url(params)
    search_id = form_text(params, "search", _MAX_TEXT)
    if search_id:
        query = search_store(request).get(principal.actor, search_id)
        if query is None:
            raise ValidationError("search", "search.expired")
        return query, search_id
    filters = parse_filters(params)
    return web_context(request).service(HomestayService).query(**filters.keywords()), None


def _render_list(
    request: Request,
    principal: Principal,
    *,
    query: GuestQuery | None,
    search_id: str | None = None,
    error_text: str | None = None,
    status_code: int = 200,
) -> Response:
    context = web_context(request)
    guests = context.service(HomestayService).find(query) if query is not None else []
    filters = GuestFilters.of(query) if query is not None else GuestFilters()
    export_query = urlencode({"search": search_id}) if search_id else filters.query_string()
    return render(
        request,
        "homestay/police_registrations.html",
        principal,
        status_code=status_code,
        guests=guests,
        homestays=context.service(HomestayService).list_homestays(),
        filters=filters,
        searching=search_id is not None,
        export_query=export_query,
        error_text=error_text,
        searches_per_hour=context.config.web.searches_per_hour,
    )


@router.get("/police/registrations")
def registrations(
    request: Request, principal: Annotated[Principal, require_roles(Role.POLICE)]
) -> Response:
    try:
        query, search_id = _search_query(request, principal)
    except ValidationError as exc:
        status = 400 if exc.message == "search.in_url" else 200
        return _render_list(
            request,
            principal,
            query=None,
            error_text=validation_text(translator(request), exc),
            status_code=status,
        )
    return _render_list(request, principal, query=query, search_id=search_id)


@router.post("/police/registrations/search")
async def registrations_search(
    request: Request, principal: Annotated[Principal, require_roles(Role.POLICE)]
) -> Response:
    """The search form. Without a name or number it is a plain list and redirects to the GET
    page with the filters; with one it is audited, kept and redirected to by its id."""
    context = web_context(request)
    form = await request.form()
    name, id_number = form_text(form, "name", _MAX_TEXT), form_text(form, "id_number", _MAX_TEXT)
    try:
        filters = parse_filters(form)
        query = context.service(HomestayService).query(
            name=name, id_number=id_number, **filters.keywords()
        )
    except ValidationError as exc:
        error = validation_text(translator(request), exc)
        return await run_in_threadpool(
            lambda: _render_list(request, principal, query=None, error_text=error, status_code=400)
        )
    if not query.identifying:
        target = filters.query_string()
        return RedirectResponse(
            "/police/registrations" + (f"?{target}" if target else ""), status_code=303
        )
    try:
        await run_in_threadpool(
            context.service(HomestayService).record_search,
            query,
            actor=principal.actor,
            per_hour=context.config.web.searches_per_hour,
        )
    except SearchLimitError as exc:
        message = translator(request)("error.search.limit", limit=exc.limit)
        response = await run_in_threadpool(
            lambda: _render_list(
                request, principal, query=None, error_text=message, status_code=429
            )
        )
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    search_id = search_store(request).put(principal.actor, query)
    return RedirectResponse(
        f"/police/registrations?{urlencode({'search': search_id})}", status_code=303
    )


def csv_labels(t: Translator) -> CsvLabels:
    """The export's headers and values in the reader's language."""
    return CsvLabels(
        headers={column: t(f"homestay.csv.{column}") for column in COLUMNS},
        value=lambda code: t(f"homestay.csv.{code}") if t.has(f"homestay.csv.{code}") else t(code),
        country=lambda code: f"{countries.name_of(code, t.language)} ({code})",
    )


@router.get("/police/registrations.csv")
def registrations_csv(
    request: Request,
    principal: Annotated[Principal, require_roles(Role.POLICE, same_origin=True)],
) -> Response:
    """The full CSV of the list or of a kept search (counted when it was made), ready for a
    spreadsheet in the page's language."""
    query, _ = _search_query(request, principal)
    body = (
        web_context(request)
        .service(HomestayService)
        .export_csv(actor=principal.actor, query=query, labels=csv_labels(translator(request)))
    )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="registrations-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/police/registrations/{guest_id}")
def registration_detail(
    request: Request,
    guest_id: RecordId,
    principal: Annotated[Principal, require_roles(Role.POLICE, same_origin=True)],
) -> Response:
    guest = (
        web_context(request)
        .service(HomestayService)
        .get_guest(guest_id, actor=principal.actor, unmasked=True)
    )
    return render(request, "homestay/police_registration.html", principal, guest=guest)
