"""Searches by name or ID number, kept on the server under a random id.

A search form posts the name or number; the page of results is then addressed as
``?search=<id>``, so neither ends up in a URL (browser history, a bookmark, the sign-in
``next=``, a proxy's log). A kept search holds only blind indexes (``GuestQuery``), belongs to
the account that made it, and expires; the store is bounded per account and in total, so it
cannot grow memory however many searches are posted.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from agent.village.homestay import GuestQuery

SEARCH_TTL_SECONDS = 30 * 60.0
SEARCHES_PER_ACCOUNT = 20
SEARCHES_IN_TOTAL = 2000
_ID_BYTES = 18

_STATE_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Kept:
    owner: str
    query: GuestQuery
    expires: float


class SearchStore:
    """Kept searches, oldest first; thread-safe (page routes run in the thread pool)."""

    def __init__(
        self,
        *,
        ttl_seconds: float = SEARCH_TTL_SECONDS,
        per_account: int = SEARCHES_PER_ACCOUNT,
        total: int = SEARCHES_IN_TOTAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._per_account = per_account
        self._total = total
        self._clock = clock
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, owner: str, query: GuestQuery) -> str:
        """Keep ``query`` for ``owner``; returns the id its results page is addressed by."""
        search_id = secrets.token_urlsafe(_ID_BYTES)
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            own = [key for key, kept in self._kept.items() if kept.owner == owner]
            for key in own[: max(0, len(own) - self._per_account + 1)]:
                del self._kept[key]
            while len(self._kept) >= self._total:
                self._kept.popitem(last=False)
            self._kept[search_id] = _Kept(owner, query, now + self._ttl)
        return search_id

    def get(self, owner: str, search_id: str) -> GuestQuery | None:
        """The kept query, or None when it expired, never existed or is another account's."""
        with self._lock:
            self._drop_expired(self._clock())
            kept = self._kept.get(search_id)
        if kept is None or kept.owner != owner:
            return None
        return kept.query

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    def _drop_expired(self, now: float) -> None:
        # Entries are in order of creation with one lifetime, so the expired ones come first.
        while self._kept:
            key, kept = next(iter(self._kept.items()))
            if kept.expires > now:
                return
            del self._kept[key]


def search_store(request: Request) -> SearchStore:
    """The app's store, made on first use."""
    state = request.app.state
    store = getattr(state, "guest_searches", None)
    if isinstance(store, SearchStore):
        return store
    with _STATE_LOCK:
        store = getattr(state, "guest_searches", None)
        if not isinstance(store, SearchStore):
            store = SearchStore()
            state.guest_searches = store
        return store
