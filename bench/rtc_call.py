"""What one family video call costs the agent: CPU (% of one core) and RSS of the real agent
process (``python -m agent run``) while two headless Chromium pages with fake cameras and
microphones — the kiosk's call screen and a family member's phone page — talk through it.

The agent decodes each side's picture and sound and encodes them again for the other side, so
the figure is two video decodes, two video encodes and the same for Opus, plus DTLS/SRTP. CPU is
the agent's user + system time (all its threads, from /proc) over the window, idle first (both
pages open, listening for calls) and then during the call; the browsers run in processes of
their own and are not counted. A second table compares the video encoders aiortc offers on one
640x480 frame sequence (why calls prefer VP8).

    .venv/bin/python bench/rtc_call.py
    .venv/bin/python bench/rtc_call.py --seconds 10
"""

from __future__ import annotations

import argparse
import fractions
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-call-password-7"
FAMILY_USER = "chen.family"
PIN = "730519"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
PEER_SPY = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__callPeers = [];
  const Spy = function (config) {
    const pc = new Original(config);
    window.__callPeers.push(pc);
    return pc;
  };
  Spy.prototype = Original.prototype;
  Object.setPrototypeOf(Spy, Original);
  window.RTCPeerConnection = Spy;
})();
"""
INBOUND = """
async () => {
  const pc = window.__callPeers[window.__callPeers.length - 1];
  if (!pc) { return null; }
  const result = { frames: 0, width: 0, height: 0, energy: 0, codec: "" };
  const stats = await pc.getStats();
  stats.forEach((r) => {
    if (r.type !== "inbound-rtp") { return; }
    if (r.kind === "video") {
      result.frames = r.framesDecoded || 0;
      result.width = r.frameWidth || 0;
      result.height = r.frameHeight || 0;
      const codec = stats.get(r.codecId);
      result.codec = codec ? codec.mimeType : "";
    }
    if (r.kind === "audio") { result.energy = r.totalAudioEnergy || 0; }
  });
  return result;
}
"""
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prepare(data_dir: Path) -> int:
    """A family account linked to a household through a real invite; the household's id."""
    from agent.accounts import AccountStore, Role
    from agent.audit import AuditLog
    from agent.store.database import Database
    from agent.store.media import database_path
    from agent.village.family import FamilyService

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = Database(database_path(data_dir))
    try:
        audit = AuditLog(database)
        accounts = AccountStore(database)
        family = FamilyService(database, audit, accounts, camera_ids=[])
        accounts.create_user(FAMILY_USER, Role.FAMILY.value, PASSWORD)
        household = family.create_household("陈家", PIN, [], actor="bench")
        invite = family.create_invite(household.id, PIN, address="127.0.0.1", actor="bench")
        family.redeem(invite.code, FAMILY_USER, address="127.0.0.1")
        return household.id
    finally:
        database.close()


def start_agent(base: Path, port: int) -> subprocess.Popen[bytes]:
    config = base / "config.toml"
    config.write_text('[device]\nid = "bench-call"\n\n[rtc]\nring_seconds = 60\n', "utf-8")
    log = (base / "agent.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--config", str(config), "--port", str(port),
         "--data-dir", str(base / "data")],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the agent exited: {(base / 'agent.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the agent did not start")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of the main thread (the event loop: aiortc's RTP, RTCP, SRTP and jitter
    buffers in Python) and of all other threads (aiortc's decoder threads, the encoders in the
    loop's executor). Python does not name its threads for the OS, so this is the split /proc
    can tell."""
    result = {"event loop": 0.0, "other threads": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        name = "event loop" if task.name == str(pid) else "other threads"
        result[name] += (int(fields[11]) + int(fields[12])) / _TICKS
    return result


def window(
    pid: int, seconds: float, threads: dict[str, float] | None = None
) -> tuple[float, float]:
    """(CPU % of one core, RSS MB at the end) of ``pid`` over ``seconds``; ``threads`` gets
    each thread name's share."""
    cpu0, wall0, per0 = cpu_seconds(pid), time.monotonic(), thread_seconds(pid)
    time.sleep(seconds)
    cpu1, wall1, per1 = cpu_seconds(pid), time.monotonic(), thread_seconds(pid)
    if threads is not None:
        for name, total in per1.items():
            threads[name] = 100 * (total - per0.get(name, 0.0)) / (wall1 - wall0)
    return 100 * (cpu1 - cpu0) / (wall1 - wall0), rss_mb(pid)


def wait_for(page: Any, predicate: Any, what: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = page.evaluate(INBOUND)
        if stats and predicate(stats):
            return dict(stats)
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def measure_call(seconds: float) -> list[tuple[str, str]]:
    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-call-") as tmp:
        base = Path(tmp)
        household = prepare(base / "data")
        port = free_port()
        agent = start_agent(base, port)
        url = f"http://127.0.0.1:{port}"
        try:
            rows.append(("agent started, RSS", f"{rss_mb(agent.pid):.0f} MB"))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                pages = []
                for viewport in ({"width": 1024, "height": 600}, {"width": 360, "height": 740}):
                    context = browser.new_context(viewport=viewport, locale="zh-CN")
                    context.add_init_script(PEER_SPY)
                    pages.append(context.new_page())
                kiosk, phone = pages
                kiosk.goto(url + "/kiosk/calls")
                phone.goto(url + "/login?next=/family/calls")
                phone.fill("#username", FAMILY_USER)
                phone.fill("#password", PASSWORD)
                phone.click("form button[type=submit]")
                phone.wait_for_url("**/family/calls")
                time.sleep(2)
                cpu, rss = window(agent.pid, seconds)
                rows.append(("idle, both pages open", f"{cpu:.1f} % CPU, RSS {rss:.0f} MB"))

                phone.click(f'[data-call-to="kiosk"][data-household="{household}"]')
                kiosk.wait_for_selector("[data-call-incoming]:not([hidden])")
                kiosk.click("[data-call-answer]")
                for page, name in ((kiosk, "kiosk"), (phone, "phone")):
                    wait_for(page, lambda s: s["frames"] > 10 and s["energy"] > 0, name)
                time.sleep(2)  # past the first keyframes and bitrate ramp
                before = [page.evaluate(INBOUND) for page in pages]
                threads: dict[str, float] = {}
                cpu, rss = window(agent.pid, seconds, threads)
                after = [page.evaluate(INBOUND) for page in pages]
                rows.append(("one call", f"{cpu:.1f} % CPU, RSS {rss:.0f} MB"))
                busy = sorted(threads.items(), key=lambda item: -item[1])
                rows.append(
                    (
                        "  by thread",
                        ", ".join(f"{name} {share:.1f} %" for name, share in busy),
                    )
                )
                for name, first, last in zip(("kiosk", "phone"), before, after, strict=True):
                    fps = (last["frames"] - first["frames"]) / seconds
                    rows.append(
                        (
                            f"  {name} receives",
                            f"{last['codec']} {last['width']}x{last['height']} at {fps:.1f} fps",
                        )
                    )
                phone.click("[data-call-hangup]")
                kiosk.wait_for_selector("[data-call-view][hidden]", state="attached")
                time.sleep(2)
                cpu, rss = window(agent.pid, min(seconds, 5))
                rows.append(("after hang-up", f"{cpu:.1f} % CPU, RSS {rss:.0f} MB"))
                browser.close()
        finally:
            agent.terminate()
            agent.wait(30)
    return rows


def measure_encoders(frames: int = 150) -> list[tuple[str, str]]:
    """CPU time per 640x480 frame of aiortc's VP8 and H.264 encoders (their own settings), on
    a moving picture; x 15 fps gives the share of one core one direction of a call costs."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    base[:, :, 1] = np.linspace(0, 255, 640, dtype=np.uint8)  # some structure beside noise
    pictures = []
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(np.roll(base, index * 4, axis=1), format="bgr24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = index * 6000
        frame.time_base = fractions.Fraction(1, 90000)
        pictures.append(frame)
    rows = []
    for mime, parameters in (
        ("video/VP8", {}),
        ("video/H264", {"packetization-mode": "1", "profile-level-id": "42e01f"}),
    ):
        encoder = get_encoder(
            RTCRtpCodecParameters(
                mimeType=mime, clockRate=90000, payloadType=96, parameters=parameters
            )
        )
        started = time.process_time()
        size = 0
        for frame in pictures:
            payloads, _ = encoder.encode(frame)
            size += sum(len(payload) for payload in payloads)
        per_frame = (time.process_time() - started) / frames
        rows.append(
            (
                f"encode {mime} 640x480",
                f"{per_frame * 1000:.1f} ms CPU/frame = {per_frame * 15 * 100:.1f} % of a core "
                f"at 15 fps, {size * 8 * 15 / frames / 1000:.0f} kbit/s",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each window")
    args = parser.parse_args()
    print(f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")  # fmt: skip
    rows = measure_call(args.seconds) + measure_encoders()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
