"""Settings of the motion detector and the event tracker (the ``[motion]`` config section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MotionConfig(BaseModel):
    """Detector settings; defaults suit a village camera at 640x480–1280x720."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detection_width: int = Field(default=320, ge=80, le=1280)
    sensitivity: float = Field(default=0.5, ge=0.0, le=1.0)
    min_area_fraction: float = Field(default=0.0005, ge=0.0, le=0.5)


class EventConfig(BaseModel):
    """How motion becomes an event: persistence, quiet period, length limits, clips."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_frames: int = Field(default=3, ge=1, le=100)
    window_frames: int = Field(default=5, ge=1, le=200)
    quiet_seconds: float = Field(default=3.0, ge=0.1, le=600)
    max_event_seconds: float = Field(default=300.0, ge=1, le=86400)
    update_interval_seconds: float = Field(default=2.0, ge=0.1, le=600)
    pre_roll_seconds: float = Field(default=3.0, ge=0, le=30)
