"""Shared test set-up. Every module in tests/fixtures/ is loaded as a pytest plugin, so each area
(MQTT broker, RTSP camera, agent process, browser) keeps its server fixtures in its own module."""

from pathlib import Path

import pytest

# Fixture modules import each other; rewrite their asserts before any of them is imported.
pytest.register_assert_rewrite("tests.fixtures")

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)
