"""Where snapshots and clips live on disk."""

from __future__ import annotations

from pathlib import Path


def media_dir(data_dir: Path) -> Path:
    path = data_dir / "media"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def database_path(data_dir: Path) -> Path:
    return data_dir / "kiosk.sqlite3"
