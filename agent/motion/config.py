"""Settings of the motion detector and the event tracker (the ``[motion]`` config section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MotionConfig(BaseModel):
    """Detector settings; defaults suit a village camera at 640x480–1280x720."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detection_width: int = Field(default=320, ge=80, le=1280)
    sensitivity: float = Field(default=0.5, ge=0.0, le=1.0)
    min_area_fraction: float = Field(default=0.0005, ge=0.0, le=0.5)
    background_rate: float = Field(
        default=0.04, gt=0.0, le=1.0, description="per-frame learning rate of still background"
    )
    moving_rate: float = Field(
        default=0.002, ge=0.0, le=1.0, description="per-frame learning rate under moving objects"
    )
    settled_rate: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="per-frame learning rate of a change that stopped moving (parked car, ghost)",
    )
    lighting_spread: float = Field(
        default=6.0,
        gt=0.0,
        le=100.0,
        description="uneven brightness jump between frames (about % per block) taken as lighting",
    )
    variance_rate: float = Field(
        default=0.02, gt=0.0, le=1.0, description="per-frame learning rate of pixel noise"
    )
    global_change_fraction: float = Field(
        default=0.4,
        gt=0.0,
        le=1.0,
        description="share of the frame changing at once that is taken as a lighting change",
    )
    max_global_change_frames: int = Field(
        default=30,
        ge=1,
        le=10_000,
        description="frames a lighting change may suppress detection before it is learned",
    )
    warmup_frames: int = Field(
        default=30, ge=1, le=1000, description="frames learned before motion is reported"
    )


class EventConfig(BaseModel):
    """How motion becomes an event: persistence, quiet period, length limits, clips."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_frames: int = Field(default=3, ge=1, le=100)
    window_frames: int = Field(default=5, ge=1, le=200)
    quiet_seconds: float = Field(default=3.0, ge=0.1, le=600)
    max_event_seconds: float = Field(default=300.0, ge=1, le=86400)
    update_interval_seconds: float = Field(default=2.0, ge=0.1, le=600)
    pre_roll_seconds: float = Field(default=3.0, ge=0, le=30)
    cooldown_seconds: float = Field(
        default=0.0, ge=0, le=3600, description="pause after an event ends before a new one"
    )
    clip_seconds: float = Field(
        default=10.0, ge=0, le=300, description="clip length after the start (0 = no clips)"
    )
