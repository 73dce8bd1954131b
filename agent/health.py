"""Health of the device itself (load, temperature, memory, disk) and the systemd watchdog."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

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


def system_health(data_dir: Path) -> dict[str, object]:
    """Readings of the host the command centre wants per kiosk; unreadable ones are left out."""
    reading: dict[str, object] = {}
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


class StuckParts:
    """Which parts of the agent are stuck, from one liveness review to the next.

    Each review gets every watched part's problem (None: alive). A part that becomes stuck is
    logged once, as an error naming it and why; one that comes back is logged once as well.
    """

    def __init__(self) -> None:
        self._stuck: dict[str, str] = {}

    def review(self, problems: Mapping[str, str | None]) -> dict[str, str]:
        """The stuck parts of this review (name → problem); empty when all are alive."""
        stuck = {name: problem for name, problem in problems.items() if problem is not None}
        for name, problem in stuck.items():
            if name not in self._stuck:
                log.error("%s is stuck: %s; systemd watchdog pings withheld", name, problem)
        for name in self._stuck.keys() - stuck.keys():
            log.warning("%s is alive again; systemd watchdog pings resume", name)
        self._stuck = stuck
        return dict(stuck)


def status_line(
    *, online: int, cameras: int, outbox: int | None, viewers: int, stuck: Mapping[str, str]
) -> str:
    """The one line ``systemctl status`` shows: cameras, outbox, viewers, and what is stuck."""
    camera_part = f"{online} of {cameras} cameras online" if cameras else "no cameras"
    outbox_part = f"outbox {outbox} waiting" if outbox is not None else "outbox not read yet"
    viewer_part = f"{viewers} live viewer{'' if viewers == 1 else 's'}"
    line = f"{camera_part}, {outbox_part}, {viewer_part}"
    if stuck:
        parts = "; ".join(f"{name} ({why})" for name, why in stuck.items())
        line = f"STUCK: {parts} | {line}"
    return line.replace("\n", " ")


class SystemdNotifier:
    """Speaks the sd_notify protocol (READY, WATCHDOG, STOPPING, STATUS) without a library.

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
