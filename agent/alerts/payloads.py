"""JSON payloads the kiosk publishes, and the event transition shape they are built from."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from agent.errors import ValidationError

Timestamp = float | datetime


class EventTransitionLike(Protocol):
    """What the alert side reads from an event-store transition (read-only)."""

    @property
    def kind(self) -> str: ...  # "start" | "update" | "end"

    @property
    def event_id(self) -> str: ...

    @property
    def camera_id(self) -> str: ...

    @property
    def ts(self) -> Timestamp: ...

    @property
    def started_at(self) -> Timestamp: ...

    @property
    def ended_at(self) -> Timestamp | None: ...

    @property
    def score(self) -> float | None: ...

    @property
    def boxes(self) -> Sequence[Any]: ...

    @property
    def zones(self) -> Sequence[str]: ...

    @property
    def snapshot_path(self) -> str | Path | None: ...  # relative to the media directory


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventMessage(_Payload):
    """``<prefix>/<device>/events``; ``id`` is unique per message, ``seq`` counts per kiosk."""

    id: str
    seq: int
    type: Literal["start", "update", "end"]
    event_id: str
    camera: str
    ts: str
    started_at: str
    ended_at: str | None
    score: float | None
    boxes: list[Any]
    zones: list[str]
    snapshot: str | None
    end_reason: str | None = None


class ReportMessage(_Payload):
    """``<prefix>/<device>/report/<kind>``: a village service's report under ``data``."""

    id: str
    seq: int
    kind: str
    ts: str
    data: dict[str, Any]


class CommandReply(_Payload):
    """``…/cmd/<name>/result``: ``ok`` with an optional ``result``, or ``error``."""

    id: str | None
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None


def iso_utc(value: Timestamp) -> str:
    """ISO 8601 in UTC with milliseconds; epoch seconds and naive datetimes count as UTC."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        moment = datetime.fromtimestamp(float(value), tz=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """Boxes come as tuples, dataclasses, pydantic models or numpy values; JSON wants lists."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return jsonable(value.tolist())
    if isinstance(value, Sequence | set | frozenset):
        return [jsonable(item) for item in value]
    return str(value)


def event_message(message_id: str, seq: int, transition: EventTransitionLike) -> EventMessage:
    kind = transition.kind
    if kind not in ("start", "update", "end"):
        raise ValidationError("kind", f"unknown transition kind {kind!r}")
    score = transition.score
    return EventMessage(
        id=message_id,
        seq=seq,
        type=kind,
        event_id=str(transition.event_id),
        camera=transition.camera_id,
        ts=iso_utc(transition.ts),
        started_at=iso_utc(transition.started_at),
        ended_at=None if transition.ended_at is None else iso_utc(transition.ended_at),
        score=None if score is None or not math.isfinite(score) else float(score),
        boxes=jsonable(list(transition.boxes)),
        zones=[str(zone) for zone in transition.zones],
        snapshot=None if transition.snapshot_path is None else str(transition.snapshot_path),
        # Optional on the transition ("quiet", "max_length", "disarmed", "stopped"); only ends
        # have one.
        end_reason=_optional_text(getattr(transition, "end_reason", None)),
    )


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)
