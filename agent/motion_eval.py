"""``village-kiosk motion-eval``: score the motion detector on footage with ground truth.

Input is a CDnet-2014 folder (``input/in000001.jpg``…, ``groundtruth/gt000001.png``…,
``temporalROI.txt``, optional ``ROI.bmp``), a plain video file (no truth: motion and events are
counted only), or a synthetic scene from ``simulators.scenes``. CDnet rules apply: ground-truth
values 85 (outside the region of interest) and 170 (unknown) are not scored, 50 (hard shadow)
counts as no motion, and only frames inside the temporal ROI are scored.

Reported: pixel precision, recall and F1 (detector mask upscaled to the truth's size), the share
of frames with true motion in which motion was reported (frame recall) and of frames without
true motion in which it was (false frame rate), events found against true motion episodes, and
false events per hour.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np
import numpy.typing as npt

from agent.errors import KioskError, ValidationError
from agent.motion import EventConfig, MotionConfig, MotionDetector, MotionResult
from agent.motion.tracker import EventTracker

log = logging.getLogger(__name__)

Image = npt.NDArray[Any]
Detect = Callable[[Image], MotionResult]

# A frame counts as having true motion when at least this share of its pixels truly moves (the
# detector's default minimum blob): a few pixels of a limb entering the picture are not something
# anyone could be alerted to. Frames with less, but some, true motion are not scored per frame.
TRUTH_MIN_FRACTION = 0.0005
_GT_MOTION = 255
_GT_SHADOW = 50


@dataclass(frozen=True)
class EvalFrame:
    image: Image  # BGR uint8
    truth: Image | None  # uint8 in CDnet values, or None without ground truth
    scored: bool  # inside the temporal ROI


@dataclass
class SequenceScore:
    """Counts over one sequence; the derived rates are properties."""

    frames: int = 0
    fps: float = 15.0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    positive_frames: int = 0
    detected_positive_frames: int = 0
    negative_frames: int = 0
    false_frames: int = 0
    motion_frames: int = 0
    truth_episodes: list[tuple[float, float]] = field(default_factory=list)
    events: list[tuple[float, float]] = field(default_factory=list)
    has_truth: bool = True

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r) or p + r == 0:
            return math.nan if self.tp + self.fn == 0 else 0.0
        return 2 * p * r / (p + r)

    @property
    def frame_recall(self) -> float:
        return (
            self.detected_positive_frames / self.positive_frames
            if self.positive_frames
            else math.nan
        )

    @property
    def false_frame_rate(self) -> float:
        return self.false_frames / self.negative_frames if self.negative_frames else math.nan

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.fps

    def _overlaps(self, a: tuple[float, float], b: tuple[float, float], slack: float) -> bool:
        return a[0] <= b[1] + slack and b[0] <= a[1] + slack

    @property
    def found_episodes(self) -> int:
        return sum(
            any(self._overlaps(episode, event, 0.0) for event in self.events)
            for episode in self.truth_episodes
        )

    @property
    def event_recall(self) -> float:
        if not self.truth_episodes:
            return math.nan
        return self.found_episodes / len(self.truth_episodes)

    @property
    def false_events(self) -> int:
        """Events that overlap no true motion (an event may outlast its motion by a little)."""
        return sum(
            not any(self._overlaps(event, episode, 1.0) for episode in self.truth_episodes)
            for event in self.events
        )

    @property
    def false_events_per_hour(self) -> float:
        hours = self.duration_seconds / 3600
        return self.false_events / hours if hours > 0 else math.nan


def _episodes(moving: list[bool], fps: float, gap_seconds: float) -> list[tuple[float, float]]:
    """Runs of true-motion frames as (start, end) seconds; gaps shorter than ``gap_seconds``
    are bridged, as the event tracker would bridge them."""
    runs: list[tuple[float, float]] = []
    start: int | None = None
    last = -1
    for index, flag in enumerate(moving):
        if not flag:
            continue
        if start is not None and (index - last) / fps > gap_seconds:
            runs.append((start / fps, last / fps))
            start = None
        if start is None:
            start = index
        last = index
    if start is not None:
        runs.append((start / fps, last / fps))
    return runs


class Scorer:
    """Scores one detector frame by frame; several can run side by side on the same frames."""

    def __init__(self, *, fps: float, events: EventConfig, roi: Image | None = None) -> None:
        self.score = SequenceScore(fps=fps)
        self._events = events
        self._roi = roi
        self._tracker = EventTracker("eval", events, id_factory=_counter())
        self._truth_moving: list[bool] = []
        self._open_event: float | None = None

    def add(self, frame: EvalFrame, result: MotionResult) -> None:
        score = self.score
        ts = score.frames / score.fps
        score.frames += 1
        motion = bool(result.boxes)
        score.motion_frames += motion
        for transition in self._tracker.update(
            ts, motion=motion, score=result.score, boxes=result.boxes, zones=result.zones
        ):
            if transition.kind == "start":
                self._open_event = transition.started_at
            elif transition.kind == "end" and self._open_event is not None:
                score.events.append((self._open_event, transition.ended_at or ts))
                self._open_event = None
        if frame.truth is None:
            score.has_truth = False
            self._truth_moving.append(False)
            return
        truth = frame.truth
        moving_pixels = int(np.count_nonzero(truth == _GT_MOTION))
        enough = max(1, round(TRUTH_MIN_FRACTION * truth.size))
        self._truth_moving.append(moving_pixels >= enough)
        if not frame.scored:
            return
        _score_pixels(score, result.mask, truth, self._roi)
        if moving_pixels >= enough:
            score.positive_frames += 1
            score.detected_positive_frames += motion
        elif moving_pixels == 0:
            score.negative_frames += 1
            score.false_frames += motion

    def finish(self) -> SequenceScore:
        score = self.score
        if self._open_event is not None:
            score.events.append((self._open_event, max(0, score.frames - 1) / score.fps))
            self._open_event = None
        if score.has_truth:
            score.truth_episodes = _episodes(
                self._truth_moving, score.fps, self._events.quiet_seconds
            )
        return score


def evaluate(
    frames: Iterable[EvalFrame],
    detect: Detect,
    *,
    fps: float,
    events: EventConfig,
    roi: Image | None = None,
) -> SequenceScore:
    """Run ``detect`` over ``frames`` and score masks, frames and events."""
    scorer = Scorer(fps=fps, events=events, roi=roi)
    for frame in frames:
        scorer.add(frame, detect(frame.image))
    return scorer.finish()


def _score_pixels(score: SequenceScore, mask: Image, truth: Image, roi: Image | None) -> None:
    height, width = truth.shape[:2]
    if mask.shape[:2] != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    detected = mask > 0
    positive = truth == _GT_MOTION
    negative = (truth == 0) | (truth == _GT_SHADOW)
    if roi is not None:
        positive &= roi
        negative &= roi
    score.tp += int(np.count_nonzero(detected & positive))
    score.fn += int(np.count_nonzero(~detected & positive))
    score.fp += int(np.count_nonzero(detected & negative))


def _counter() -> Callable[[], str]:
    count = 0

    def next_id() -> str:
        nonlocal count
        count += 1
        return f"eval-{count}"

    return next_id


# -- sources ---------------------------------------------------------------------------------


def read_cdnet(folder: Path) -> tuple[Iterator[EvalFrame], int, tuple[int, int], Image | None]:
    """Frames of a CDnet-2014 folder, its frame count, (width, height) and ROI mask (or None)."""
    inputs = sorted((folder / "input").glob("in*.jpg")) + sorted((folder / "input").glob("in*.png"))
    if not inputs:
        raise ValidationError("path", f"{folder} has no input/in*.jpg frames")
    first = cv2.imread(str(inputs[0]), cv2.IMREAD_COLOR)
    if first is None:
        raise ValidationError("path", f"cannot read {inputs[0]}")
    height, width = first.shape[:2]
    roi_start, roi_end = 1, len(inputs)
    roi_file = folder / "temporalROI.txt"
    if roi_file.exists():
        try:
            roi_start, roi_end = (int(v) for v in roi_file.read_text("ascii").split()[:2])
        except ValueError as exc:
            raise ValidationError("path", f"{roi_file} must hold two frame numbers") from exc
    roi: Image | None = None
    roi_image = folder / "ROI.bmp"
    if roi_image.exists():
        loaded = cv2.imread(str(roi_image), cv2.IMREAD_GRAYSCALE)
        if loaded is not None and loaded.shape == (height, width):
            roi = loaded > 0

    def frames() -> Iterator[EvalFrame]:
        for path in inputs:
            number = int("".join(ch for ch in path.stem if ch.isdigit()) or 0)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None or image.shape[:2] != (height, width):
                raise ValidationError("path", f"cannot read {path} as a {width}x{height} image")
            truth_path = folder / "groundtruth" / f"gt{number:06d}.png"
            truth = cv2.imread(str(truth_path), cv2.IMREAD_GRAYSCALE)
            scored = truth is not None and roi_start <= number <= roi_end
            yield EvalFrame(image, truth, scored)

    return frames(), len(inputs), (width, height), roi


def read_video(path: Path) -> tuple[Iterator[EvalFrame], float, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValidationError("path", f"cannot open video {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 15.0
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def frames() -> Iterator[EvalFrame]:
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                yield EvalFrame(image, None, True)
        finally:
            capture.release()

    return frames(), float(fps) if 1 <= fps <= 240 else 15.0, (width, height)


def scene_frames(
    name: str, width: int, height: int, seed: int, count: int | None
) -> tuple[Iterator[EvalFrame], float]:
    from simulators.scenes import make_scene

    try:
        scene = make_scene(name, width, height, seed=seed)
    except ValueError as exc:
        raise ValidationError("scene", str(exc)) from exc
    total = scene.eval_frames if count is None else count

    def frames() -> Iterator[EvalFrame]:
        for index in range(total):
            image, truth = scene.render(index)
            yield EvalFrame(image, truth, True)

    return frames(), scene.fps


# -- command ---------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def print_score(score: SequenceScore, out: TextIO, label: str) -> None:
    out.write(f"{label}: {score.frames} frames, {score.duration_seconds:.1f} s\n")
    if not score.has_truth:
        out.write(f"  motion frames     {score.motion_frames}\n")
        out.write(f"  events            {len(score.events)}\n")
        hours = score.duration_seconds / 3600
        rate = len(score.events) / hours if hours > 0 else math.nan
        out.write(f"  events per hour   {_fmt(rate)} (no ground truth: every event counted)\n")
        return
    out.write(f"  pixel precision   {_fmt(score.precision)}\n")
    out.write(f"  pixel recall      {_fmt(score.recall)}\n")
    out.write(f"  pixel F1          {_fmt(score.f1)}\n")
    out.write(
        f"  frame recall      {_fmt(score.frame_recall)}"
        f" ({score.detected_positive_frames}/{score.positive_frames} frames with true motion)\n"
    )
    out.write(
        f"  false frame rate  {_fmt(score.false_frame_rate)}"
        f" ({score.false_frames}/{score.negative_frames} frames without motion)\n"
    )
    out.write(
        f"  event recall      {_fmt(score.event_recall)}"
        f" ({score.found_episodes}/{len(score.truth_episodes)} motion episodes)\n"
    )
    out.write(
        f"  false events      {score.false_events} ({_fmt(score.false_events_per_hour)} per hour)\n"
    )


def run_motion_eval(
    path: Path | None,
    config: MotionConfig,
    out: TextIO,
    *,
    scene: str | None = None,
    seed: int = 0,
    size: tuple[int, int] = (640, 480),
    frames: int | None = None,
    fps: float | None = None,
    events: EventConfig | None = None,
) -> int:
    """Score the detector on ``path`` (CDnet folder or video) or on a synthetic ``scene``.

    Returns the exit code: 0 when scored, 2 when the input cannot be used.
    """
    events = events or EventConfig()
    try:
        roi: Image | None = None
        if scene is not None:
            source, scene_fps = scene_frames(scene, size[0], size[1], seed, frames)
            rate = fps or scene_fps
            frame_size = size
            label = f"scene {scene} (seed {seed}, {size[0]}x{size[1]})"
        elif path is not None and path.is_dir():
            source, _count, frame_size, roi = read_cdnet(path)
            rate = fps or 15.0
            label = str(path)
        elif path is not None and path.is_file():
            source, video_fps, frame_size = read_video(path)
            rate = fps or video_fps
            label = str(path)
        else:
            raise ValidationError("path", f"{path} is neither a CDnet folder nor a video file")
        if frames is not None and scene is None:
            source = _limit(source, frames)
        detector = MotionDetector(config, frame_size)
        score = evaluate(source, detector.detect, fps=rate, events=events, roi=roi)
    except KioskError as exc:
        out.write(f"error: {exc}\n")
        return 2
    print_score(score, out, label)
    return 0


def _limit(frames: Iterator[EvalFrame], count: int) -> Iterator[EvalFrame]:
    for index, frame in enumerate(frames):
        if index >= count:
            return
        yield frame
