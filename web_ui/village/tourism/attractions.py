"""Attractions (景点): tourists browse, staff and admins edit. Upload routes take the photo
routes' own body limit (see web_ui/village/products/routes.py)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from agent.accounts import Role
from agent.errors import ValidationError
from agent.village.photos import CONTENT_TYPE, UPLOAD_BODY_LIMIT
from agent.village.tourism import MAX_ATTRACTION_PHOTOS, Attraction, AttractionInput
from web_ui.params import RecordId
from web_ui.rendering import render, translator
from web_ui.security import Principal, public, require_roles
from web_ui.village.tourism.common import (
    PhotoId,
    api,
    error_context,
    pages,
    service,
    text_fields,
    uploads,
)

EDITORS = (Role.STAFF, Role.ADMIN)
_FIELDS = ("name", "description", "opening_hours", "directions")
_NOTICES = frozenset({"created", "updated", "deleted"})
# One form may carry several photos, but no more bytes than one photo route takes: a 50 MB
# body is refused before it is read here too (more photos go in with a later edit).
_BODY_LIMIT = UPLOAD_BODY_LIMIT


def attraction_json(attraction: Attraction) -> dict[str, Any]:
    return {
        "id": attraction.id,
        "name": attraction.name,
        "description": attraction.description,
        "opening_hours": attraction.opening_hours,
        "directions": attraction.directions,
        "photos": [f"/attractions/photos/{photo}.jpg" for photo in attraction.photo_ids],
    }


@pages.get("/attractions")
def attractions(request: Request, principal: Annotated[Principal, public()]) -> Response:
    return render(
        request, "tourism/attractions.html", principal, attractions=service(request).attractions()
    )


@pages.get("/attractions/{attraction_id}")
def attraction(
    request: Request, attraction_id: RecordId, principal: Annotated[Principal, public()]
) -> Response:
    found = service(request).attraction(attraction_id)
    return render(request, "tourism/attraction.html", principal, attraction=found)


@pages.get("/attractions/photos/{photo_id}.jpg")
def attraction_photo(
    request: Request, photo_id: PhotoId, _: Annotated[Principal, public()]
) -> Response:
    return Response(
        service(request).attraction_photo(photo_id),
        media_type=CONTENT_TYPE,
        headers={"Content-Disposition": "inline"},
    )


def _render_editor(
    request: Request,
    principal: Principal,
    *,
    editing: Attraction | None = None,
    values: dict[str, str] | None = None,
    error: ValidationError | None = None,
) -> Response:
    done = request.query_params.get("done", "")
    if values is None and editing is not None:
        values = {name: str(getattr(editing, name)) for name in _FIELDS}
    return render(
        request,
        "tourism/staff_attractions.html",
        principal,
        status_code=422 if error else 200,
        attractions=service(request).attractions() if editing is None else [],
        editing=editing,
        values=values or {},
        max_photos=MAX_ATTRACTION_PHOTOS,
        notice=translator(request)(f"tourism.notice.{done}") if done in _NOTICES else None,
        **error_context(request, error),
    )


@pages.get("/staff/attractions")
def staff_attractions(
    request: Request, principal: Annotated[Principal, require_roles(*EDITORS)]
) -> Response:
    return _render_editor(request, principal)


@pages.post("/staff/attractions", max_body_size=_BODY_LIMIT)
async def staff_create(
    request: Request, principal: Annotated[Principal, require_roles(*EDITORS)]
) -> Response:
    form = await request.form()
    values = text_fields(form, _FIELDS)
    try:
        data = AttractionInput.from_fields(values)
        await run_in_threadpool(
            partial(service(request).create_attraction, data, uploads(form), actor=principal.actor)
        )
    except ValidationError as exc:
        return await run_in_threadpool(
            partial(_render_editor, request, principal, values=values, error=exc)
        )
    return RedirectResponse("/staff/attractions?done=created", status_code=303)


@pages.get("/staff/attractions/{attraction_id}")
def staff_edit(
    request: Request,
    attraction_id: RecordId,
    principal: Annotated[Principal, require_roles(*EDITORS)],
) -> Response:
    return _render_editor(request, principal, editing=service(request).attraction(attraction_id))


@pages.post("/staff/attractions/{attraction_id}", max_body_size=_BODY_LIMIT)
async def staff_update(
    request: Request,
    attraction_id: RecordId,
    principal: Annotated[Principal, require_roles(*EDITORS)],
) -> Response:
    form = await request.form()
    values = text_fields(form, _FIELDS)
    removed = [value for value in form.getlist("remove_photo") if isinstance(value, str)]
    tourism = service(request)
    try:
        data = AttractionInput.from_fields(values)
        await run_in_threadpool(
            partial(tourism.update_attraction, attraction_id, data, uploads(form),
                    remove_photos=removed, actor=principal.actor)
        )  # fmt: skip
    except ValidationError as exc:
        editing = await run_in_threadpool(tourism.attraction, attraction_id)
        return await run_in_threadpool(
            partial(_render_editor, request, principal, editing=editing, values=values, error=exc)
        )
    return RedirectResponse("/staff/attractions?done=updated", status_code=303)


@pages.post("/staff/attractions/{attraction_id}/delete")
def staff_delete(
    request: Request,
    attraction_id: RecordId,
    principal: Annotated[Principal, require_roles(*EDITORS)],
) -> Response:
    service(request).delete_attraction(attraction_id, actor=principal.actor)
    return RedirectResponse("/staff/attractions?done=deleted", status_code=303)


# -- JSON twins --------------------------------------------------------------------------------


@api.get("/attractions")
def api_attractions(request: Request, _: Annotated[Principal, public()]) -> dict[str, Any]:
    return {"attractions": [attraction_json(a) for a in service(request).attractions()]}


@api.get("/attractions/{attraction_id}")
def api_attraction(
    request: Request, attraction_id: RecordId, _: Annotated[Principal, public()]
) -> dict[str, Any]:
    return attraction_json(service(request).attraction(attraction_id))


@api.post("/attractions", max_body_size=_BODY_LIMIT, status_code=201)
async def api_create(
    request: Request, principal: Annotated[Principal, require_roles(*EDITORS)]
) -> JSONResponse:
    form = await request.form()
    data = AttractionInput.from_fields(text_fields(form, _FIELDS))
    created = await run_in_threadpool(
        partial(service(request).create_attraction, data, uploads(form), actor=principal.actor)
    )
    return JSONResponse(attraction_json(created), status_code=201)


@api.post("/attractions/{attraction_id}", max_body_size=_BODY_LIMIT)
async def api_update(
    request: Request,
    attraction_id: RecordId,
    principal: Annotated[Principal, require_roles(*EDITORS)],
) -> dict[str, Any]:
    form = await request.form()
    data = AttractionInput.from_fields(text_fields(form, _FIELDS))
    removed = [value for value in form.getlist("remove_photo") if isinstance(value, str)]
    updated = await run_in_threadpool(
        partial(service(request).update_attraction, attraction_id, data, uploads(form),
                remove_photos=removed, actor=principal.actor)
    )  # fmt: skip
    return attraction_json(updated)


@api.post("/attractions/{attraction_id}/delete")
def api_delete(
    request: Request,
    attraction_id: RecordId,
    principal: Annotated[Principal, require_roles(*EDITORS)],
) -> dict[str, Any]:
    service(request).delete_attraction(attraction_id, actor=principal.actor)
    return {"deleted": attraction_id}
