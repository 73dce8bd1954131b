"""The event tracker: per-frame motion results in, event start/update/end transitions out.

Pure and clock-free: every call carries its timestamp (seconds, wall clock), so tests can replay
any timeline. An event starts when motion in a counted zone is seen in ``start_frames`` of the
last ``window_frames`` frames (a lone flicker never starts one), reports updates every
``update_interval_seconds`` while it lasts, ends ``quiet_seconds`` after the last motion, and is
cut at ``max_event_seconds`` (a new event may start at once if the motion goes on). After an end,
no new event starts for ``cooldown_seconds``.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agent.motion.config import EventConfig
from agent.motion.detector import Box

TransitionKind = Literal["start", "update", "end"]


def new_event_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class EventTransition:
    """One step in an event's life. ``score`` and ``boxes`` are those of the peak frame so far;
    ``zones`` are every zone that saw motion during the event. ``snapshot_path`` and
    ``clip_path`` (relative to the media directory) are filled in by the event store."""

    kind: TransitionKind
    event_id: str
    camera_id: str
    ts: float
    started_at: float
    ended_at: float | None
    score: float
    boxes: tuple[Box, ...]
    zones: tuple[str, ...]
    end_reason: str | None = None  # "quiet", "max_length", "disarmed", "stopped"
    snapshot_path: str | None = None
    clip_path: str | None = None


@dataclass
class _OpenEvent:
    event_id: str
    started_at: float
    last_motion: float
    last_report: float
    peak_score: float
    peak_boxes: tuple[Box, ...]
    zones: list[str] = field(default_factory=list)


class EventTracker:
    """Debounces motion into events for one camera. Not thread-safe: one per capture thread."""

    def __init__(
        self,
        camera_id: str,
        config: EventConfig,
        *,
        id_factory: Callable[[], str] = new_event_id,
    ) -> None:
        self.camera_id = camera_id
        self.config = config
        self._id_factory = id_factory
        # (timestamp, moving) of the last frames: the start needs N moving of M, and the event
        # is dated from the first of those frames, not from the one that confirmed it.
        self._window: deque[tuple[float, bool]] = deque(
            maxlen=max(config.window_frames, config.start_frames)
        )
        self._event: _OpenEvent | None = None
        self._last_end: float | None = None
        self._last_ts: float | None = None
        self.new_peak = False  # whether the last update() raised the open event's peak

    @property
    def active(self) -> bool:
        return self._event is not None

    @property
    def event_id(self) -> str | None:
        return None if self._event is None else self._event.event_id

    def update(
        self,
        ts: float,
        *,
        motion: bool,
        score: float = 0.0,
        boxes: Sequence[Box] = (),
        zones: Sequence[str] = (),
        armed: bool = True,
    ) -> list[EventTransition]:
        """Feed one frame's outcome; ``motion`` means motion in a counted zone of this frame."""
        # A wall clock may step back (NTP); events never run backwards.
        if self._last_ts is not None and ts < self._last_ts:
            ts = self._last_ts
        self._last_ts = ts
        self.new_peak = False
        moving = motion and armed
        transitions: list[EventTransition] = []
        event = self._event

        if event is not None:
            if not armed:
                transitions.append(self._end(ts, ts, "disarmed"))
                self._window.clear()
                return transitions
            if moving:
                event.last_motion = ts
                self._absorb(event, score, boxes, zones)
            if ts - event.last_motion >= self.config.quiet_seconds:
                transitions.append(self._end(ts, event.last_motion, "quiet"))
            elif ts - event.started_at >= self.config.max_event_seconds:
                transitions.append(self._end(ts, ts, "max_length"))
            elif ts - event.last_report >= self.config.update_interval_seconds:
                event.last_report = ts
                transitions.append(self._transition("update", event, ts))

        self._window.append((ts, moving))
        if self._event is None and moving and self._may_start(ts):
            event = _OpenEvent(
                event_id=self._id_factory(),
                started_at=self._motion_began(),
                last_motion=ts,
                last_report=ts,
                peak_score=-1.0,
                peak_boxes=(),
            )
            self._absorb(event, score, boxes, zones)
            self._event = event
            transitions.append(self._transition("start", event, ts))
        return transitions

    def close(self, ts: float) -> list[EventTransition]:
        """End the open event, if any (camera stopped, agent shutting down)."""
        if self._event is None:
            return []
        return [self._end(max(ts, self._last_ts or ts), self._event.last_motion, "stopped")]

    # -- internals ----------------------------------------------------------------------------

    def _recent(self) -> list[tuple[float, bool]]:
        return list(self._window)[-self.config.window_frames :]

    def _may_start(self, ts: float) -> bool:
        if sum(moving for _, moving in self._recent()) < self.config.start_frames:
            return False
        return self._last_end is None or ts - self._last_end >= self.config.cooldown_seconds

    def _motion_began(self) -> float:
        return min(ts for ts, moving in self._recent() if moving)

    def _absorb(
        self, event: _OpenEvent, score: float, boxes: Sequence[Box], zones: Sequence[str]
    ) -> None:
        if score > event.peak_score:
            event.peak_score = score
            event.peak_boxes = tuple(tuple(int(v) for v in box) for box in boxes)  # type: ignore[misc]
            self.new_peak = True
        for zone in zones:
            if zone not in event.zones:
                event.zones.append(zone)

    def _end(self, ts: float, ended_at: float, reason: str) -> EventTransition:
        event = self._event
        assert event is not None
        self._event = None
        self._last_end = ts
        return self._transition("end", event, ts, ended_at=ended_at, reason=reason)

    def _transition(
        self,
        kind: TransitionKind,
        event: _OpenEvent,
        ts: float,
        *,
        ended_at: float | None = None,
        reason: str | None = None,
    ) -> EventTransition:
        return EventTransition(
            kind=kind,
            event_id=event.event_id,
            camera_id=self.camera_id,
            ts=ts,
            started_at=event.started_at,
            ended_at=ended_at,
            score=max(0.0, event.peak_score),
            boxes=event.peak_boxes,
            zones=tuple(event.zones),
            end_reason=reason,
        )
