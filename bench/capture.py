"""Capture cost per frame: CPU milliseconds per frame and CPU % of one core, per source and size.

Measures the CameraWorker of one camera at a time, in this process only:

- ``sim``: a synthetic scene rendered in the capture thread (rendering is the sim camera's cost);
- ``rtsp``: the RTSP camera simulator runs as a separate process (scene rendering, H.264
  encoding and the server are not counted); the figure is RTSP receive, H.264 decode, colour
  conversion and slot publishing, including FFmpeg's decoder threads.

    .venv/bin/python bench/capture.py            # 640x480 and 1280x720, 15 fps, 10 s each
    .venv/bin/python bench/capture.py --seconds 5 --sizes 640x480
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.camera.capture import CameraState, CameraWorker
from agent.config import CameraConfig
from simulators.rtsp_camera import rtsp_server_available


@dataclass(frozen=True)
class Result:
    source: str
    size: str
    frames: int
    seconds: float
    cpu_seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.cpu_seconds / self.frames if self.frames else float("nan")

    @property
    def core_percent(self) -> float:
        return 100.0 * self.cpu_seconds / self.seconds


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def measure(kind: str, source: str, size: str, fps: float, seconds: float) -> Result:
    config = CameraConfig(
        id=f"bench-{kind}", source=source, fps=fps, resolution=size, open_timeout_seconds=10
    )
    worker = CameraWorker(config)
    worker.start()
    try:
        _wait(lambda: worker.status().frames >= 5, 60, f"{kind} frames")
        time.sleep(1.0)  # let decoder threads and caches settle
        frames0, cpu0, wall0 = worker.status().frames, time.process_time(), time.monotonic()
        time.sleep(seconds)
        frames1, cpu1, wall1 = worker.status().frames, time.process_time(), time.monotonic()
        if worker.status().state is not CameraState.ONLINE:
            raise SystemExit(f"{kind} camera went {worker.status().state} during the run")
    finally:
        worker.stop()
    return Result(kind, size, frames1 - frames0, wall1 - wall0, cpu1 - cpu0)


@contextlib.contextmanager
def rtsp_camera(scene: str, size: str, fps: float) -> Iterator[str]:
    """The RTSP camera simulator in its own process, so its CPU is not counted here."""
    port = free_port()
    command = [
        sys.executable, "-m", "simulators.rtsp_camera",
        "--scene", scene, "--port", str(port), "--size", size, "--fps", str(fps),
    ]  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL)
    try:
        _wait(lambda: port_open(port), 30, "the RTSP camera simulator")
        yield f"rtsp://127.0.0.1:{port}/cam"
    finally:
        process.terminate()
        process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--sizes", default="640x480,1280x720")
    parser.add_argument("--scene", default="walking_person")
    parser.add_argument("--sources", default="sim,rtsp")
    args = parser.parse_args()
    sizes = [size.strip() for size in args.sizes.split(",") if size.strip()]
    kinds = [kind.strip() for kind in args.sources.split(",") if kind.strip()]

    results: list[Result] = []
    for kind in kinds:
        for size in sizes:
            if kind == "sim":
                results.append(
                    measure(kind, f"sim://{args.scene}?seed=1", size, args.fps, args.seconds)
                )
            elif kind == "rtsp":
                if not rtsp_server_available():
                    print("rtsp: skipped (GStreamer RTSP server bindings missing)")
                    continue
                with rtsp_camera(args.scene, size, args.fps) as url:
                    results.append(measure(kind, url, size, args.fps, args.seconds))
            else:
                raise SystemExit(f"unknown source kind {kind!r} (sim, rtsp)")

    print(
        f"capture cost, {args.fps:g} fps, {args.seconds:g} s per row, scene {args.scene}, "
        f"{platform.machine()}, Python {platform.python_version()}"
    )
    print()
    print("| source | size | frames | fps | CPU ms / frame | CPU % of one core |")
    print("|---|---|---:|---:|---:|---:|")
    for result in results:
        print(
            f"| {result.source} | {result.size} | {result.frames} | {result.fps:.1f} "
            f"| {result.ms_per_frame:.2f} | {result.core_percent:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
