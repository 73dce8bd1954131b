"""Readings of the host for the periodic health message; whatever is unreadable is left out."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

_THERMAL = Path("/sys/class/thermal")
_MEMINFO = Path("/proc/meminfo")
_UPTIME = Path("/proc/uptime")


def cpu_temperature_c() -> float | None:
    """The SoC temperature on a Pi (thermal_zone0); None on hosts without a readable sensor."""
    try:
        zones = sorted(_THERMAL.glob("thermal_zone*/temp"))
    except OSError:
        return None
    for zone in zones:
        try:
            return round(int(zone.read_text().strip()) / 1000.0, 1)
        except (OSError, ValueError):
            continue
    return None


def memory() -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        lines = _MEMINFO.read_text().splitlines()
    except OSError:
        return values
    wanted = {"MemTotal": "total_bytes", "MemAvailable": "available_bytes"}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in wanted:
            try:
                values[wanted[key]] = int(rest.split()[0]) * 1024
            except (IndexError, ValueError):
                continue
    return values


def system_uptime_seconds() -> float | None:
    try:
        return float(_UPTIME.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


def read_system(data_dir: Path, started_monotonic: float) -> dict[str, object]:
    reading: dict[str, object] = {
        "uptime_seconds": round(time.monotonic() - started_monotonic, 1),
    }
    system_uptime = system_uptime_seconds()
    if system_uptime is not None:
        reading["system_uptime_seconds"] = round(system_uptime, 1)
    with contextlib.suppress(OSError):
        reading["load"] = [round(value, 2) for value in os.getloadavg()]
    temperature = cpu_temperature_c()
    if temperature is not None:
        reading["cpu_temperature_c"] = temperature
    reading["memory"] = memory()
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError:
        pass
    else:
        reading["disk"] = {"free_bytes": usage.free, "total_bytes": usage.total}
    return reading
