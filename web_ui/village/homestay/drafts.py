"""Half-filled registration forms kept on the server, so a host whose session ended (or who
signed in again after the kiosk's idle reset) finds what they typed.

The kiosk's screen is shared: nothing typed is kept in the browser (no localStorage, no
sessionStorage), only here, in the agent's memory, under the host's account and homestay. A
draft goes when the registration is made, when the host clears the form, or after
DRAFT_TTL_SECONDS; the store is bounded, so it cannot grow memory.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from fastapi import Request

DRAFT_TTL_SECONDS = 2 * 3600.0
DRAFTS_IN_TOTAL = 500
MAX_DRAFT_FIELDS = 200
MAX_DRAFT_VALUE = 500

_STATE_LOCK = threading.Lock()


class DraftStore:
    """Drafts by (account, homestay), oldest first; thread-safe."""

    def __init__(
        self,
        *,
        ttl_seconds: float = DRAFT_TTL_SECONDS,
        total: int = DRAFTS_IN_TOTAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._total = total
        self._clock = clock
        self._drafts: OrderedDict[tuple[str, int], tuple[float, dict[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, owner: str, homestay_id: int, fields: Mapping[str, object]) -> None:
        kept = {
            str(name)[:100]: value[:MAX_DRAFT_VALUE]
            for name, value in list(fields.items())[:MAX_DRAFT_FIELDS]
            if isinstance(value, str)
        }
        with self._lock:
            self._drop_expired()
            self._drafts.pop((owner, homestay_id), None)
            while len(self._drafts) >= self._total:
                self._drafts.popitem(last=False)
            self._drafts[(owner, homestay_id)] = (self._clock() + self._ttl, kept)

    def get(self, owner: str, homestay_id: int) -> dict[str, str] | None:
        with self._lock:
            self._drop_expired()
            kept = self._drafts.get((owner, homestay_id))
        return dict(kept[1]) if kept else None

    def discard(self, owner: str, homestay_id: int) -> None:
        with self._lock:
            self._drafts.pop((owner, homestay_id), None)

    def _drop_expired(self) -> None:
        now = self._clock()
        while self._drafts:
            key, (expires, _) = next(iter(self._drafts.items()))
            if expires > now:
                return
            del self._drafts[key]


def draft_store(request: Request) -> DraftStore:
    """The app's store, made on first use."""
    state = request.app.state
    store = getattr(state, "homestay_drafts", None)
    if isinstance(store, DraftStore):
        return store
    with _STATE_LOCK:
        store = getattr(state, "homestay_drafts", None)
        if not isinstance(store, DraftStore):
            store = DraftStore()
            state.homestay_drafts = store
        return store
