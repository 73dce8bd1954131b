"""Live video cost: agent CPU and memory for 1, 4 and 8 viewers of one camera, time from offer
to first decoded frame, and relaying an RTSP camera's own H.264 against encoding it.

This process plays the agent: the camera's capture (``CameraWorker``, as the agent runs it for
motion), the ``VideoHub`` and one aiortc peer connection per viewer, answering offers the way
the web layer does (sendonly, H.264 only, keyframe requests bound). The viewers are aiortc peer
connections in a child process, so their decoding is not counted; offers and answers cross a
pipe. CPU is this process's user + system time (every thread: capture, encoders, relays,
aiortc) over the measured window, as % of one core; each path also gets a row with no viewer,
the camera alone, so the difference is what live video costs. The RTSP camera simulator runs
in a process of its own and is not counted either.

Paths: ``sim`` (a ``sim://`` camera, encoded once per tier), ``rtsp-encode`` (an RTSP camera
encoded from the capture) and ``rtsp-relay`` (the same camera's packets relayed). Then the two
ways to drive an encoder off the loop (a thread per encoder, or ``asyncio.to_thread`` per
frame) are compared with no viewer at all.

``agent-sim`` drives the real agent instead (``python -m agent run`` with one ``sim://``
camera, MQTT off): the viewers sign in as an officer and POST their offers to
``/api/live/cam/offer``, and the CPU and RSS are those of the agent's process
(``/proc/<pid>/stat``), with motion detection and the web server in it.

    .venv/bin/python bench/rtc.py
    .venv/bin/python bench/rtc.py --viewers 1,4 --seconds 5 --paths sim
    .venv/bin/python bench/rtc.py --paths agent-sim --no-drivers
    .venv/bin/python bench/rtc.py --call        # one family call instead (bench/rtc_call.py)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from agent.camera.capture import CameraWorker
from agent.camera.pictures import CameraPictures
from agent.camera.slot import FrameSlot
from agent.config import CameraConfig, RtcConfig, ViewerCaps
from agent.motion.regions import PrivacyMasker
from agent.rtc.encoder import FrameEncoder, TierEncoder
from agent.rtc.fanout import PacketTrack
from agent.rtc.video import LiveCamera, VideoHub
from simulators.rtsp_camera import rtsp_server_available

TIER = "vga"
SIZE = "640x480"
FPS = 10.0


# -- measuring --------------------------------------------------------------------------------


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


@dataclass
class Row:
    path: str
    viewers: int
    cpu_percent: float
    rss_mb: float
    fps_min: float = math.nan
    fps_mean: float = math.nan
    first_frame_cold: float = math.nan  # the first viewer: the producer starts for it
    first_frame_warm: list[float] = field(default_factory=list)  # joining a running producer
    producers: str = ""
    stream_kbps: float = math.nan  # what each viewer is sent
    viewer_cpu_percent: float = math.nan  # the viewers' process, for whether it kept up


def _producers(hub: VideoHub) -> list[dict[str, Any]]:
    stats = hub.stats()["cam"]
    assert isinstance(stats, dict)
    encoders = stats["encoders"]
    assert isinstance(encoders, dict)
    found = [{"kind": "encoder", **figures} for figures in encoders.values()]
    if stats["relay"] is not None:
        found.append({"kind": "relay", **stats["relay"]})
    return found


def _describe(producers: list[dict[str, Any]]) -> str:
    kinds = [p["kind"] for p in producers]
    return ", ".join(f"{kinds.count(k)} {k}" for k in ("encoder", "relay") if k in kinds) or "none"


# -- the viewers' process --------------------------------------------------------------------


def viewer_process(conn: Connection) -> None:
    asyncio.run(_viewers(conn))


async def _viewers(conn: Connection) -> None:
    """Open viewers on command, each waiting for its first decoded picture; count pictures."""
    peers: list[RTCPeerConnection] = []
    readers: list[asyncio.Task[None]] = []
    counts: list[int] = []
    while True:
        command = await asyncio.to_thread(conn.recv)
        if command["cmd"] == "open":
            firsts: list[float] = []
            http: dict[str, Any] | None = command.get("http")
            for _ in range(command["n"]):
                firsts.append(await _open_viewer(conn, http, peers, readers, counts))
            conn.send({"ready": firsts})
        elif command["cmd"] == "count":
            conn.send({"frames": list(counts), "cpu": time.process_time()})
        elif command["cmd"] == "close":
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for peer in peers:
                await peer.close()
            peers.clear()
            readers.clear()
            counts.clear()
            conn.send({"closed": True})
        else:
            return


async def _open_viewer(
    conn: Connection,
    http: dict[str, Any] | None,
    peers: list[RTCPeerConnection],
    readers: list[asyncio.Task[None]],
    counts: list[int],
) -> float:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    index = len(counts)
    counts.append(0)
    first: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def read(track: MediaStreamTrack) -> None:
        while True:
            await track.recv()
            counts[index] += 1
            if not first.done():
                first.set_result(time.monotonic())

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        readers.append(asyncio.create_task(read(track)))

    started = time.monotonic()
    await pc.setLocalDescription(await pc.createOffer())
    if http is None:
        conn.send({"offer": pc.localDescription.sdp})
        answer = await asyncio.to_thread(conn.recv)
    else:
        answer = await asyncio.to_thread(_post_offer, http, pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    peers.append(pc)
    return await asyncio.wait_for(first, 30) - started


def _post_offer(http: dict[str, Any], sdp: str) -> dict[str, Any]:
    """The web UI's signaling: POST the offer as a signed-in officer, get the answer."""
    import httpx

    response = httpx.post(
        f"{http['url']}/api/live/{http['camera']}/offer",
        json={"sdp": sdp, "type": "offer", "tier": TIER},
        cookies=http["cookies"],
        headers={"X-CSRF-Token": http["token"]},
        timeout=30,
    )
    if not response.is_success:
        raise SystemExit(f"offer refused: {response.status_code} {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


# -- the agent's side -----------------------------------------------------------------------------


async def _ask(conn: Connection, message: dict[str, Any]) -> dict[str, Any]:
    conn.send(message)
    reply: dict[str, Any] = await asyncio.to_thread(conn.recv)
    return reply


async def _answer(hub: VideoHub, sdp: str) -> RTCPeerConnection:
    """What the web layer does with an offer: a sendonly H.264 track from the hub."""
    pc = RTCPeerConnection()
    track = hub.track("cam", TIER)
    transceiver = pc.addTransceiver(track, direction="sendonly")
    transceiver.setCodecPreferences(
        [
            codec
            for codec in RTCRtpSender.getCapabilities("video").codecs
            if codec.mimeType.lower() == "video/h264"
        ]
    )
    if isinstance(track, PacketTrack):
        track.bind_sender(transceiver.sender)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return pc


async def measure_path(
    path: str,
    camera: CameraConfig,
    conn: Connection,
    *,
    passthrough: bool,
    viewer_counts: list[int],
    seconds: float,
    warmup: float,
    bitrate_kbps: int,
) -> list[Row]:
    worker = CameraWorker(camera)
    worker.start()
    rows: list[Row] = []
    try:
        deadline = time.monotonic() + 60
        while worker.status().frames < 5:
            if time.monotonic() > deadline:
                raise SystemExit(f"{path}: no frames from the camera")
            await asyncio.sleep(0.1)
        pictures = CameraPictures(worker.slot, PrivacyMasker(camera.privacy_masks))
        hub = VideoHub(
            RtcConfig(tiers={TIER: _caps(bitrate_kbps)}),
            [LiveCamera(camera, worker.slot, pictures)],
            passthrough=passthrough,
            linger_seconds=0.0,
        )
        try:
            await asyncio.sleep(warmup)
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu = 100 * (time.process_time() - cpu0) / (time.monotonic() - wall0)
            rows.append(Row(path, 0, cpu, rss_mb(), producers="none"))
            for count in viewer_counts:
                rows.append(await _measure_viewers(path, hub, conn, count, seconds, warmup))
                print(f"  {path}: {count} viewer(s) done", file=sys.stderr, flush=True)
        finally:
            await hub.close()
    finally:
        await asyncio.to_thread(worker.stop)
    return rows


async def _measure_viewers(
    path: str, hub: VideoHub, conn: Connection, count: int, seconds: float, warmup: float
) -> Row:
    peers: list[RTCPeerConnection] = []
    conn.send({"cmd": "open", "n": count})
    while True:
        message = await asyncio.to_thread(conn.recv)
        if "offer" not in message:
            firsts: list[float] = message["ready"]
            break
        pc = await _answer(hub, message["offer"])
        peers.append(pc)
        conn.send({"sdp": pc.localDescription.sdp})
    try:
        await asyncio.sleep(warmup)
        before = await _ask(conn, {"cmd": "count"})
        bytes0 = sum(p["bytes"] for p in _producers(hub))
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, wall1 = time.process_time(), time.monotonic()
        after = await _ask(conn, {"cmd": "count"})
        producers = _producers(hub)
        elapsed = wall1 - wall0
        rates = [(b - a) / elapsed for a, b in zip(before["frames"], after["frames"], strict=True)]
        row = Row(
            path,
            count,
            100 * (cpu1 - cpu0) / (wall1 - wall0),
            rss_mb(),
            fps_min=min(rates),
            fps_mean=statistics.mean(rates),
            first_frame_cold=firsts[0],
            first_frame_warm=firsts[1:],
            producers=_describe(producers),
            # One producer in the steady state: its stream is what every viewer gets.
            stream_kbps=8 * (sum(p["bytes"] for p in producers) - bytes0) / elapsed / 1000,
            viewer_cpu_percent=100 * (after["cpu"] - before["cpu"]) / elapsed,
        )
    finally:
        await _ask(conn, {"cmd": "close"})
        for pc in peers:
            await pc.close()
        await hub.wait_idle()
    return row


# -- encoder drivers: a thread per encoder, or asyncio.to_thread per frame ---------------------


def _replayed_camera(stop: threading.Event) -> tuple[FrameSlot, threading.Thread]:
    """A slot fed with pre-rendered scene frames at 10 fps: no renderer in the figures."""
    from simulators.scenes import make_scene

    scene = make_scene("walking_person", 640, 480, seed=1, fps=FPS)
    images = [scene.render(index)[0] for index in range(50)]
    slot = FrameSlot()

    def feed() -> None:
        index = 0
        while not stop.wait(1 / FPS):
            slot.put(images[index % len(images)].copy(), time.time())
            index += 1

    return slot, threading.Thread(target=feed, name="bench-feed", daemon=True)


def _caps(bitrate_kbps: int) -> ViewerCaps:
    return ViewerCaps(width=640, height=480, fps=FPS, bitrate_kbps=bitrate_kbps)


async def measure_drivers(
    seconds: float, warmup: float, bitrate_kbps: int
) -> list[tuple[str, float]]:
    caps = _caps(bitrate_kbps)
    stop = threading.Event()
    slot, feeder = _replayed_camera(stop)
    pictures = CameraPictures(slot, PrivacyMasker([]))
    feeder.start()
    results: list[tuple[str, float]] = []

    async def window() -> float:
        await asyncio.sleep(warmup)
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        return 100 * (time.process_time() - cpu0) / (time.monotonic() - wall0)

    try:
        results.append(("camera replay only", await window()))

        exited = threading.Event()
        encoder = TierEncoder(
            "bench-encode", slot, pictures, caps, publish=lambda _unit: None, on_exit=exited.set
        )
        encoder.start()
        results.append(("thread per encoder", await window()))
        encoder.stop()
        encoder.join()

        async def per_frame() -> None:
            frames = FrameEncoder(caps)
            seq, first = 0, None
            while True:
                frame = await slot.next_frame(seq)
                seq = frame.seq
                first = first if first is not None else frame.monotonic
                pts = round((frame.monotonic - first) * 90_000)
                await asyncio.to_thread(frames.encode, pictures.masked(frame), pts)

        task = asyncio.create_task(per_frame())
        results.append(("asyncio.to_thread per frame", await window()))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        stop.set()
        feeder.join()
    return results


def measure_encoder_settings(frames: int = 100) -> list[tuple[str, str, float]]:
    """CPU ms per frame of the yuv420p conversion and of libx264 per preset and thread count."""
    import av
    import cv2

    from simulators.scenes import make_scene

    results: list[tuple[str, str, float]] = []
    for width, height in ((640, 480), (1280, 720)):
        scene = make_scene("walking_person", width, height, seed=1, fps=FPS)
        images = [scene.render(index)[0] for index in range(frames)]
        size = f"{width}x{height}"

        def per_frame(work: Callable[[Any], object], images: list[Any] = images) -> float:
            start = time.process_time()
            for image in images:
                work(image)
            return 1000 * (time.process_time() - start) / len(images)

        opencv = per_frame(lambda i: cv2.cvtColor(i, cv2.COLOR_BGR2YUV_I420))
        results.append((size, "yuv420p by OpenCV", opencv))
        swscale = per_frame(
            lambda i: av.VideoFrame.from_ndarray(i, format="bgr24").reformat(format="yuv420p")
        )
        results.append((size, "yuv420p by PyAV (swscale)", swscale))
        caps = ViewerCaps(width=width, height=height, fps=FPS, bitrate_kbps=1500)
        for preset in ("ultrafast", "superfast"):
            for threads in (1, 0):
                encoder = FrameEncoder(caps, preset=preset, threads=threads)
                stamps = iter(range(0, 10**9, 9000))
                cost = per_frame(lambda i, e=encoder, s=stamps: e.encode(i, next(s)))  # type: ignore[misc]
                label = f"convert + libx264 {preset}, {'1 thread' if threads else 'x264 threads'}"
                results.append((size, label, cost))
    return results


# -- the real agent, driven through its web UI -----------------------------------------------------

_PASSWORD = "bench-password-2024"


def _process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


@contextlib.contextmanager
def running_agent(workdir: Path, source: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python -m agent run`` with one camera and the bench's tier; yields it and its URL."""
    import httpx

    port = _free_port()
    config = workdir / "config.toml"
    config.write_text(
        "[device]\n"
        'id = "bench-rtc"\n'
        f'data_dir = "{workdir / "data"}"\n'
        "[web]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        "[mqtt]\n"
        "enabled = false\n"
        "[rtc]\n"
        "max_viewers_per_camera = 8\n"
        "max_viewers = 8\n"
        f"[rtc.tiers.{TIER}]\n"
        f"width = 640\nheight = 480\nfps = {FPS}\nbitrate_kbps = 800\n"
        "[[cameras]]\n"
        'id = "cam"\n'
        f'source = "{source}"\n'
        f'resolution = "{SIZE}"\n'
        f"fps = {FPS}\n"
    )
    root = Path(__file__).resolve().parent.parent
    base = [sys.executable, "-m", "agent"]
    subprocess.run(
        [*base, "user", "add", "--config", str(config), "--username", "bench.police",
         "--role", "police"],
        input=_PASSWORD + "\n", text=True, cwd=root, check=True, capture_output=True,
    )  # fmt: skip
    log = (workdir / "agent.log").open("wb")
    process = subprocess.Popen(
        [*base, "run", "--config", str(config)], cwd=root, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the agent did not start (log: {workdir / 'agent.log'})")
            time.sleep(0.2)
        yield process, url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _sign_in(url: str) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=url, timeout=10) as client:
        token = client.get("/api/session").json()["csrf_token"]
        response = client.post(
            "/api/session",
            json={"username": "bench.police", "password": _PASSWORD},
            headers={"X-CSRF-Token": token},
        )
        if response.status_code != 200:
            raise SystemExit(f"sign-in refused: {response.status_code} {response.text}")
        token = client.get("/api/session").json()["csrf_token"]
        return {"url": url, "camera": "cam", "cookies": dict(client.cookies), "token": token}


async def measure_agent(
    path: str, source: str, conn: Connection, viewer_counts: list[int], seconds: float,
    warmup: float,
) -> list[Row]:  # fmt: skip
    """The whole agent process (capture, motion, web server, hub, peers) per viewer count."""
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        running_agent(Path(folder), source) as (
            process,
            url,
        ),
    ):
        http = _sign_in(url)

        async def window() -> tuple[float, float]:
            cpu0, wall0 = _process_cpu_seconds(process.pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, wall1 = _process_cpu_seconds(process.pid), time.monotonic()
            return 100 * (cpu1 - cpu0) / (wall1 - wall0), wall1 - wall0

        await asyncio.sleep(warmup)
        cpu, _ = await window()
        rows.append(Row(path, 0, cpu, _process_rss_mb(process.pid), producers="none"))
        for count in viewer_counts:
            ready = await _ask(conn, {"cmd": "open", "n": count, "http": http})
            firsts: list[float] = ready["ready"]
            await asyncio.sleep(warmup)
            before = await _ask(conn, {"cmd": "count"})
            cpu, elapsed = await window()
            after = await _ask(conn, {"cmd": "count"})
            rates = [
                (b - a) / elapsed for a, b in zip(before["frames"], after["frames"], strict=True)
            ]
            rows.append(
                Row(
                    path,
                    count,
                    cpu,
                    _process_rss_mb(process.pid),
                    fps_min=min(rates),
                    fps_mean=statistics.mean(rates),
                    first_frame_cold=firsts[0],
                    first_frame_warm=firsts[1:],
                    producers="–",
                    viewer_cpu_percent=100 * (after["cpu"] - before["cpu"]) / elapsed,
                )
            )
            await _ask(conn, {"cmd": "close"})
            await asyncio.sleep(3.0)  # the agent sees the peers close and stops the encoder
            print(f"  {path}: {count} viewer(s) done", file=sys.stderr, flush=True)
    return rows


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- set-up and report ----------------------------------------------------------------------------


@contextlib.contextmanager
def rtsp_camera() -> Iterator[str]:
    """The RTSP camera simulator in its own process, so its CPU is not counted here."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    command = [
        sys.executable, "-m", "simulators.rtsp_camera", "--scene", "walking_person",
        "--port", str(port), "--size", SIZE, "--fps", str(FPS),
    ]  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the RTSP camera simulator did not start")
            time.sleep(0.05)
        yield f"rtsp://127.0.0.1:{port}/cam"
    finally:
        process.terminate()
        process.wait(10)


def _camera(source: str) -> CameraConfig:
    return CameraConfig(id="cam", source=source, fps=FPS, resolution=SIZE, open_timeout_seconds=10)


async def run(args: argparse.Namespace) -> tuple[list[Row], list[tuple[str, float]]]:
    viewer_counts = [int(n) for n in args.viewers.split(",") if n.strip()]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    context = multiprocessing.get_context("spawn")
    agent_end, viewer_end = context.Pipe()
    viewers = context.Process(target=viewer_process, args=(viewer_end,), daemon=True)
    viewers.start()
    rows: list[Row] = []
    options = {
        "viewer_counts": viewer_counts,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "bitrate_kbps": args.bitrate,
    }
    try:
        for path in paths:
            if path == "agent-sim":
                rows += await measure_agent(
                    path,
                    "sim://walking_person?seed=1",
                    agent_end,
                    viewer_counts,
                    args.seconds,
                    args.warmup,
                )
            elif path == "sim":
                camera = _camera("sim://walking_person?seed=1")
                rows += await measure_path(path, camera, agent_end, passthrough=False, **options)  # type: ignore[arg-type]
            elif path in ("rtsp-encode", "rtsp-relay"):
                if not rtsp_server_available():
                    print(f"{path}: skipped (GStreamer RTSP server bindings missing)")
                    continue
                with rtsp_camera() as url:
                    rows += await measure_path(
                        path,
                        _camera(url),
                        agent_end,
                        passthrough=path == "rtsp-relay",
                        **options,  # type: ignore[arg-type]
                    )
            else:
                raise SystemExit(f"unknown path {path!r} (sim, rtsp-encode, rtsp-relay, agent-sim)")
    finally:
        agent_end.send({"cmd": "exit"})
        viewers.join(10)
    drivers = await measure_drivers(args.seconds, args.warmup, args.bitrate) if args.drivers else []
    return rows, drivers


def report_encoder_settings(results: list[tuple[str, str, float]]) -> None:
    print()
    print("| picture | step | CPU ms / frame |")
    print("|---|---|---:|")
    for size, step, cost in results:
        print(f"| {size} | {step} | {cost:.2f} |")


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{1000 * value:.0f}"


def _num(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def report(args: argparse.Namespace, rows: list[Row], drivers: list[tuple[str, float]]) -> None:
    print(
        f"live video, one {SIZE} {FPS:g} fps camera, tier {TIER} 640x480/{FPS:g} fps/"
        f"{args.bitrate} kbps, "
        f"{args.seconds:g} s per row after {args.warmup:g} s, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print()
    print(
        "| path | viewers | producers | stream kbps | agent CPU % of one core | live video share "
        "| RSS MB | fps per viewer (min / mean) | viewers' process CPU % | first frame ms (first "
        "viewer) | first frame ms (others, median / max) |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---|---:|---:|---|")
    baseline: dict[str, float] = {}
    for row in rows:
        if row.viewers == 0:
            baseline[row.path] = row.cpu_percent
        share = row.cpu_percent - baseline.get(row.path, math.nan)
        warm = (
            f"{_ms(statistics.median(row.first_frame_warm))} / {_ms(max(row.first_frame_warm))}"
            if row.first_frame_warm
            else "–"
        )
        fps = "–" if math.isnan(row.fps_min) else f"{row.fps_min:.1f} / {row.fps_mean:.1f}"
        print(
            f"| {row.path} | {row.viewers} | {row.producers} | {_num(row.stream_kbps, 0)} "
            f"| {row.cpu_percent:.1f} | {'–' if row.viewers == 0 else f'{share:+.1f}'} "
            f"| {row.rss_mb:.0f} | {fps} | {_num(row.viewer_cpu_percent, 0)} "
            f"| {_ms(row.first_frame_cold)} | {warm} |"
        )
    if drivers:
        print()
        print("| encoder driver (no viewer, replayed 640x480 10 fps frames) | CPU % of one core |")
        print("|---|---:|")
        for name, cpu in drivers:
            print(f"| {name} | {cpu:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="1,4,8")
    parser.add_argument("--paths", default="sim,rtsp-encode,rtsp-relay")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--bitrate", type=int, default=800, help="the tier's kbps")
    parser.add_argument(
        "--no-drivers",
        dest="drivers",
        action="store_false",
        help="skip the encoder driver and encoder settings measurements",
    )
    parser.add_argument(
        "--call",
        action="store_true",
        help="measure one family video call instead (bench/rtc_call.py, its own options)",
    )
    args, rest = parser.parse_known_args()
    if args.call:
        # The call's bench drives two Chromium pages through the real agent: its own script.
        import rtc_call  # bench/ is this script's folder, first on the path

        sys.argv = [str(Path(__file__).with_name("rtc_call.py")), *rest]
        rtc_call.main()
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    rows, drivers = asyncio.run(run(args))
    report(args, rows, drivers)
    if args.drivers:
        report_encoder_settings(measure_encoder_settings())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
