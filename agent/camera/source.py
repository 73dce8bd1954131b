"""Camera source strings (``usb:0``, ``/dev/video0``, ``rtsp://…``, ``file:PATH``, ``sim://SCENE?seed=N``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class UsbSource:
    device: int | str  # index for usb:N, path for /dev/videoN

    def describe(self) -> str:
        return f"usb:{self.device}"


@dataclass(frozen=True)
class RtspSource:
    url: str

    def describe(self) -> str:
        # Credentials in the URL must never reach a log line or the UI.
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True)
class FileSource:
    path: Path

    def describe(self) -> str:
        return f"file:{self.path.name}"


@dataclass(frozen=True)
class SimSource:
    scene: str
    seed: int = 0
    options: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"sim://{self.scene}?seed={self.seed}"


Source = UsbSource | RtspSource | FileSource | SimSource

_SCENE_NAME = re.compile(r"^[a-z0-9_]+$")


def parse_source(text: str) -> Source:
    """Parse a source string; raises ValueError with a message fit for a config error."""
    text = text.strip()
    if not text:
        raise ValueError("must not be empty")
    if text.startswith("usb:"):
        index = text[4:]
        if not index.isdigit():
            raise ValueError("usb source must be usb:N with N a device index, e.g. usb:0")
        return UsbSource(int(index))
    if re.fullmatch(r"/dev/video\d+", text):
        return UsbSource(text)
    if text.startswith(("rtsp://", "rtsps://")):
        parts = urlsplit(text)
        if not parts.hostname:
            raise ValueError("rtsp source needs a host, e.g. rtsp://192.0.2.10:554/stream1")
        return RtspSource(text)
    if text.startswith("file:"):
        path = text[5:]
        if not path:
            raise ValueError("file source needs a path, e.g. file:/var/lib/clips/yard.mp4")
        return FileSource(Path(path))
    if text.startswith("sim://"):
        parts = urlsplit(text)
        scene = parts.netloc or parts.path.lstrip("/")
        if not _SCENE_NAME.match(scene):
            raise ValueError("sim source must be sim://SCENE?seed=N")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        seed_text = query.pop("seed", "0")
        if not seed_text.isdigit():
            raise ValueError("sim seed must be a non-negative integer")
        return SimSource(scene, int(seed_text), query)
    raise ValueError(
        "unknown source; use usb:N, /dev/videoN, rtsp://HOST/PATH, file:PATH or sim://SCENE?seed=N"
    )
