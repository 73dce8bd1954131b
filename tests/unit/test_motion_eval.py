"""motion-eval: CDnet scoring rules, and the acceptance bar on the synthetic scenes."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.motion import EventConfig, MotionConfig, MotionDetector
from agent.motion_eval import evaluate, run_motion_eval, scene_frames
from simulators.scenes import make_scene, write_cdnet

W, H = 320, 240


def test_cdnet_folder_is_scored(tmp_path: Path) -> None:
    scene = make_scene("walking_person", 160, 120, seed=1)
    folder = write_cdnet(scene, tmp_path / "walk", 200, roi_start=40)
    out = io.StringIO()
    assert run_motion_eval(folder, MotionConfig(), out) == 0
    text = out.getvalue()
    for label in ("pixel precision", "pixel recall", "pixel F1", "frame recall", "false events"):
        assert label in text
    f1 = float(text.split("pixel F1")[1].split()[0])
    assert f1 > 0.4


def test_unknown_and_outside_roi_pixels_are_not_scored(tmp_path: Path) -> None:
    scene = make_scene("walking_person", 160, 120, seed=1)
    folder = write_cdnet(scene, tmp_path / "walk", 120)
    for gt in (folder / "groundtruth").glob("*.png"):
        truth = cv2.imread(str(gt), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(gt), np.where(truth > 0, 170, 85).astype(np.uint8))
    out = io.StringIO()
    assert run_motion_eval(folder, MotionConfig(), out) == 0
    assert "pixel F1          n/a" in out.getvalue()


def test_bad_path_is_a_clean_error(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_motion_eval(tmp_path / "missing", MotionConfig(), out) == 2
    assert out.getvalue().startswith("error:")
    (tmp_path / "empty").mkdir()
    assert run_motion_eval(tmp_path / "empty", MotionConfig(), out) == 2


def test_scene_can_be_evaluated_directly() -> None:
    out = io.StringIO()
    assert run_motion_eval(None, MotionConfig(), out, scene="car", size=(160, 120)) == 0
    assert "event recall      1.000" in out.getvalue()
    assert run_motion_eval(None, MotionConfig(), out, scene="nope") == 2


def _score(name: str, seed: int = 0):  # type: ignore[no-untyped-def]
    frames, fps = scene_frames(name, W, H, seed, None)
    detector = MotionDetector(MotionConfig(), (W, H))
    return evaluate(frames, detector.detect, fps=fps, events=EventConfig())


@pytest.mark.parametrize("name", ["lighting_ramp", "ir_switch", "foliage", "rain"])
def test_acceptance_no_false_events_on_distractors(name: str) -> None:
    assert _score(name).false_events == 0


@pytest.mark.parametrize("name", ["walking_person", "car"])
def test_acceptance_every_person_and_car_found(name: str) -> None:
    score = _score(name)
    assert score.event_recall == 1.0
    assert score.frame_recall >= 0.95
    assert score.false_events == 0


def test_acceptance_small_person_at_night_found() -> None:
    score = _score("small_person_night")
    assert score.event_recall == 1.0
    assert score.false_events == 0
