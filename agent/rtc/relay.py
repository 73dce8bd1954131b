"""The camera's own H.264, relayed to live viewers without decoding or encoding it again.

For an RTSP camera without privacy masks the cheapest live video is the camera's stream as it
comes: PyAV demuxes the RTSP session (``-c copy``), and each access unit goes to the viewers as
it is. This is a second RTSP session to the camera: the capture thread keeps its own (OpenCV
decodes it for motion). An IP camera that allows a single session fails this open, and the hub
then falls back to encoding.

A camera cannot be asked for a keyframe, so a viewer that joins (or loses a picture) waits for
the camera's next one; SPS and PPS are put in front of every keyframe that comes without them
(many cameras send them only in the RTSP description).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av

from agent.errors import CameraError
from agent.rtc.fanout import TIME_BASE, AccessUnit

log = logging.getLogger(__name__)

_NAL_NON_IDR = 1
_NAL_IDR = 5
_NAL_SPS = 7
_NAL_PPS = 8
_START_CODE = b"\x00\x00\x00\x01"


@dataclass(frozen=True)
class StreamInfo:
    """What the camera sends: the codec's FFmpeg name and the picture size."""

    codec: str
    width: int
    height: int

    def describe(self) -> str:
        return f"{self.codec} {self.width}x{self.height}"


def nal_units(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The (type, unit) pairs of an Annex B byte stream, each unit without its start code."""
    starts: list[tuple[int, int]] = []  # (start code position, payload position)
    index = data.find(b"\x00\x00\x01")
    while index >= 0:
        code_start = index - 1 if index > 0 and data[index - 1] == 0 else index
        starts.append((code_start, index + 3))
        index = data.find(b"\x00\x00\x01", index + 3)
    for number, (_, payload) in enumerate(starts):
        end = starts[number + 1][0] if number + 1 < len(starts) else len(data)
        if payload < end:
            yield data[payload] & 0x1F, data[payload:end]


def parameter_sets(data: bytes) -> bytes:
    """The SPS and PPS units of an Annex B stream (the codec's extradata, or a keyframe), in
    Annex B; empty when there are none (an avcC extradata holds none in this form)."""
    return b"".join(
        _START_CODE + unit for kind, unit in nal_units(data) if kind in (_NAL_SPS, _NAL_PPS)
    )


class PictureAssembler:
    """Whole pictures from demuxed packets. A camera (or RTSP payloader) that repeats SPS/PPS
    before each slice of an IDR picture makes FFmpeg's parser cut the picture into several
    packets with one timestamp; sent apart, a browser would take the first part for the whole.
    So a keyframe is held until the next packet shows whether more of it follows."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pts: int | None = None

    def add(self, data: bytes, pts: int | None) -> Iterator[tuple[bytes, int]]:
        """The pictures (bytes, pts) that ``data`` completes; packets without pts are dropped
        unless they continue a held keyframe."""
        kinds = {kind for kind, _ in nal_units(data)}
        same_picture = self._pts is None or pts is None or pts == self._pts
        if self._parts and same_picture and _NAL_NON_IDR not in kinds:
            self._parts.append(data)
            self._pts = self._pts if self._pts is not None else pts
            return
        yield from self.flush()
        if _NAL_IDR in kinds:
            self._parts, self._pts = [data], pts
        elif pts is not None:
            yield data, pts

    def flush(self) -> Iterator[tuple[bytes, int]]:
        parts, pts = self._parts, self._pts
        self._parts, self._pts = [], None
        if parts and pts is not None:
            yield b"".join(parts), pts


class ParameterSets:
    """SPS and PPS for keyframes that come without them: the last ones seen in the stream, or
    else those of the RTSP description."""

    def __init__(self, described: bytes = b"") -> None:
        self._described = parameter_sets(described)
        self._in_band = b""

    def prepare(self, data: bytes) -> tuple[bytes, bool]:
        """``data`` with SPS/PPS in front if it is an IDR picture without them, and whether a
        viewer can start at it (an IDR picture whose parameter sets are known)."""
        kinds = {kind for kind, _ in nal_units(data)}
        if _NAL_IDR not in kinds:
            return data, False
        if _NAL_SPS in kinds:
            self._in_band = parameter_sets(data)
            return data, True
        known = self._in_band or self._described
        return known + data, bool(known)


class H264Relay:
    """The thread that relays one camera's RTSP H.264 to its viewers.

    In the relay thread: ``on_open`` once the stream is open (the hub checks codec and size),
    ``publish`` with each access unit, ``on_fail`` when the stream cannot be opened or is lost
    (the relay does not reconnect: the hub moves the viewers to an encoder), and ``on_exit``
    once, as the thread ends.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        publish: Callable[[AccessUnit], None],
        on_open: Callable[[StreamInfo], None],
        on_fail: Callable[[str], None],
        on_exit: Callable[[], None],
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self._url = url
        self._publish = publish
        self._on_open = on_open
        self._on_fail = on_fail
        self._on_exit = on_exit
        self._timeouts = (open_timeout, read_timeout)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.info: StreamInfo | None = None
        self.frames = 0

    def start(self) -> None:
        self._thread.start()

    def request_keyframe(self) -> None:
        """A camera relayed as it is makes keyframes on its own schedule only."""

    def stop(self) -> None:
        """Thread-safe: the thread ends at the next packet, or within the read timeout."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._relay()
        except CameraError as exc:
            if not self._stopping.is_set():
                log.warning("live relay %s: %s", self.name, exc)
                self._on_fail(str(exc))
        except Exception:
            log.exception("live relay %s failed", self.name)
            self._on_fail("relay failed")
        finally:
            log.info("live relay %s stopped after %d frames", self.name, self.frames)
            self._on_exit()

    def _open(self) -> av.container.InputContainer:
        try:
            return av.open(
                self._url,
                options={
                    "rtsp_transport": "tcp",
                    # The RTSP description names the codec and carries SPS/PPS: probing the
                    # stream for seconds would only delay the first picture.
                    "analyzeduration": "0",
                    "probesize": "32",
                },
                timeout=self._timeouts,
            )
        except (av.error.FFmpegError, OSError) as exc:
            raise CameraError(f"the camera's stream could not be opened: {exc}") from exc

    def _relay(self) -> None:
        container = self._open()
        try:
            if not container.streams.video:
                raise CameraError("the camera's stream has no video")
            stream = container.streams.video[0]
            context = stream.codec_context
            info = StreamInfo(codec=context.name, width=context.width, height=context.height)
            self.info = info
            log.info("live relay %s opened: %s", self.name, info.describe())
            self._on_open(info)
            if info.codec != "h264":
                return  # the hub encodes this camera instead
            parameters = ParameterSets(bytes(context.extradata or b""))
            self._relay_packets(container, stream, parameters)
            if not self._stopping.is_set():
                raise CameraError("the camera's stream ended")
        finally:
            container.close()

    def _relay_packets(
        self,
        container: av.container.InputContainer,
        stream: av.VideoStream,
        parameters: ParameterSets,
    ) -> None:
        scale = Fraction(stream.time_base or TIME_BASE) / TIME_BASE
        assembler = PictureAssembler()
        try:
            for packet in container.demux(stream):
                if self._stopping.is_set():
                    return
                if packet.size == 0:
                    continue
                pts = None if packet.pts is None else round(packet.pts * scale)
                for data, unit_pts in assembler.add(bytes(packet), pts):
                    self._send(*parameters.prepare(data), unit_pts)
        except (av.error.FFmpegError, OSError) as exc:
            raise CameraError(f"the camera's stream was lost: {exc}") from exc

    def _send(self, data: bytes, keyframe: bool, pts: int) -> None:
        packet = av.Packet(data)
        packet.pts = pts
        packet.dts = pts
        packet.time_base = TIME_BASE
        packet.is_keyframe = keyframe
        self.frames += 1
        self._publish(AccessUnit(packet, keyframe, time.monotonic()))
