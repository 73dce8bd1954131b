"""Config loading: a bad config is refused with path-qualified messages and never half-starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.camera.source import FileSource, RtspSource, SimSource, UsbSource, parse_source
from agent.cli import main
from agent.config import load_config, parse_config, with_overrides
from agent.errors import ConfigError
from tests.fixtures.agent import run_command

REPO = Path(__file__).resolve().parents[2]


def problems_of(raw: dict[str, object], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, environ or {})
    return info.value.problems


def test_shipped_configs_are_valid() -> None:
    demo = load_config(REPO / "firmware_config" / "demo.toml", environ={})
    assert [c.id for c in demo.cameras] == ["square", "road", "orchard"]
    assert all(isinstance(c.parsed_source, SimSource) for c in demo.cameras)
    assert demo.mqtt.enabled is False
    example = load_config(REPO / "firmware_config" / "kiosk.example.toml", environ={})
    assert example.cameras[0].zones[0].name == "gate"
    assert example.mqtt.tls_cert is not None
    assert example.mqtt.report_public_key is not None
    assert example.mqtt.allow_plaintext is False


def test_out_of_range_values_name_their_path() -> None:
    raw = {
        "device": {"id": "k1"},
        "cameras": [
            {"id": "a", "source": "usb:0"},
            {"id": "b", "source": "usb:1", "fps": 45},
        ],
    }
    assert problems_of(raw) == ["cameras[1].fps: must be between 1 and 30"]


def test_every_problem_is_reported_at_once() -> None:
    raw = {
        "device": {"id": "Bad Id!"},
        "cameras": [{"id": "a", "source": "ftp://x", "resolution": "wide", "fsp": 3}],
        "mqtt": {"port": 70000},
    }
    problems = problems_of(raw)
    assert (
        "cameras[0].source: unknown source; use usb:N, /dev/videoN, rtsp://HOST/PATH, "
        "file:PATH or sim://SCENE?seed=N" in problems
    )
    assert "cameras[0].resolution: must look like 640x480" in problems
    assert "cameras[0].fsp: unknown key" in problems
    assert "mqtt.port: must be between 1 and 65535" in problems
    assert any(p.startswith("device.id: ") for p in problems)


def test_missing_required_values_and_duplicates() -> None:
    assert problems_of({}) == ["device: required"]
    duplicated = {
        "device": {"id": "k1"},
        "cameras": [{"id": "a", "source": "usb:0"}, {"id": "a", "source": "usb:1"}],
    }
    assert problems_of(duplicated) == ["cameras: camera id 'a' is used twice"]
    assert problems_of({"device": {"id": "k1"}, "cameras": [{"id": "a"}]}) == [
        "cameras[0].source: required"
    ]


def test_schedule_and_zone_validation() -> None:
    raw = {
        "device": {"id": "k1"},
        "cameras": [
            {
                "id": "a",
                "source": "usb:0",
                "arm_schedule": ["25:00-06:00"],
                "zones": [{"name": "z", "points": [[0, 0], [1.5, 0], [1, 1]]}],
            }
        ],
    }
    problems = problems_of(raw)
    assert "cameras[0].arm_schedule: '25:00-06:00' must look like 20:00-06:00" in problems
    assert "cameras[0].zones[0].points[1][0]: must be between 0 and 1" in problems


def test_environment_overrides_win_over_the_file() -> None:
    raw = {"device": {"id": "k1"}, "cameras": [{"id": "a", "source": "usb:0", "fps": 10}]}
    config = parse_config(
        raw,
        {
            "VILLAGE_KIOSK_MQTT__PORT": "1884",
            "VILLAGE_KIOSK_MQTT__ENABLED": "true",
            "VILLAGE_KIOSK_MQTT__HOST": "broker.local",
            "VILLAGE_KIOSK_MQTT__TLS_CA": "/etc/village-kiosk/ca.crt",
            "VILLAGE_KIOSK_MQTT__REPORT_PUBLIC_KEY": "/etc/village-kiosk/report-public.pem",
            "VILLAGE_KIOSK_CAMERAS__0__FPS": "5",
            "UNRELATED": "x",
        },
    )
    assert config.mqtt.port == 1884
    assert config.mqtt.enabled is True
    assert config.mqtt.host == "broker.local"
    assert config.cameras[0].fps == 5


def test_bad_environment_overrides_are_config_errors() -> None:
    raw = {"device": {"id": "k1"}}
    assert problems_of(raw, {"VILLAGE_KIOSK_MQTT__PORT": "abc"})[0].startswith("mqtt.port: ")
    assert problems_of(raw, {"VILLAGE_KIOSK_CAMERAS__3__FPS": "5"}) == [
        "VILLAGE_KIOSK_CAMERAS__3__FPS: no list item 3"
    ]
    nested = {"device": {"id": "k1"}, "web": {"port": 8080}}
    assert problems_of(nested, {"VILLAGE_KIOSK_WEB__PORT__DEEP": "1"}) == [
        "VILLAGE_KIOSK_WEB__PORT__DEEP: web.port is not a section"
    ]
    assert nested == {"device": {"id": "k1"}, "web": {"port": 8080}}  # the caller's is untouched
    assert problems_of(raw, {"VILLAGE_KIOSK_PORT": "1"}) == [
        "VILLAGE_KIOSK_PORT: must look like VILLAGE_KIOSK_<SECTION>__<KEY>"
    ]


def _mqtt_problems(**mqtt: object) -> list[str]:
    try:
        parse_config({"device": {"id": "k1"}, "mqtt": mqtt}, {})
    except ConfigError as exc:
        return exc.problems
    return []


_KEY = {"report_public_key": "/etc/village-kiosk/report-public.pem"}


def test_plain_mqtt_to_another_machine_must_be_asked_for_by_name() -> None:
    assert _mqtt_problems(enabled=True, host="broker.county.example", **_KEY) == [
        "mqtt.host: 'broker.county.example' is not on this machine and mqtt.tls_ca is not set;"
        " set mqtt.tls_ca (TLS to the broker), or mqtt.allow_plaintext = true to send alerts"
        " and the command channel in clear on a network you trust"
    ]
    # A name that merely resolves to this machine still counts as another one: no DNS here.
    assert _mqtt_problems(enabled=True, host="10.0.0.5", **_KEY)[0].startswith("mqtt.host: ")
    for loopback in ("127.0.0.1", "127.3.2.1", "localhost", "LOCALHOST.", "::1", "[::1]"):
        assert _mqtt_problems(enabled=True, host=loopback, **_KEY) == [], loopback
    assert _mqtt_problems(enabled=True, host="10.0.0.5", tls_ca="/ca.crt", **_KEY) == []
    assert (
        _mqtt_problems(enabled=True, host="10.0.0.5", tls_cert="/c.crt", tls_key="/c.key", **_KEY)
        == []
    )
    assert _mqtt_problems(enabled=True, host="10.0.0.5", allow_plaintext=True, **_KEY) == []
    # Only a link in use is held to it.
    assert _mqtt_problems(enabled=False, host="10.0.0.5") == []


def test_an_enabled_link_needs_the_command_centres_report_key() -> None:
    assert _mqtt_problems(enabled=True) == [
        "mqtt.report_public_key: required when mqtt.enabled is true: the command centre's"
        " X25519 public key (PEM) that registration reports are sealed to"
    ]
    # Both problems at once, each under its own key.
    assert [p.split(":")[0] for p in _mqtt_problems(enabled=True, host="broker.lan")] == [
        "mqtt.host",
        "mqtt.report_public_key",
    ]
    assert _mqtt_problems(enabled=False) == []


def test_check_config_names_the_mqtt_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text('[device]\nid = "k1"\n[mqtt]\nenabled = true\nhost = "broker.lan"\n')
    assert main(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "  mqtt.host: 'broker.lan' is not on this machine and mqtt.tls_ca is not set;" in err
    assert "  mqtt.report_public_key: required when mqtt.enabled is true" in err
    config.write_text(
        '[device]\nid = "k1"\n[mqtt]\nenabled = true\nhost = "broker.lan"\n'
        'allow_plaintext = true\nreport_public_key = "/etc/centre.pub"\n'
    )
    assert main(["check-config", str(config)]) == 0


def test_command_line_overrides_win(tmp_path: Path) -> None:
    config = parse_config({"device": {"id": "k1"}}, {})
    changed = with_overrides(config, port=9001, data_dir=tmp_path)
    assert changed.web.port == 9001
    assert changed.device.data_dir == tmp_path
    assert config.web.port == 8080  # the original is untouched (frozen models)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[device\nid = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken, environ={})
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary, environ={})


def test_check_config_command_reports_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[device]\nid = "k1"\n[[cameras]]\nid = "a"\nsource = "usb:0"\n'
        '[[cameras]]\nid = "b"\nsource = "usb:1"\nfps = 0\n'
    )
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "cameras[1].fps: must be between 1 and 30" in err
    good = tmp_path / "good.toml"
    good.write_text('[device]\nid = "k1"\n')
    assert main(["check-config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out


def test_run_with_bad_config_exits_non_zero_without_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[device]\nid = "k1"\n[web]\nport = "eighty"\n')
    result = subprocess.run(
        run_command(bad, data_dir=tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "web.port: " in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # nothing half-started


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("usb:0", UsbSource(0)),
        ("/dev/video2", UsbSource("/dev/video2")),
        ("rtsp://user:pw@10.0.0.5:554/s1", RtspSource("rtsp://user:pw@10.0.0.5:554/s1")),
        ("file:/tmp/a.mp4", FileSource(Path("/tmp/a.mp4"))),
        ("sim://walking_person?seed=7", SimSource("walking_person", 7, {})),
    ],
)
def test_source_strings(text: str, expected: object) -> None:
    assert parse_source(text) == expected


def test_source_descriptions_hide_credentials() -> None:
    assert parse_source("rtsp://user:secret@10.0.0.5:554/s1").describe() == (
        "rtsp://10.0.0.5:554/s1"
    )


@pytest.mark.parametrize(
    "text", ["", "usb:x", "rtsp://", "file:", "sim://Bad-Name", "sim://a?seed=-1"]
)
def test_bad_source_strings(text: str) -> None:
    with pytest.raises(ValueError):
        parse_source(text)


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_section_names = st.sampled_from(
    ["device", "cameras", "motion", "events", "mqtt", "web", "storage", "other"]
)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.dictionaries(_section_names, _values, max_size=6),
    environ=st.dictionaries(
        st.sampled_from(
            [
                "VILLAGE_KIOSK_MQTT__PORT",
                "VILLAGE_KIOSK_CAMERAS__0__FPS",
                "VILLAGE_KIOSK_X",
                "VILLAGE_KIOSK_WEB__PORT__DEEP",
            ]
        ),
        st.text(max_size=8),
        max_size=2,
    ),
)
def test_any_broken_config_is_a_config_error_never_a_crash(
    raw: dict[str, object], environ: dict[str, str]
) -> None:
    try:
        parse_config(raw, environ)
    except ConfigError as exc:
        assert exc.problems
        assert all(isinstance(problem, str) and ": " in problem for problem in exc.problems)
