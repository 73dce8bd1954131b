"""The MQTT topic scheme of one kiosk; docs/MQTT.md is its public description."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.errors import ValidationError

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_segment(field: str, value: str) -> str:
    """A value used as one topic level must not smuggle in separators or wildcards."""
    if not _SEGMENT.match(value):
        raise ValidationError(field, "must be 1-64 letters, digits, '_' or '-'")
    return value


@dataclass(frozen=True)
class Topics:
    """Every topic one kiosk publishes or listens on, below ``<prefix>/<device>``."""

    prefix: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    def camera_motion(self, camera_id: str) -> str:
        return f"{self.base}/camera/{check_segment('camera', camera_id)}/motion"

    def camera_snapshot(self, camera_id: str) -> str:
        return f"{self.base}/camera/{check_segment('camera', camera_id)}/snapshot"

    def camera_state(self, camera_id: str) -> str:
        return f"{self.base}/camera/{check_segment('camera', camera_id)}/state"

    def report(self, kind: str) -> str:
        return f"{self.base}/report/{check_segment('kind', kind)}"

    def command(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def command_result(self, name: str) -> str:
        return f"{self.base}/cmd/{name}/result"

    @property
    def command_filter(self) -> str:
        """One level only, so the kiosk never receives its own ``…/result`` replies."""
        return f"{self.base}/cmd/+"

    def command_name(self, topic: str) -> str | None:
        """The command name of a request topic, or None when ``topic`` is not one."""
        head = f"{self.base}/cmd/"
        if not topic.startswith(head):
            return None
        name = topic[len(head) :]
        return name if name and "/" not in name else None
