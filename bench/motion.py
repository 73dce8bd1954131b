"""Motion detector benchmark: cost per frame and quality beside OpenCV's MOG2, KNN and a plain
running-average frame difference, on the same synthetic frames.

    .venv/bin/python bench/motion.py                 # everything (a few minutes)
    .venv/bin/python bench/motion.py --skip-quality  # cost only

Cost is the median wall time of one detect() call on one thread (cv2.setNumThreads(1)),
including the downscale and gray conversion every method needs. Every method works at the same
detection width and turns its mask into boxes the same way (median filter, contours, minimum
blob area), so the comparison is about the background model, not the post-processing. Quality:
pixel F1 on scenes with true motion, event recall (true motion episodes covered by an event),
frame recall, and false events, counted by the same event tracker for all methods.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from agent.motion import EventConfig, MotionConfig, MotionDetector, MotionResult
from agent.motion.detector import detection_size
from agent.motion_eval import EvalFrame, Scorer
from simulators.scenes import SCENES, make_scene

Detect = Callable[[np.ndarray], MotionResult]
KERNEL = np.ones((3, 3), np.uint8)


class _Baseline:
    """Shared pipeline of the reference methods: shrink, model → mask, clean, boxes."""

    def __init__(self, frame_size: tuple[int, int], config: MotionConfig) -> None:
        self.frame_size = frame_size
        self.size = detection_size(frame_size, config.detection_width)
        self.scale = (frame_size[0] / self.size[0], frame_size[1] / self.size[1])
        self.min_pixels = max(3, round(config.min_area_fraction * self.size[0] * self.size[1]))

    def foreground(self, small: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def detect(self, frame: np.ndarray) -> MotionResult:
        small = cv2.resize(frame, self.size, interpolation=cv2.INTER_LINEAR)
        mask = self.foreground(small)
        mask = cv2.medianBlur(mask, 3)
        contours, _ = cv2.findContours(
            cv2.dilate(mask, KERNEL), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        boxes = []
        sx, sy = self.scale
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if cv2.countNonZero(mask[y : y + h, x : x + w]) >= self.min_pixels:
                boxes.append((int(x * sx), int(y * sy), round(w * sx), round(h * sy)))
            else:
                cv2.drawContours(mask, [contour], -1, 0, -1)
        score = cv2.countNonZero(mask) / mask.size if boxes else 0.0
        return MotionResult(mask=mask if boxes else np.zeros_like(mask), boxes=boxes, score=score)


class Mog2(_Baseline):
    def __init__(self, frame_size: tuple[int, int], config: MotionConfig) -> None:
        super().__init__(frame_size, config)
        self.model = cv2.createBackgroundSubtractorMOG2(history=500, detectShadows=False)

    def foreground(self, small: np.ndarray) -> np.ndarray:
        return self.model.apply(small)


class Knn(_Baseline):
    def __init__(self, frame_size: tuple[int, int], config: MotionConfig) -> None:
        super().__init__(frame_size, config)
        self.model = cv2.createBackgroundSubtractorKNN(history=500, detectShadows=False)

    def foreground(self, small: np.ndarray) -> np.ndarray:
        return self.model.apply(small)


class RunningAverage(_Baseline):
    """The classic: blurred gray frame against an exponential average, fixed threshold."""

    def __init__(self, frame_size: tuple[int, int], config: MotionConfig) -> None:
        super().__init__(frame_size, config)
        self.average: np.ndarray | None = None

    def foreground(self, small: np.ndarray) -> np.ndarray:
        gray = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
        if self.average is None:
            self.average = gray.astype(np.float32)
        delta = cv2.absdiff(gray, cv2.convertScaleAbs(self.average))
        cv2.accumulateWeighted(gray, self.average, 0.05)
        return cv2.threshold(delta, 25, 255, cv2.THRESH_BINARY)[1]


def make_detectors(frame_size: tuple[int, int]) -> dict[str, Detect]:
    config = MotionConfig()
    return {
        "kiosk": MotionDetector(config, frame_size).detect,
        "MOG2": Mog2(frame_size, config).detect,
        "KNN": Knn(frame_size, config).detect,
        "running-avg": RunningAverage(frame_size, config).detect,
    }


def bench_cost(sizes: list[tuple[int, int]], frames: int) -> None:
    print(f"## cost: median ms per frame, one thread, {frames} frames of walking_person")
    print("| input | " + " | ".join(make_detectors((640, 480))) + " |")
    print("|---|" + "---|" * 4)
    for size in sizes:
        scene = make_scene("walking_person", *size, seed=1)
        # The person is on screen in these frames, so every method has blobs to box.
        images = [scene.render(index)[0] for index in range(40, 40 + frames)]
        cells = []
        for _name, detect in make_detectors(size).items():
            for image in images[:20]:
                detect(image)  # warm up: first frames initialise models
            times = []
            for image in images:
                start = time.perf_counter()
                detect(image)
                times.append(time.perf_counter() - start)
            cells.append(f"{statistics.median(times) * 1000:.2f}")
        print(f"| {size[0]}x{size[1]} BGR | " + " | ".join(cells) + " |")
    print()


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.3f}"


def bench_quality(size: tuple[int, int], seed: int, names: list[str]) -> None:
    print(f"## quality at {size[0]}x{size[1]}, seed {seed}, evaluation length of each scene")
    methods = list(make_detectors(size))
    print(
        "| scene | "
        + " | ".join(f"{m} F1 / event recall / frame recall / false events" for m in methods)
        + " |"
    )
    print("|---|" + "---|" * len(methods))
    events = EventConfig()
    totals: dict[str, list[int]] = {m: [0, 0] for m in methods}
    for name in names:
        scene = make_scene(name, *size, seed=seed)
        detectors = make_detectors(size)
        scorers = {m: Scorer(fps=scene.fps, events=events) for m in methods}
        for index in range(scene.eval_frames):
            image, truth = scene.render(index)
            frame = EvalFrame(image, truth, True)
            for method, detect in detectors.items():
                scorers[method].add(frame, detect(image))
        cells = []
        for method in methods:
            score = scorers[method].finish()
            totals[method][0] += score.false_events
            totals[method][1] += score.found_episodes
            cells.append(
                f"{_fmt(score.f1)} / {_fmt(score.event_recall)} / {_fmt(score.frame_recall)}"
                f" / {score.false_events}"
            )
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print("| **total false events** | " + " | ".join(str(totals[m][0]) for m in methods) + " |")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames timed per size")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--quality-size", default="640x480")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenes", nargs="*", default=sorted(SCENES))
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    print(f"OpenCV {cv2.__version__}, numpy {np.__version__}, threads {cv2.getNumThreads()}")
    print()
    bench_cost([(640, 480), (1280, 720)], args.frames)
    if not args.skip_quality:
        width, height = (int(v) for v in args.quality_size.lower().split("x"))
        bench_quality((width, height), args.seed, args.scenes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
