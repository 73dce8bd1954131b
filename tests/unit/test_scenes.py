"""The synthetic scenes: deterministic, textured, truthful, and writable as CDnet folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from simulators.scenes import SCENES, make_scene, write_cdnet

W, H = 160, 120


def test_unknown_scene_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="walking_person"):
        make_scene("no_such_scene", W, H)


@pytest.mark.parametrize("name", sorted(SCENES))
def test_scene_is_deterministic_and_well_formed(name: str) -> None:
    first = make_scene(name, W, H, seed=3)
    again = make_scene(name, W, H, seed=3)
    frame, truth = first.render(40)
    frame2, truth2 = again.render(40)
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    assert truth.shape == (H, W) and truth.dtype == np.uint8
    assert set(np.unique(truth)) <= {0, 255}
    assert np.array_equal(frame, frame2) and np.array_equal(truth, truth2)
    assert first.eval_frames > 0


def test_background_is_textured_not_flat() -> None:
    frame, _ = make_scene("empty", W, H).render(0)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    # Local texture: the Laplacian of a flat colour is only sensor noise.
    assert float(np.abs(cv2.Laplacian(gray, cv2.CV_32F)).mean()) > 5.0


def test_seeds_differ() -> None:
    a, _ = make_scene("empty", W, H, seed=1).render(0)
    b, _ = make_scene("empty", W, H, seed=2).render(0)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", ["empty", "lighting_ramp", "ir_switch", "foliage", "rain", "snow"])
def test_distractor_scenes_have_no_true_motion(name: str) -> None:
    scene = make_scene(name, W, H)
    assert not any(scene.render(i)[1].any() for i in range(0, scene.eval_frames, 25))


def test_walking_person_comes_back_again_and_again() -> None:
    scene = make_scene("walking_person", W, H)
    intervals = scene.truth_intervals(scene.eval_frames)
    assert len(intervals) >= 2
    # A quiet pause between crossings lets a live demo camera end one event and start the next.
    assert intervals[1][0] - intervals[0][1] > 3 * scene.fps


def test_ir_switch_turns_grayscale() -> None:
    scene = make_scene("ir_switch", W, H)
    day, _ = scene.render(0)
    night, _ = scene.render(int(15 * scene.fps))
    assert np.abs(day[:, :, 0].astype(int) - day[:, :, 2]).mean() > 10
    spread = np.abs(night[:, :, 0].astype(int) - night[:, :, 2]).mean()
    assert spread < 6  # only chroma noise is left


def test_write_cdnet_folder(tmp_path: Path) -> None:
    scene = make_scene("walking_person", W, H)
    folder = write_cdnet(scene, tmp_path / "walk", 5, roi_start=2)
    assert (folder / "temporalROI.txt").read_text().split() == ["2", "5"]
    assert (folder / "input" / "in000005.jpg").exists()
    gt = cv2.imread(str(folder / "groundtruth" / "gt000001.png"), cv2.IMREAD_GRAYSCALE)
    assert gt is not None and gt.shape == (H, W)
