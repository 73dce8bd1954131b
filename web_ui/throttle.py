"""Per-address sign-in throttling, on top of the per-account lockout in agent.accounts.

The account lockout stops guessing one password; this stops one address from spraying
guesses over many usernames.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


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
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and now - failures[0] >= self._window:
            failures.popleft()
        return failures

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 when it may try now."""
        now = self._clock()
        with self._lock:
            failures = self._recent(address, now)
            if len(failures) < self._max:
                return 0
            return max(1, int(self._window - (now - failures[0])) + 1)

    def failed(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            self._recent(address, now).append(now)
