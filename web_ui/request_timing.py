"""Times every HTTP request for /metrics: a plain ASGI middleware, so streamed answers (event
streams, MJPEG) pass through untouched.

A request is timed until its answer's headers go out (a long-lived stream counts its start,
not its length) and recorded under its route template, never its concrete path.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.metrics import UNMATCHED_ROUTE, LatencyHistogram


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (``/police/registrations/{guest_id}``)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestTiming:
    def __init__(self, app: ASGIApp, histogram: LatencyHistogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        recorded = False

        def record(status: int) -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                seconds = time.perf_counter() - started
                self.histogram.observe(scope["method"], route_template(scope), status, seconds)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            record(500)
            raise
