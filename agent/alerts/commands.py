"""Remote commands from the command centre: schemas, the agent-side Protocol, one processor.

A request is JSON on ``<prefix>/<device>/cmd/<name>``; the reply goes to ``…/cmd/<name>/result``.
Whatever arrives (malformed JSON, an unknown command, out-of-range values, an unknown camera)
produces a reply with ``ok: false`` and a clear ``error``; nothing here raises to the caller.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from agent.alerts.payloads import CommandReply, jsonable
from agent.errors import KioskError, ValidationError

log = logging.getLogger(__name__)

_REMEMBERED_REPLIES = 256
_MAX_REQUEST_BYTES = 64 * 1024
_CAMERA = re.compile(r"[A-Za-z0-9_-]{1,64}")


class CommandTarget(Protocol):
    """What the agent lets the command centre do; called from the alert worker thread.

    Implementations raise ``agent.errors.ValidationError`` for an unknown camera.
    """

    def arm(self, camera_id: str | None) -> None: ...  # None = all cameras

    def disarm(self, camera_id: str | None) -> None: ...

    def snapshot_now(self, camera_id: str) -> bytes: ...  # JPEG

    def set_sensitivity(self, camera_id: str | None, value: float) -> None: ...

    def health(self) -> dict[str, object]: ...


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=128)]


class ArmRequest(_Request):
    camera: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class SnapshotRequest(_Request):
    camera: Annotated[str, Field(min_length=1, max_length=64)]


class SensitivityRequest(_Request):
    camera: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    value: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class HealthRequest(_Request):
    pass


class _ServiceRequest(_Request):
    """A village service's command: the id is checked here, the rest by the service."""

    model_config = ConfigDict(extra="allow", frozen=True)


# A village service's command bound to the running service: the request object -> the result.
# It raises ValidationError for bad input, like the built-in commands' targets.
ServiceHandler = Callable[[Mapping[str, Any]], Mapping[str, Any]]
_COMMAND_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


REQUEST_SCHEMAS: dict[str, type[_Request]] = {
    "arm": ArmRequest,
    "disarm": ArmRequest,
    "snapshot": SnapshotRequest,
    "sensitivity": SensitivityRequest,
    "health": HealthRequest,
}


@dataclass(frozen=True)
class Outcome:
    """The reply to send, plus a snapshot to publish on the camera's retained topic.

    ``camera`` is the camera a valid request named (None: all cameras, or none named);
    ``repeated`` marks the remembered reply to a request id seen before (nothing ran again).
    """

    reply: CommandReply
    snapshot: tuple[str, bytes] | None = None
    camera: str | None = None
    repeated: bool = False


def _describe(exc: PydanticValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "request"
        message = "required" if error["type"] == "missing" else str(error["msg"])
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def _request_id(data: object) -> str | None:
    """The id of a request that failed validation, if it has a usable one, for the reply."""
    if isinstance(data, dict):
        value = data.get("id")
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return None


def _camera_id(value: object) -> str | None:
    """The camera a request named, for the audit, when it is shaped like a camera id at all
    (whatever else a remote request carries is not copied into the audit log's subject)."""
    if isinstance(value, str) and _CAMERA.fullmatch(value):
        return value
    return None


class CommandProcessor:
    """Validates and executes requests; a repeated id gets the first reply, not a second run."""

    def __init__(
        self, target: CommandTarget, services: Mapping[str, ServiceHandler] | None = None
    ) -> None:
        self._target = target
        self._services: dict[str, ServiceHandler] = {}
        self._recent: OrderedDict[str, Outcome] = OrderedDict()
        self._handlers: dict[str, Callable[[Any], Outcome]] = {
            "arm": self._arm,
            "disarm": self._disarm,
            "snapshot": self._snapshot,
            "sensitivity": self._sensitivity,
            "health": self._health,
        }
        self.add_service_commands(services or {})

    def add_service_commands(self, commands: Mapping[str, ServiceHandler]) -> None:
        """The village services' commands (``notice`` ...); call before the link starts."""
        for name, handler in commands.items():
            if not _COMMAND_NAME.fullmatch(name) or name in self.known() or name == "result":
                raise ValueError(f"a service command cannot be named {name!r}")
            self._services[name] = handler

    def known(self) -> frozenset[str]:
        """Every command name this processor answers."""
        return frozenset(REQUEST_SCHEMAS) | frozenset(self._services)

    def handle(self, name: str, raw: bytes) -> Outcome:
        if len(raw) > _MAX_REQUEST_BYTES:
            return self._error(None, f"request larger than {_MAX_REQUEST_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            return self._error(None, "request is not valid JSON")
        schema = _ServiceRequest if name in self._services else REQUEST_SCHEMAS.get(name)
        if schema is None:
            known = ", ".join(sorted(self.known()))
            return self._error(_request_id(data), f"unknown command {name!r} (known: {known})")
        if not isinstance(data, dict):
            return self._error(None, "request must be a JSON object")
        try:
            request = schema.model_validate(data)
        except PydanticValidationError as exc:
            refused = self._error(_request_id(data), _describe(exc))
            return dataclasses.replace(refused, camera=_camera_id(data.get("camera")))
        remembered = self._recent.get(request.id)
        if remembered is not None:
            # QoS 1 may deliver a request twice; arming twice is harmless but a second
            # snapshot or a late repeat after a newer command is not.
            return dataclasses.replace(remembered, repeated=True)
        outcome = dataclasses.replace(
            self._execute(name, request), camera=_camera_id(getattr(request, "camera", None))
        )
        self._recent[request.id] = outcome
        while len(self._recent) > _REMEMBERED_REPLIES:
            self._recent.popitem(last=False)
        return outcome

    def _execute(self, name: str, request: _Request) -> Outcome:
        try:
            if name in self._services:
                return self._service_command(name, request)
            return self._handlers[name](request)
        except ValidationError as exc:
            return self._error(request.id, str(exc))
        except KioskError as exc:
            log.warning("command %s failed: %s", name, exc)
            return self._error(request.id, str(exc))
        except Exception:  # a remote command must never take the worker down
            log.exception("command %s crashed", name)
            return self._error(request.id, "internal error while executing the command")

    def _arm(self, request: ArmRequest) -> Outcome:
        self._target.arm(request.camera)
        return self._ok(request.id, {"camera": request.camera, "armed": True})

    def _disarm(self, request: ArmRequest) -> Outcome:
        self._target.disarm(request.camera)
        return self._ok(request.id, {"camera": request.camera, "armed": False})

    def _snapshot(self, request: SnapshotRequest) -> Outcome:
        jpeg = self._target.snapshot_now(request.camera)
        if not jpeg.startswith(b"\xff\xd8"):
            raise KioskError(f"camera {request.camera} returned no JPEG image")
        result = {"camera": request.camera, "bytes": len(jpeg)}
        return Outcome(CommandReply(id=request.id, ok=True, result=result), (request.camera, jpeg))

    def _sensitivity(self, request: SensitivityRequest) -> Outcome:
        self._target.set_sensitivity(request.camera, request.value)
        return self._ok(request.id, {"camera": request.camera, "value": request.value})

    def _service_command(self, name: str, request: _Request) -> Outcome:
        result = self._services[name](request.model_dump())
        return self._ok(request.id, jsonable(dict(result)))

    def _health(self, request: HealthRequest) -> Outcome:
        return self._ok(request.id, jsonable(dict(self._target.health())))

    @staticmethod
    def _ok(request_id: str, result: dict[str, Any]) -> Outcome:
        return Outcome(CommandReply(id=request_id, ok=True, result=result))

    @staticmethod
    def _error(request_id: str | None, message: str) -> Outcome:
        return Outcome(CommandReply(id=request_id, ok=False, error=message))
