"""Health of the device itself (load, temperature, memory, disk) and the systemd watchdog."""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

log = logging.getLogger(__name__)

_THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
_MEMINFO = Path("/proc/meminfo")


def cpu_temperature_c() -> float | None:
    """SoC temperature on a Pi (or any Linux with a thermal zone); None where unreadable."""
    try:
        return int(_THERMAL_ZONE.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


def memory_available_mb() -> float | None:
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def system_health(data_dir: Path) -> dict[str, object]:
    """Figures the command centre wants to see per kiosk."""
    try:
        load1, load5, load15 = os.getloadavg()
        load: list[float] | None = [round(load1, 2), round(load5, 2), round(load15, 2)]
    except OSError:
        load = None
    try:
        disk_free_mb: float | None = round(shutil.disk_usage(data_dir).free / 1_048_576, 1)
    except OSError:
        disk_free_mb = None
    memory = memory_available_mb()
    return {
        "load": load,
        "cpu_temperature_c": cpu_temperature_c(),
        "memory_available_mb": round(memory, 1) if memory is not None else None,
        "disk_free_mb": disk_free_mb,
    }


class SystemdNotifier:
    """Speaks the sd_notify protocol (READY, WATCHDOG, STOPPING) without a library.

    Does nothing when the agent is not started by systemd (no NOTIFY_SOCKET).
    """

    def __init__(self, address: str | None = None) -> None:
        self._address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def watchdog_interval_seconds(self) -> float | None:
        """Half the WatchdogSec systemd gave us, so one late ping is not fatal."""
        usec = os.environ.get("WATCHDOG_USEC", "")
        if not self.enabled or not usec.isdigit():
            return None
        return int(usec) / 2_000_000

    def notify(self, message: str) -> None:
        if not self._address:
            return
        address = self._address
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace socket
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(address)
                sock.sendall(message.encode())
        except OSError as exc:
            log.warning("systemd notify failed: %s", exc)
