"""How often a police view of a camera picture is written to the audit log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ViewAuditThrottle:
    """Decides when a camera view is worth a new audit entry.

    The status page refreshes snapshots every few seconds; one entry per viewer and camera per
    ``window_seconds`` records who watched what without flooding the audit log.
    """

    def __init__(
        self, window_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def should_record(self, viewer: str, camera_id: str) -> bool:
        now = self._clock()
        with self._lock:
            last = self._last.get((viewer, camera_id))
            if last is not None and now - last < self._window:
                return False
            self._last[(viewer, camera_id)] = now
            if len(self._last) > 10_000:  # bound memory; forgetting only adds an entry
                self._last.clear()
                self._last[(viewer, camera_id)] = now
            return True
