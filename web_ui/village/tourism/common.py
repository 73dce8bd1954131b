"""What the tourism routes share: the service, form values and error rendering."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Path, Request
from starlette.datastructures import FormData, UploadFile

from agent.errors import ValidationError
from agent.village.photos import PHOTO_ID_PATTERN
from agent.village.tourism import TourismService
from web_ui.errors import validation_detail
from web_ui.rendering import translator
from web_ui.security import web_context

# One router for the pages and one for the JSON API, which both route modules fill (the app
# lists every route of a service's routers, so they are not nested).
pages = APIRouter(include_in_schema=False)
api = APIRouter()

PhotoId = Annotated[str, Path(pattern=PHOTO_ID_PATTERN)]
MAX_FORM_VALUE = 4000


def service(request: Request) -> TourismService:
    return web_context(request).service(TourismService)


def text_fields(form: FormData | Mapping[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for name in names:
        value = form.get(name, "")
        values[name] = value[:MAX_FORM_VALUE] if isinstance(value, str) else ""
    return values


async def json_fields(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """A JSON object's named members as text (what a form would give)."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise ValidationError("body", "tourism.body.invalid") from exc
    if not isinstance(body, dict):
        raise ValidationError("body", "tourism.body.invalid")
    return {name: str(body.get(name, "") or "")[:MAX_FORM_VALUE] for name in names}


def uploads(form: FormData, name: str = "photos") -> list[BinaryIO]:
    """The files chosen in a file input (an empty input sends one empty part: none)."""
    return [
        item.file
        for item in form.getlist(name)
        if isinstance(item, UploadFile) and (item.filename or item.size)
    ]


def error_context(request: Request, error: ValidationError | None) -> dict[str, Any]:
    return {
        "error_input": error.field if error else None,
        "error_detail": validation_detail(translator(request), error) if error else None,
    }
