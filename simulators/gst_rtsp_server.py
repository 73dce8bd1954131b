"""An RTSP server that streams raw BGR frames read from stdin as H.264 (GStreamer RTSP server).

Runs under the system Python (/usr/bin/python3), where the GStreamer introspection bindings live;
it imports nothing from the project. The parent process writes WIDTH*HEIGHT*3 bytes per frame to
stdin at any pace; a feeder pushes the newest complete frame into the pipeline at --fps, so a slow
or bursty writer never delays or queues the stream. End of stdin (the parent died or closed it)
stops the server. Prints ``READY <url>`` on stdout once it listens.

    python3 simulators/gst_rtsp_server.py --port 8554 --path /cam --size 640x480 --fps 15
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from fractions import Fraction

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


class LatestFrame:
    """The newest complete frame from stdin; the reader thread overwrites, feeders copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: bytes | None = None
        self.ready = threading.Event()

    def put(self, frame: bytes) -> None:
        with self._lock:
            self._frame = frame
        self.ready.set()

    def get(self) -> bytes | None:
        with self._lock:
            return self._frame


def read_frames(stream, frame_size: int, latest: LatestFrame, loop: GLib.MainLoop) -> None:
    buffer = bytearray(frame_size)
    view = memoryview(buffer)
    while True:
        filled = 0
        while filled < frame_size:
            count = stream.readinto(view[filled:])
            if not count:
                # The parent is gone: a camera without a picture source has nothing to serve.
                GLib.idle_add(loop.quit)
                return
            filled += count
        latest.put(bytes(buffer))


class Feeder:
    """Pushes the latest frame into one media's appsrc at a steady rate until the media stops."""

    def __init__(self, appsrc: Gst.Element, latest: LatestFrame, rate: Fraction) -> None:
        self._appsrc = appsrc
        self._latest = latest
        self._interval = 1.0 / float(rate)
        self._duration = int(Gst.SECOND / float(rate))
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, *_args: object) -> None:
        self._stopped.set()

    def _run(self) -> None:
        self._latest.ready.wait()
        index = 0
        next_due = time.monotonic()
        while not self._stopped.is_set():
            frame = self._latest.get()
            if frame is not None:
                buffer = Gst.Buffer.new_wrapped(frame)
                buffer.pts = index * self._duration
                buffer.duration = self._duration
                result = self._appsrc.emit("push-buffer", buffer)
                if result != Gst.FlowReturn.OK:
                    return
                index += 1
            next_due += self._interval
            delay = next_due - time.monotonic()
            if delay < -self._interval:
                # Fell behind (a loaded machine): skip ahead instead of bursting to catch up.
                next_due = time.monotonic()
            elif delay > 0:
                self._stopped.wait(delay)


def pipeline_description(width: int, height: int, rate: Fraction) -> str:
    key_interval = max(1, round(float(rate)))  # one keyframe a second: quick (re)joins
    return (
        "( appsrc name=src is-live=true format=time block=false "
        f"caps=video/x-raw,format=BGR,width={width},height={height},"
        f"framerate={rate.numerator}/{rate.denominator} "
        "! queue leaky=downstream max-size-buffers=2 "
        "! videoconvert ! video/x-raw,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={key_interval} "
        "bitrate=2000 "
        "! video/x-h264,profile=baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )


# Element → Debian package that provides it.
REQUIRED_ELEMENTS = {
    "appsrc": "gstreamer1.0-plugins-base",
    "videoconvert": "gstreamer1.0-plugins-base",
    "x264enc": "gstreamer1.0-plugins-ugly",
    "rtph264pay": "gstreamer1.0-plugins-good",
}


def missing_elements() -> list[str]:
    return [
        f"{element} ({package})"
        for element, package in REQUIRED_ELEMENTS.items()
        if Gst.ElementFactory.find(element) is None
    ]


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--size", type=parse_size, default=(640, 480))
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    width, height = args.size
    rate = Fraction(args.fps).limit_denominator(1001)
    path = args.path if args.path.startswith("/") else "/" + args.path

    Gst.init(None)
    missing = missing_elements()
    if missing:
        print(f"missing GStreamer elements: {', '.join(missing)}", file=sys.stderr, flush=True)
        return 3
    loop = GLib.MainLoop()
    latest = LatestFrame()

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline_description(width, height, rate))
    # One encoder shared by every client, like a real camera.
    factory.set_shared(True)

    def configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name_recurse_up("src")
        feeder = Feeder(appsrc, latest, rate)
        media.connect("unprepared", feeder.stop)
        feeder.start()

    factory.connect("media-configure", configure)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(path, factory)
    if not server.attach(None):
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 2

    reader = threading.Thread(
        target=read_frames, args=(sys.stdin.buffer, width * height * 3, latest, loop), daemon=True
    )
    reader.start()
    print(f"READY rtsp://{args.host}:{args.port}{path}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
