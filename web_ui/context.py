"""Everything the web UI needs from the agent, handed over by the runtime in one object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt

from agent.accounts import AccountStore
from agent.audit import AuditLog
from agent.camera.pictures import CameraPictures
from agent.config import AgentConfig
from agent.rtc.calls import CallService
from agent.rtc.views import LiveViews
from agent.store.database import Database
from agent.village.family import FamilyService
from agent.village.homestay import HomestayService
from agent.village.services import Services


class FrameLike(Protocol):
    @property
    def image(self) -> npt.NDArray[np.uint8]: ...  # BGR

    @property
    def seq(self) -> int: ...

    @property
    def ts(self) -> float: ...


class FrameSlotLike(Protocol):
    def latest(self) -> FrameLike | None: ...


class CameraStatusLike(Protocol):
    """The figures of agent.camera.capture.CameraStatus the UI shows."""

    @property
    def camera_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> str: ...  # a StrEnum: starting/online/reconnecting/offline/disabled

    @property
    def fps(self) -> float: ...

    @property
    def frames(self) -> int: ...

    @property
    def last_frame_ts(self) -> float | None: ...

    @property
    def width(self) -> int | None: ...

    @property
    def height(self) -> int | None: ...


class CameraLike(Protocol):
    """A capture worker (agent.camera.capture.CameraWorker) as the UI sees it."""

    @property
    def slot(self) -> FrameSlotLike: ...

    def status(self) -> CameraStatusLike: ...


ServiceT = TypeVar("ServiceT")
_SERVICES_FROM_PARTS = cast("Services", None)

# WebContext.family's default: replaced in __post_init__ by a service built from the context.
_FAMILY_FROM_PARTS = cast("FamilyService", None)


@dataclass
class WebContext:
    config: AgentConfig
    database: Database
    cameras: Mapping[str, CameraLike]
    homestays: HomestayService
    audit: AuditLog
    accounts: AccountStore
    health: Callable[[], dict[str, object]]
    # Every picture the UI shows comes from here, masked the way snapshots and clips are.
    pictures: Mapping[str, CameraPictures] = field(default_factory=dict)
    # Live video (WebRTC and its MJPEG fallback); None when [rtc] is disabled.
    live: LiveViews | None = None
    # The start time of each camera's latest motion event, for the patrol page.
    last_events: Callable[[], dict[str, float]] | None = None
    # Signs the visitors' CSRF tokens; the runtime derives it from the vault key so tokens
    # survive a restart. Empty: a random key for this process.
    web_secret: bytes = b""
    # Households and family links (亲情通): which family account may watch which cameras. Built
    # from the parts above (with the configured cameras) when not given.
    family: FamilyService = _FAMILY_FROM_PARTS
    # Family video calls between the kiosk screen and phones; None when calls are off.
    calls: CallService | None = None
    # Every village service by name (the runtime's list); just the homestay one when not given.
    services: Services = _SERVICES_FROM_PARTS

    def service(self, kind: type[ServiceT]) -> ServiceT:
        """The running service of class ``kind``, for the routes of that service."""
        return self.services.get_typed(kind)

    def __post_init__(self) -> None:
        if self.services is None:
            self.services = Services({"homestay": self.homestays})
        if self.family is None:
            camera_ids = {camera.id for camera in self.config.cameras} | set(self.cameras)
            self.family = FamilyService(
                self.database, self.audit, self.accounts, camera_ids=camera_ids
            )
