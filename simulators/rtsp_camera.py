"""A simulated IP camera: a synthetic scene served over real RTSP (H.264) on 127.0.0.1.

The scene is rendered here (project Python, numpy) and piped as raw BGR frames to
``gst_rtsp_server.py``, which runs under the system Python where GStreamer's RTSP server
bindings live. Tests and benchmarks use :class:`RtspCamera`; by hand:

    python -m simulators.rtsp_camera --scene walking_person --port 8554 --path /cam \\
        --size 640x480 --fps 15
"""

from __future__ import annotations

import argparse
import contextlib
import select
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

import numpy as np

from simulators.scenes import SCENES, make_scene

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")
TYPELIB_NAME = "GstRtspServer-1.0.typelib"
TYPELIB_DIRS = (
    Path("/usr/lib/x86_64-linux-gnu/girepository-1.0"),
    Path("/usr/lib/aarch64-linux-gnu/girepository-1.0"),
    Path("/usr/lib/arm-linux-gnueabihf/girepository-1.0"),
    Path("/usr/lib/girepository-1.0"),
)


def rtsp_server_available() -> bool:
    """True when the system Python and GStreamer's RTSP server bindings are installed."""
    if not Path(SYSTEM_PYTHON).exists():
        return False
    return any((folder / TYPELIB_NAME).exists() for folder in TYPELIB_DIRS)


class RtspCameraError(RuntimeError):
    """The simulated camera could not start."""


class RtspCamera:
    """A scene streamed at ``rtsp://127.0.0.1:PORT/PATH``; start() and stop() may be repeated
    (a test stops it to play a dead camera and starts it again on the same port)."""

    def __init__(
        self,
        port: int,
        scene: str = "walking_person",
        size: tuple[int, int] = (640, 480),
        fps: float = 15.0,
        *,
        path: str = "/cam",
        seed: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        if scene not in SCENES:
            raise ValueError(f"unknown scene {scene!r}; known scenes: {', '.join(sorted(SCENES))}")
        self.port = port
        self.scene_name = scene
        self.size = size
        self.fps = fps
        self.path = path if path.startswith("/") else "/" + path
        self.seed = seed
        self.host = host
        self._process: subprocess.Popen[bytes] | None = None
        self._renderer: threading.Thread | None = None
        self._stopping = threading.Event()
        self._index = 0  # the scene keeps going across restarts, like a real camera's view

    @property
    def url(self) -> str:
        return f"rtsp://{self.host}:{self.port}{self.path}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and the renderer; returns once the server listens."""
        if self.running:
            return
        width, height = self.size
        command = [
            SYSTEM_PYTHON,
            str(SERVER_SCRIPT),
            "--port", str(self.port),
            "--path", self.path,
            "--size", f"{width}x{height}",
            "--fps", repr(self.fps),
            "--host", self.host,
        ]  # fmt: skip
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._process = process
        self._stopping.clear()
        self._renderer = threading.Thread(
            target=self._render, args=(process,), name=f"rtsp-camera-{self.port}", daemon=True
        )
        self._renderer.start()
        try:
            self._wait_ready(process, timeout)
        except RtspCameraError:
            self.stop()
            raise

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RtspCameraError(f"RTSP server exited with code {process.returncode}")
            readable, _, _ = select.select([process.stdout], [], [], 0.1)
            if readable:
                line = process.stdout.readline().decode(errors="replace")
                if line.startswith("READY"):
                    return
        raise RtspCameraError(f"RTSP server did not listen on port {self.port} within {timeout} s")

    def _render(self, process: subprocess.Popen[bytes]) -> None:
        width, height = self.size
        scene = make_scene(self.scene_name, width, height, seed=self.seed, fps=self.fps)
        interval = 1.0 / self.fps
        next_due = time.monotonic()
        sink = process.stdin
        assert sink is not None
        while not self._stopping.is_set():
            index = self._index
            if scene.num_frames is not None:
                index %= scene.num_frames
            image, _truth = scene.render(index)
            frame = np.ascontiguousarray(image, dtype=np.uint8)
            try:
                sink.write(frame.tobytes())
                sink.flush()
            except (BrokenPipeError, ValueError, OSError):
                return  # the server is gone; stop() or the caller deals with it
            self._index += 1
            next_due += interval
            delay = next_due - time.monotonic()
            if delay < -interval:
                next_due = time.monotonic()
            elif delay > 0:
                self._stopping.wait(delay)

    def freeze(self) -> None:
        """Suspend the server process: connections stay open but nothing is sent or answered,
        like a camera whose firmware hung."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Resume a frozen server."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop renderer and server; the port is free again when this returns."""
        self._stopping.set()
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a frozen process would keep SIGTERM pending
            process.terminate()
        if self._renderer is not None:
            self._renderer.join(timeout)
            self._renderer = None
        if process is None:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> RtspCamera:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise argparse.ArgumentTypeError("size must look like 640x480")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a synthetic scene as an RTSP camera.")
    parser.add_argument("--scene", default="walking_person", choices=sorted(SCENES))
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--size", type=_size, default=(640, 480))
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not rtsp_server_available():
        parser.error("needs /usr/bin/python3 with gir1.2-gst-rtsp-server-1.0 and python3-gi")
    camera = RtspCamera(args.port, args.scene, args.size, args.fps, path=args.path, seed=args.seed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    camera.start()
    print(f"serving {args.scene} at {camera.url}", flush=True)
    try:
        while not stop.is_set() and camera.running:
            stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        camera.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
