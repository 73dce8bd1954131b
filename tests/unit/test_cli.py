"""The village-kiosk command's smaller subcommands."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main


def test_motion_eval_scores_a_synthetic_scene(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["motion-eval", "--scene", "car", "--size", "160x120", "--frames", "60"]) == 0
    out = capsys.readouterr().out
    assert "scene car" in out
    assert "pixel F1" in out
    assert "false events" in out


def test_motion_eval_needs_exactly_one_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["motion-eval"]) == 2
    assert "either PATH or --scene" in capsys.readouterr().err
    assert main(["motion-eval", str(tmp_path / "nothing"), "--scene", "car"]) == 2
    capsys.readouterr()
    assert main(["motion-eval", str(tmp_path / "nothing")]) == 2
    captured = capsys.readouterr()
    assert "neither a CDnet folder nor a video file" in captured.out + captured.err


def test_user_add_refuses_a_weak_password_and_creates_a_good_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text('[device]\nid = "k1"\n')
    weak = tmp_path / "weak"
    weak.write_text("123\n")
    base = ["user", "add", "--config", str(config), "--data-dir", str(tmp_path / "data")]
    assert (
        main([*base, "--username", "li.police", "--role", "police", "--password-file", str(weak)])
        == 2
    )
    assert "password: at least 10 characters" in capsys.readouterr().err
    good = tmp_path / "good"
    good.write_text("a long village passphrase\n")
    assert (
        main([*base, "--username", "li.police", "--role", "police", "--password-file", str(good)])
        == 0
    )
    assert "added with role police" in capsys.readouterr().out
