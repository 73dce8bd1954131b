"""Family video calls between two headless Chromium pages (Debian's, fake camera and microphone):
the kiosk's call screen on 127.0.0.1 (the kiosk's own browser) and a family member's phone page.
Both talk only to the agent, which relays picture and sound between them.

Screenshots (kiosk-call-*.png at 1024x600, phone-call-*.png at 360x740) go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import IceServer
from tests.fixtures.media_browser import (
    PEER_SPY,
    RELAY_SPY,
    CallServer,
    calls_context,
    serve_calls,
    sign_in,
)
from tests.fixtures.servers import wait_until
from tests.fixtures.turn import TURN_PASSWORD, TURN_USER, TurnServer

pytestmark = pytest.mark.integration

KIOSK = {"width": 1024, "height": 600}
PHONE = {"width": 360, "height": 740}
FAMILY_USER = "chen.family"

# What the page's newest peer connection has received so far.
INBOUND = """
async () => {
  const pc = window.__callPeers[window.__callPeers.length - 1];
  if (!pc) { return null; }
  const result = { video: 0, energy: 0, state: pc.connectionState, codecs: [] };
  const stats = await pc.getStats();
  stats.forEach((report) => {
    if (report.type !== "inbound-rtp") { return; }
    if (report.kind === "video") { result.video = report.framesDecoded || 0; }
    if (report.kind === "audio") { result.energy = report.totalAudioEnergy || 0; }
    const codec = stats.get(report.codecId);
    if (codec) { result.codecs.push(codec.mimeType); }
  });
  return result;
}
"""
# Whether the page has closed every peer connection it made.
ALL_CLOSED = "() => window.__callPeers.every((pc) => pc.connectionState === 'closed')"


def open_page(browser: Any, viewport: dict[str, int], spy: str = PEER_SPY) -> Any:
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    context.add_init_script(spy)
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def shoot(page: Any, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"))


def inbound(page: Any) -> dict[str, Any]:
    """What the page's newest peer connection received (zeros before it has one)."""
    result = page.evaluate(INBOUND)
    return dict(result) if result else {"video": 0, "energy": 0.0, "state": "none", "codecs": []}


def media_rises(page: Any, what: str) -> None:
    """framesDecoded and totalAudioEnergy keep rising on ``page``."""
    wait_until(lambda: inbound(page)["video"] > 0, 30, f"a first frame at {what}", interval=0.2)
    first = inbound(page)
    wait_until(
        lambda: (
            (now := inbound(page))["video"] > first["video"] + 10
            and now["energy"] > first["energy"]
        ),
        30,
        f"video frames and audio energy rising at {what} (first {first})",
        interval=0.3,
    )


def pages_in_call(server: CallServer, browser: Any, spy: str = PEER_SPY) -> tuple[Any, Any]:
    kiosk = open_page(browser, KIOSK, spy)
    kiosk.goto(server.url("/kiosk/calls"))
    phone = open_page(browser, PHONE, spy)
    sign_in(phone, server.base_url, FAMILY_USER)
    return kiosk, phone


def phone_calls_kiosk(server: CallServer, kiosk: Any, phone: Any) -> None:
    household = server.call_parts.households[FAMILY_USER]
    phone.click(f'[data-call-to="kiosk"][data-household="{household.id}"]')
    kiosk.wait_for_selector("[data-call-incoming]:not([hidden])")
    kiosk.click("[data-call-answer]")
    kiosk.wait_for_selector("[data-call-view]:not([hidden])")
    phone.wait_for_function(
        "() => document.querySelector('[data-call-app]').dataset.callState === 'active'"
    )


def test_a_phone_calls_the_kiosk_and_both_see_and_hear_each_other(
    call_server: CallServer, media_chromium: Any, screenshots_dir: Path
) -> None:
    kiosk, phone = pages_in_call(call_server, media_chromium)
    shoot(kiosk, screenshots_dir, "kiosk-call-idle")
    household = call_server.call_parts.households[FAMILY_USER]
    phone.click(f'[data-call-to="kiosk"][data-household="{household.id}"]')
    kiosk.wait_for_selector("[data-call-incoming]:not([hidden])")
    assert FAMILY_USER in kiosk.inner_text("[data-call-who]")
    shoot(kiosk, screenshots_dir, "kiosk-call-ringing")
    for button in ("[data-call-answer]", "[data-call-decline]"):
        box = kiosk.locator(button).bounding_box()
        assert box and box["height"] >= 72 and box["width"] >= 160, (button, box)
    kiosk.click("[data-call-answer]")

    media_rises(kiosk, "the kiosk")
    media_rises(phone, "the phone")
    assert len(call_server.call_parts.peers.peers("call")) == 2
    shoot(kiosk, screenshots_dir, "kiosk-call-active")
    shoot(phone, screenshots_dir, "phone-call-active")

    # The phone hangs up: the kiosk's call ends with it.
    phone.click("[data-call-hangup]")
    kiosk.wait_for_selector("[data-call-view][hidden]", state="attached")
    kiosk.wait_for_function(ALL_CLOSED)
    assert "通话已结束" in kiosk.inner_text("[data-call-status]")
    wait_until(lambda: call_server.call_parts.peers.peers() == [], 10, "the agent's peers closed")
    assert call_server.call_parts.calls.live() == []
    kiosk.context.close()
    phone.context.close()


def test_the_kiosk_rings_from_whatever_page_its_screen_shows(
    call_server: CallServer, media_chromium: Any
) -> None:
    """The kiosk rests on its home page (where the idle return takes it); a call from a phone
    brings up the call screen with the ring."""
    kiosk = open_page(media_chromium, KIOSK)
    kiosk.goto(call_server.url("/"))
    assert kiosk.locator("body").get_attribute("data-kiosk-calls")
    phone = open_page(media_chromium, PHONE)
    sign_in(phone, call_server.base_url, FAMILY_USER)
    household = call_server.call_parts.households[FAMILY_USER]
    phone.click(f'[data-call-to="kiosk"][data-household="{household.id}"]')
    kiosk.wait_for_url("**/kiosk/calls")
    kiosk.wait_for_selector("[data-call-incoming]:not([hidden])")
    kiosk.click("[data-call-decline]")
    phone.wait_for_function(
        "() => document.querySelector('[data-call-app]').dataset.callState !== 'ringing'"
    )
    wait_until(lambda: call_server.call_parts.calls.live() == [], 10, "the call to end")
    kiosk.context.close()
    phone.context.close()


def test_the_kiosk_calls_a_phone_and_the_kiosk_hangs_up(
    call_server: CallServer, media_chromium: Any
) -> None:
    kiosk, phone = pages_in_call(call_server, media_chromium)
    kiosk.click(f'[data-call-to="{FAMILY_USER}"]')
    phone.wait_for_selector("[data-call-incoming]:not([hidden])")
    phone.click("[data-call-answer]")
    media_rises(phone, "the phone")
    media_rises(kiosk, "the kiosk")
    kiosk.click("[data-call-hangup]")
    phone.wait_for_selector("[data-call-view][hidden]", state="attached")
    phone.wait_for_function(ALL_CLOSED)
    wait_until(lambda: call_server.call_parts.peers.peers() == [], 10, "the agent's peers closed")
    kiosk.context.close()
    phone.context.close()


@pytest.fixture
def relay_call_server(tmp_path: Path, turn_server: TurnServer) -> Iterator[CallServer]:
    """The call server with coturn as its only ICE server (the pages get it from the config)."""
    credential = tmp_path / "turn-credential"
    credential.write_text(TURN_PASSWORD, encoding="utf-8")
    ice = [IceServer(urls=[turn_server.url], username=TURN_USER, credential_file=credential)]
    yield from serve_calls(calls_context(tmp_path / "data", ice=ice))


def test_a_call_through_the_turn_relay_only(
    relay_call_server: CallServer, media_chromium: Any, turn_server: TurnServer
) -> None:
    before = turn_server.allocations()
    kiosk, phone = pages_in_call(relay_call_server, media_chromium, RELAY_SPY)
    phone_calls_kiosk(relay_call_server, kiosk, phone)
    media_rises(kiosk, "the kiosk (relayed)")
    media_rises(phone, "the phone (relayed)")
    assert turn_server.allocations() >= before + 2, turn_server.log()
    for page in (kiosk, phone):
        pair = page.evaluate(
            """async () => {
              const pc = window.__callPeers[window.__callPeers.length - 1];
              let local = null;
              const stats = await pc.getStats();
              stats.forEach((r) => {
                if (r.type === 'candidate-pair' && r.state === 'succeeded' && r.nominated) {
                  local = stats.get(r.localCandidateId).candidateType;
                }
              });
              return local;
            }"""
        )
        assert pair == "relay", pair
    kiosk.click("[data-call-hangup]")
    phone.wait_for_function(ALL_CLOSED)
    kiosk.context.close()
    phone.context.close()


def test_a_missed_call_shows_on_both_sides_and_a_decline_ends_it_for_the_caller(
    call_server: CallServer, media_chromium: Any, screenshots_dir: Path
) -> None:
    kiosk, phone = pages_in_call(call_server, media_chromium)
    household = call_server.call_parts.households[FAMILY_USER]
    # Nobody at the kiosk answers within ring_seconds (5 s, the least the config allows).
    phone.click(f'[data-call-to="kiosk"][data-household="{household.id}"]')
    kiosk.wait_for_selector("[data-call-incoming]:not([hidden])")
    phone.wait_for_function(
        "() => document.querySelector('[data-call-status]').textContent.includes('无人接听')",
        timeout=30_000,
    )
    kiosk.wait_for_selector("[data-call-incoming][hidden]", state="attached")
    kiosk.wait_for_selector("[data-call-missed]:not([hidden])")
    assert FAMILY_USER in kiosk.inner_text("[data-call-missed-list]")
    shoot(kiosk, screenshots_dir, "kiosk-call-missed")
    # Seen at the kiosk: it leaves the list.
    kiosk.click("[data-call-seen]")
    kiosk.wait_for_selector("[data-call-missed][hidden]", state="attached")

    # The kiosk calls the phone, which declines: the kiosk's call ends at once.
    kiosk.click(f'[data-call-to="{FAMILY_USER}"]')
    phone.wait_for_selector("[data-call-incoming]:not([hidden])")
    phone.click("[data-call-decline]")
    kiosk.wait_for_function(
        "() => document.querySelector('[data-call-status]').textContent.includes('拒绝')"
    )
    kiosk.wait_for_selector("[data-call-view][hidden]", state="attached")
    assert call_server.call_parts.calls.live() == []

    # The kiosk calls again and nobody answers the phone: missed on the phone.
    kiosk.click(f'[data-call-to="{FAMILY_USER}"]')
    phone.wait_for_selector("[data-call-incoming]:not([hidden])")
    phone.wait_for_selector("[data-call-missed]:not([hidden])", timeout=30_000)
    assert "陈家" in phone.inner_text("[data-call-missed-list]")
    kiosk.wait_for_function(
        "() => document.querySelector('[data-call-status]').textContent.includes('无人接听')"
    )
    shoot(phone, screenshots_dir, "phone-call-missed")
    kiosk.context.close()
    phone.context.close()


def _rss_mb() -> float:
    with Path(f"/proc/{os.getpid()}/status").open(encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _settled(count: Callable[[], int], target: int, what: str) -> None:
    wait_until(lambda: count() <= target, 20, what, interval=0.2)


# Worker pools that grow on demand up to a fixed size and then stay: the loop's default
# executor (aiortc's encoders, asyncio.to_thread) and AnyIO's (Starlette's sync routes).
_POOLS = ("asyncio_", "AnyIO worker thread")
_POOL_LIMIT = min(32, (os.cpu_count() or 1) + 4) + 40


def _threads() -> tuple[list[str], int]:
    """Names of the threads outside the bounded pools, and how many pool threads there are."""
    names = [t.name for t in threading.enumerate()]
    own = sorted(name for name in names if not name.startswith(_POOLS))
    return own, len(names) - len(own)


def test_twenty_calls_leave_no_peer_task_or_thread_behind(
    call_server: CallServer, media_chromium: Any
) -> None:
    kiosk, phone = pages_in_call(call_server, media_chromium)
    parts = call_server.call_parts

    def one_call(number: int) -> None:
        phone_calls_kiosk(call_server, kiosk, phone)
        wait_until(lambda: inbound(kiosk)["video"] > 5, 30, f"call {number}: video at the kiosk")
        (kiosk if number % 2 else phone).click("[data-call-hangup]")
        for page in (kiosk, phone):
            page.wait_for_function(ALL_CLOSED)
        wait_until(lambda: parts.peers.peers() == [], 20, f"call {number}: peers closed")

    # The first call warms up the thread pools that stay (aiortc encodes in the loop's executor).
    one_call(0)
    gc.collect()
    time.sleep(1)
    tasks = len(call_server.loop_tasks())
    threads, _ = _threads()
    rss = [_rss_mb()]
    print(f"\nafter the first call: {tasks} tasks, threads {threads}, RSS {rss[0]:.1f} MB")
    for number in range(1, 20):
        one_call(number)
        if number % 5 == 4:
            gc.collect()
            rss.append(_rss_mb())
            print(f"after {number + 1} calls: RSS {rss[-1]:.1f} MB")
    assert parts.peers.peers() == []
    assert parts.calls.live() == []
    _settled(lambda: len(call_server.loop_tasks()), tasks, "the loop's tasks to settle")
    # aiortc's decoder threads end with their peer; only the bounded pools keep workers.
    wait_until(lambda: _threads()[0] == threads, 20, f"threads back to {threads}")
    pool_threads = _threads()[1]
    assert pool_threads <= _POOL_LIMIT
    print(f"after 20 calls: tasks {call_server.loop_tasks()}, threads {_threads()[0]}")
    print(f"pool workers: {pool_threads} (at most {_POOL_LIMIT})")
    print("RSS (MB) after 1, 5, 10, 15, 20 calls: " + ", ".join(f"{m:.1f}" for m in rss))
    kiosk.context.close()
    phone.context.close()
