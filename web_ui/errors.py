"""Turning errors into responses: JSON ``{"error": {...}}`` for /api, pages for the rest.

Bad input is always a 4xx naming the field; only a failure of the kiosk itself is a 5xx.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from agent.errors import (
    KioskError,
    NotAllowedError,
    RecordNotFoundError,
    StoreError,
    ValidationError,
)
from agent.village.services import error_messages
from web_ui.i18n import Translator
from web_ui.rendering import render, translator
from web_ui.security import AccessDeniedError, current_principal, is_api

log = logging.getLogger(__name__)
# Every service's error codes with their English text: the fallback where a catalog lacks one.
ERROR_MESSAGES = error_messages()


class NotFoundError(KioskError):
    """A page or API object that does not exist (or that the visitor may not see)."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} not found")


class TooManyAttemptsError(KioskError):
    """Sign-in attempts from one address are throttled."""

    def __init__(self, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__("too many sign-in attempts")


def error_body(field: str | None, code: str, message: str) -> dict[str, Any]:
    return {"error": {"field": field, "code": code, "message": message}}


def api_error(
    status: int, field: str | None, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(field, code, message), status_code=status, headers=headers)


def _field_from_location(location: tuple[Any, ...]) -> str:
    parts = [part for part in location if part not in {"body", "query", "path", "form"}]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def validation_text(t: Translator, error: ValidationError) -> str:
    """The message for an agent ValidationError, in the visitor's language."""
    return t.field_error(error.field, error.message, ERROR_MESSAGES.get(error.message, ""))


def validation_detail(t: Translator, error: ValidationError) -> str:
    """The message alone, for beside the field it is about."""
    return t.error_message(error.message, ERROR_MESSAGES.get(error.message, ""))


async def _error_page(request: Request, status: int, code: str) -> Response:
    principal = await current_principal(request)
    t = translator(request)
    message = t(f"error.{code}") if t.has(f"error.{code}") else t("error.http")
    return render(
        request, "error.html", principal, status_code=status, status=status, message=message
    )


async def _on_access_denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AccessDeniedError)
    t = translator(request)
    if exc.code == "auth.token_invalid":  # a program's bearer token: no sign-in page for it
        headers = {"WWW-Authenticate": 'Bearer realm="village-kiosk"'}
        return api_error(401, None, exc.code, t(f"error.{exc.code}"), headers)
    if is_api(request):
        return api_error(exc.status, None, exc.code, t(f"error.{exc.code}"))
    if exc.status == 401:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return await _error_page(request, exc.status, exc.code)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    text = validation_text(translator(request), exc)
    if is_api(request):
        return api_error(422, exc.field, exc.message, text)
    principal = await current_principal(request)
    return render(request, "error.html", principal, status_code=400, status=400, message=text)


async def _on_request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first: dict[str, Any] = dict(errors[0]) if errors else {}
    field = _field_from_location(tuple(first.get("loc", ())))
    code = "request." + str(first.get("type", "invalid"))
    t = translator(request)
    message = t("error.field_sentence", field=field, message=str(first.get("msg", "invalid")))
    if is_api(request):
        return api_error(422, field, code, message)
    principal = await current_principal(request)
    return render(request, "error.html", principal, status_code=400, status=400, message=message)


async def _on_not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFoundError | RecordNotFoundError)
    if is_api(request):
        return api_error(404, None, "not_found", translator(request)("error.not_found"))
    return await _error_page(request, 404, "not_found")


async def _on_not_allowed(request: Request, exc: Exception) -> Response:
    """A business rule said no (not the role guard, which answered earlier)."""
    assert isinstance(exc, NotAllowedError)
    t = translator(request)
    message = t.error_message(exc.code, ERROR_MESSAGES.get(exc.code, exc.message))
    if is_api(request):
        return api_error(403, None, exc.code, message)
    principal = await current_principal(request)
    return render(request, "error.html", principal, status_code=403, status=403, message=message)


async def _on_throttled(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TooManyAttemptsError)
    headers = {"Retry-After": str(exc.retry_after_seconds)}
    t = translator(request)
    if is_api(request):
        return api_error(429, None, "auth.throttled", t("error.auth.throttled"), headers)
    response = await _error_page(request, 429, "auth.throttled")
    response.headers.update(headers)
    return response


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "request.too_large"}.get(
        exc.status_code, "http"
    )
    if is_api(request):
        message = translator(request)(f"error.{code}") if code != "http" else str(exc.detail)
        return api_error(exc.status_code, None, code, message, headers=dict(exc.headers or {}))
    return await _error_page(request, exc.status_code, code)


async def _on_store(request: Request, exc: Exception) -> Response:
    log.error("database failure while serving %s: %s", request.url.path, exc)
    if is_api(request):
        return api_error(503, None, "unavailable", translator(request)("error.unavailable"))
    return await _error_page(request, 503, "unavailable")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AccessDeniedError, _on_access_denied)
    app.add_exception_handler(ValidationError, _on_validation)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(NotFoundError, _on_not_found)
    app.add_exception_handler(RecordNotFoundError, _on_not_found)
    app.add_exception_handler(NotAllowedError, _on_not_allowed)
    app.add_exception_handler(TooManyAttemptsError, _on_throttled)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(StoreError, _on_store)
