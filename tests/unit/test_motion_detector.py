"""The motion detector on synthetic frames: what it must find, ignore, reject and recover from."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from agent.errors import ValidationError
from agent.motion import FrameError, MotionConfig, MotionDetector
from simulators.scenes import make_scene

W, H = 320, 240


@dataclass(frozen=True)
class Poly:
    name: str
    points: list[tuple[float, float]]


def _run(scene_name: str, frames: int, detector: MotionDetector, seed: int = 0) -> list[bool]:
    scene = make_scene(scene_name, W, H, seed=seed)
    return [bool(detector.detect(scene.render(i)[0]).boxes) for i in range(frames)]


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((H, W, 3), np.float32),  # wrong dtype
        np.zeros((H + 1, W, 3), np.uint8),  # wrong size
        np.zeros((H, W, 4), np.uint8),  # wrong channels
        np.zeros((0, 0, 3), np.uint8),  # empty
        np.zeros((H,), np.uint8),  # not an image
        "not an array",
        None,
    ],
)
def test_bad_frames_are_rejected_with_a_clear_error(frame: object) -> None:
    detector = MotionDetector(MotionConfig(), (W, H))
    with pytest.raises(FrameError) as caught:
        detector.detect(frame)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValidationError)
    assert caught.value.field == "frame"
    # The detector still works after a bad frame.
    good = detector.detect(np.full((H, W, 3), 90, np.uint8))
    assert good.mask.shape == detector.detection_size[::-1]


def test_gray_frames_are_accepted() -> None:
    detector = MotionDetector(MotionConfig(), (W, H))
    result = detector.detect(np.full((H, W), 90, np.uint8))
    assert result.boxes == []


def test_walking_person_is_found_where_they_are() -> None:
    scene = make_scene("walking_person", W, H, seed=4)
    detector = MotionDetector(MotionConfig(), (W, H))
    hits = 0
    inside = 0
    for index in range(int(9 * scene.fps)):
        frame, truth = scene.render(index)
        result = detector.detect(frame)
        if truth.sum() > 255 * 200 and index > 60:
            hits += bool(result.boxes)
            ys, xs = np.nonzero(truth)
            for x, y, w, h in result.boxes:
                cx, cy = x + w / 2, y + h / 2
                inside += xs.min() - 10 <= cx <= xs.max() + 10 and ys.min() - 10 <= cy <= ys.max()
    assert hits > 40
    assert inside >= hits  # every frame with a box had one on the person


@pytest.mark.parametrize("name", ["empty", "sensor_noise", "ir_switch", "rain", "foliage"])
def test_distractors_raise_no_lasting_motion(name: str) -> None:
    scene = make_scene(name, W, H, seed=2)
    detector = MotionDetector(MotionConfig(), (W, H))
    flags = [bool(detector.detect(scene.render(i)[0]).boxes) for i in range(scene.eval_frames)]
    # An event needs 3 of 5 frames; no window of 5 frames may hold 3 detections.
    assert max(sum(flags[i : i + 5]) for i in range(len(flags) - 5)) < 3


def test_ir_switch_is_reported_as_lighting_change_not_motion() -> None:
    scene = make_scene("ir_switch", W, H, seed=1)
    detector = MotionDetector(MotionConfig(), (W, H))
    switch = int(10 * scene.fps)
    results = [detector.detect(scene.render(i)[0]) for i in range(switch + 20)]
    assert any(r.lighting_change for r in results[switch - 1 : switch + 3])
    assert not any(r.boxes for r in results[switch - 1 :])


def _flicker(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A never-settling change: a random uneven brightness pattern, new every frame."""
    gains = rng.uniform(0.4, 1.6, (3, 4)).astype(np.float32)
    field = np.kron(gains, np.ones((H // 3, W // 4), np.float32))
    return np.clip(frame.astype(np.float32) * field[:, :, None], 0, 255).astype(np.uint8)


def test_never_settling_change_does_not_keep_the_detector_calibrating() -> None:
    scene = make_scene("walking_person", W, H, seed=3)
    config = MotionConfig(max_global_change_frames=20)
    detector = MotionDetector(config, (W, H))
    rng = np.random.default_rng(0)
    still, _ = scene.render(0)
    for _ in range(config.warmup_frames + 10):
        detector.detect(still)
    # Fifteen seconds of chaos: suppression is bounded, the detector never hangs in a state.
    chaos = [detector.detect(_flicker(still, rng)) for _ in range(200)]
    assert any(r.lighting_change for r in chaos[:20])
    # The suppression budget is spent: the detector is back to work, not stuck in a state.
    assert sum(r.lighting_change for r in chaos) <= 2 * 20 + 10
    assert not any(r.lighting_change for r in chaos[-50:])
    # The chaos stops; the next person must be found within a few seconds.
    lead = int(2.5 * scene.fps)
    found_at = None
    for offset in range(int(8 * scene.fps)):
        frame, truth = scene.render(lead + offset)
        result = detector.detect(frame)
        if result.boxes and truth.any():
            found_at = offset
            break
    assert found_at is not None and found_at < 3 * scene.fps


def test_person_is_found_while_the_light_keeps_flickering_evenly() -> None:
    scene = make_scene("walking_person", W, H, seed=5)
    detector = MotionDetector(MotionConfig(), (W, H))
    rng = np.random.default_rng(1)
    hits = 0
    for index in range(int(8 * scene.fps)):
        frame, truth = scene.render(index)
        gain = rng.uniform(0.8, 1.2)  # auto exposure hunting all the time
        frame = np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        result = detector.detect(frame)
        hits += bool(result.boxes) and bool(truth.any())
    assert hits > 30


def test_motion_outside_every_zone_is_not_counted() -> None:
    # The person walks along the bottom; the zone covers only the sky.
    sky = Poly("sky", [(0.0, 0.0), (1.0, 0.0), (1.0, 0.3), (0.0, 0.3)])
    ground = Poly("ground", [(0.0, 0.6), (1.0, 0.6), (1.0, 1.0), (0.0, 1.0)])
    in_sky = MotionDetector(MotionConfig(), (W, H), zones=[sky])
    on_ground = MotionDetector(MotionConfig(), (W, H), zones=[ground])
    scene = make_scene("walking_person", W, H, seed=4)
    sky_hits = ground_hits = 0
    for index in range(int(9 * scene.fps)):
        frame, _ = scene.render(index)
        sky_result = in_sky.detect(frame)
        ground_result = on_ground.detect(frame)
        sky_hits += bool(sky_result.boxes) or sky_result.score > 0
        if ground_result.boxes:
            ground_hits += 1
            assert ground_result.zones == ("ground",)
    assert sky_hits == 0
    assert ground_hits > 30


def test_privacy_mask_is_never_analysed() -> None:
    everything = Poly("all", [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])
    detector = MotionDetector(MotionConfig(), (W, H), privacy_masks=[everything])
    hits = _run("walking_person", 9 * 15, detector, seed=4)
    assert not any(hits)
    left = Poly("left", [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)])
    detector = MotionDetector(MotionConfig(), (W, H), privacy_masks=[left])
    scene = make_scene("walking_person", W, H, seed=4)
    for index in range(int(9 * scene.fps)):
        result = detector.detect(scene.render(index)[0])
        assert not result.mask[:, : W // 2 - 1].any()
        for x, _y, _w, _h in result.boxes:
            assert x >= W // 2 - 2


def test_sensitivity_is_checked() -> None:
    detector = MotionDetector(MotionConfig(), (W, H))
    with pytest.raises(ValueError, match="between 0 and 1"):
        detector.set_sensitivity(1.5)
    detector.set_sensitivity(0.9)
    assert detector.sensitivity == 0.9


def test_boxes_are_in_input_pixels() -> None:
    scene = make_scene("car", 640, 360, seed=1)
    detector = MotionDetector(MotionConfig(detection_width=160), (640, 360))
    boxes = []
    for index in range(int(5 * scene.fps)):
        boxes.extend(detector.detect(scene.render(index)[0]).boxes)
    assert boxes
    assert max(x + w for x, _y, w, _h in boxes) > 320  # not confined to 160 px
    assert all(x >= 0 and x + w <= 640 and y >= 0 and y + h <= 360 for x, y, w, h in boxes)


def _shaky(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera on a pole in the wind, streaming low-quality JPEG."""
    dx, dy = (int(v) for v in rng.integers(-1, 2, 2))
    moved = cv2.warpAffine(
        frame, np.float32([[1, 0, dx], [0, 1, dy]]), (W, H), borderMode=cv2.BORDER_REPLICATE
    )
    ok, encoded = cv2.imencode(".jpg", moved, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


@pytest.mark.parametrize("name", ["empty", "walking_person"])
def test_shaking_camera_with_jpeg_artefacts(name: str) -> None:
    scene = make_scene(name, W, H, seed=6)
    detector = MotionDetector(MotionConfig(), (W, H))
    rng = np.random.default_rng(2)
    hits = false_hits = 0
    for index in range(int(12 * scene.fps)):
        frame, truth = scene.render(index)
        result = detector.detect(_shaky(frame, rng))
        if truth.sum() > 255 * 100:
            hits += bool(result.boxes)
        elif not truth.any() and index > 40:
            false_hits += bool(result.boxes)
    assert false_hits <= 3
    if name == "walking_person":
        assert hits > 60
