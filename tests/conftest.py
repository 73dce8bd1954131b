"""Shared test set-up. Every module in tests/fixtures/ is loaded as a pytest plugin, so each area
(MQTT broker, RTSP camera, agent process, browser) keeps its server fixtures in its own module."""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)
