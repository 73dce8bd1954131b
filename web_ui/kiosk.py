"""Routes that belong to the kiosk's own touchscreen: to anyone else they do not exist."""

from __future__ import annotations

import hmac

from fastapi import Request

from web_ui.errors import NotFoundError
from web_ui.rendering import is_kiosk_screen
from web_ui.security import CSRF_HEADER, AccessDeniedError, Principal

_SAFE_METHODS = frozenset({"GET", "HEAD"})


def kiosk_screen_only(request: Request) -> None:
    """A page of the kiosk's screen only; anywhere else it is not found."""
    if not is_kiosk_screen(request):
        raise NotFoundError("page")


def kiosk_screen_api(request: Request, principal: Principal) -> None:
    """A JSON route of the kiosk screen's own pages: not found elsewhere, and a state change
    carries the page's CSRF token even without a session (the API asks none of a program,
    but these calls come from the screen's own page)."""
    kiosk_screen_only(request)
    if request.method not in _SAFE_METHODS:
        submitted = request.headers.get(CSRF_HEADER, "")
        if not submitted or not hmac.compare_digest(submitted, principal.csrf_token):
            raise AccessDeniedError(403, "csrf.invalid")
