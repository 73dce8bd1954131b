"""Sign-in limits of the web UI, on top of the per-(name, address) back-off in agent.accounts.

``LoginThrottle`` stops one address from spraying guesses over many usernames. An attempt takes
a place in its address's window before the password is checked, under one lock, so parallel
requests cannot all pass the check before any of them is counted; a successful sign-in gives
its place back.

``PasswordCheckGate`` bounds how many password checks run at once. Each argon2 check holds its
memory (19 MiB with the kiosk's parameters) for its whole run; unbounded, a burst of anonymous
sign-ins grows the agent until the system kills it, cameras and alerts included. A check that
finds the gate full is refused at once (429), never queued. The checks run in the gate's own
threads: glibc keeps a freed block under its mmap threshold in the arena of the thread that
used it, so argon2 spread over the web server's 40 worker threads would leave up to 40 blocks
resident (bench/password_hashing.py measures it), while two dedicated threads keep at most two.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from agent.errors import KioskError
from web_ui.errors import TooManyAttemptsError

T = TypeVar("T")

_MAX_ADDRESSES = 10_000


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int = 30,
        window_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window = window_seconds
        self._clock = clock
        self._attempts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        attempts = self._attempts.setdefault(address, deque())
        while attempts and now - attempts[0] >= self._window:
            attempts.popleft()
        return attempts

    def _prune(self, now: float) -> None:
        for address in [a for a, attempts in self._attempts.items() if not attempts]:
            del self._attempts[address]
        if len(self._attempts) > _MAX_ADDRESSES:
            for address in list(self._attempts):
                if not self._recent(address, now):
                    del self._attempts[address]
        if len(self._attempts) > _MAX_ADDRESSES:
            self._attempts.clear()  # bounded memory beats exact counts under a flood

    def reserve(self, address: str) -> float:
        """Count an attempt from ``address``; raises TooManyAttemptsError when its window is
        full. Returns the reservation to hand back to ``release`` if the sign-in succeeds."""
        now = self._clock()
        with self._lock:
            if len(self._attempts) > _MAX_ADDRESSES:
                self._prune(now)
            attempts = self._recent(address, now)
            if len(attempts) >= self._max:
                raise TooManyAttemptsError(max(1, int(self._window - (now - attempts[0])) + 1))
            attempts.append(now)
            return now

    def release(self, address: str, reservation: float) -> None:
        """A successful (or never checked) attempt does not count against its address."""
        with self._lock:
            attempts = self._attempts.get(address)
            if attempts is not None:
                with contextlib.suppress(ValueError):  # already out of the window
                    attempts.remove(reservation)

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 when it may try now."""
        now = self._clock()
        with self._lock:
            attempts = self._recent(address, now)
            if len(attempts) < self._max:
                return 0
            return max(1, int(self._window - (now - attempts[0])) + 1)


class GateBusyError(KioskError):
    """Every password-check place is taken; the caller should answer 429 and not wait."""

    def __init__(self) -> None:
        super().__init__("password checks busy")


class PasswordCheckGate:
    """Runs password checks in at most ``limit`` dedicated threads, refusing the rest."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the gate needs at least one place")
        self.limit = limit
        self._running = 0
        self._lock = threading.Lock()
        executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="password-check")
        self._executor = executor
        # An app that is dropped (tests build many) lets its idle threads go.
        weakref.finalize(self, executor.shutdown, wait=False)

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def _leave(self, _: Future[Any]) -> None:
        with self._lock:
            self._running -= 1

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` in a gate thread; raises GateBusyError when all are taken.

        A place is given back when the function has finished (or was cancelled before it
        started), not when the caller stops waiting: a client that hangs up must not let a
        further check start beside one that is still running.
        """
        with self._lock:
            if self._running >= self.limit:
                raise GateBusyError()
            self._running += 1
        try:
            future = self._executor.submit(function, *args)
        except BaseException:
            with self._lock:
                self._running -= 1
            raise
        future.add_done_callback(self._leave)
        return await asyncio.wrap_future(future)
