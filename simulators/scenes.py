"""Synthetic camera scenes with per-pixel ground truth.

A scene is a pure function of the frame index: ``render(i)`` returns the BGR frame and a truth
mask (255 where something really moves, 0 elsewhere), so a simulated camera can run forever and a
benchmark can replay exactly the same frames. Backgrounds are textured (noise octaves over a
village layout of sky, hills, a house, grass and a road) because a flat colour would make every
detector look good. Distractors (lighting, IR switch, sensor noise, foliage, rain, snow) have an
all-zero truth: they must not raise alerts.

    scene = make_scene("walking_person", 640, 480, seed=1)
    frame, truth = scene.render(0)
    write_cdnet(scene, Path("/tmp/walk"), scene.eval_frames)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

FloatImage = npt.NDArray[np.float32]
ByteImage = npt.NDArray[np.uint8]

SCENES: dict[str, str] = {
    "empty": "static village square, mild sensor noise, nothing moves",
    "walking_person": "a person crosses the square, pauses, crosses back, again and again",
    "car": "a car drives along the road now and then",
    "lighting_ramp": "slow cloud shadows and a deep brightness ramp, nothing moves",
    "ir_switch": "abrupt day to night IR grayscale switch with exposure hunting, and back",
    "sensor_noise": "heavy sensor noise and hot pixels in a dim scene, nothing moves",
    "foliage": "trees and a bush sway in gusty wind, nothing else moves",
    "rain": "heavy rain streaks over the square, nothing else moves",
    "snow": "falling snow flakes, some large and close, nothing else moves",
    "small_person_night": "a small distant person walks slowly through a dark noisy IR scene",
    "person_in_rain": "a person crosses the square in heavy rain",
    "person_by_trees": "a person walks past swaying trees",
}

# Frames a benchmark or test should render to see every behaviour of the scene at least twice.
EVAL_SECONDS: dict[str, float] = {
    "empty": 20.0,
    "walking_person": 30.0,
    "car": 24.0,
    "lighting_ramp": 40.0,
    "ir_switch": 40.0,
    "sensor_noise": 20.0,
    "foliage": 30.0,
    "rain": 20.0,
    "snow": 20.0,
    "small_person_night": 40.0,
    "person_in_rain": 30.0,
    "person_by_trees": 30.0,
}

Layer = Callable[["_FrameState"], None]


@dataclass
class _FrameState:
    """What the layers of one frame share while it is being drawn."""

    image: FloatImage
    truth: ByteImage
    t: float
    index: int
    rng: np.random.Generator


def _value_noise(
    rng: np.random.Generator, height: int, width: int, cells: tuple[int, ...]
) -> FloatImage:
    """Sum of smooth random octaves, roughly in -1..1; ``cells`` are the octaves' cell sizes."""
    total = np.zeros((height, width), np.float32)
    weight_sum = 0.0
    for cell in cells:
        grid = rng.random((height // cell + 3, width // cell + 3)).astype(np.float32)
        big = cv2.resize(
            grid,
            ((width // cell + 3) * cell, (height // cell + 3) * cell),
            interpolation=cv2.INTER_CUBIC,
        )
        offset_y = int(rng.integers(0, cell))
        offset_x = int(rng.integers(0, cell))
        weight = math.sqrt(cell)
        total += weight * (big[offset_y : offset_y + height, offset_x : offset_x + width] - 0.5)
        weight_sum += weight
    return (2.0 * total / weight_sum).astype(np.float32)


def _village_background(rng: np.random.Generator, width: int, height: int) -> FloatImage:
    """Sky, hills, a house with a brick wall and a window, grass and a road; all textured."""
    img = np.zeros((height, width, 3), np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None]
    horizon = int(0.34 * height)
    fine = _value_noise(rng, height, width, (2, 4))
    mid = _value_noise(rng, height, width, (8, 16, 32))
    coarse = _value_noise(rng, height, width, (max(8, width // 8), max(16, width // 4)))

    # Sky: brighter at the horizon, soft cloud texture.
    sky_mix = np.clip(ys / max(horizon, 1), 0, 1)
    for c, (top, bottom) in enumerate(((200, 235), (150, 215), (95, 190))):
        img[:, :, c] = top + (bottom - top) * sky_mix + 18 * coarse
    # Hills: a ragged ridge line made of a few sines.
    xs = np.arange(width, dtype=np.float32)
    phase = rng.random(3) * 2 * math.pi
    ridge = horizon - height * (
        0.06
        + 0.035 * np.sin(xs / width * 5.0 + phase[0])
        + 0.02 * np.sin(xs / width * 13.0 + phase[1])
        + 0.008 * np.sin(xs / width * 41.0 + phase[2])
    )
    hill = ys >= ridge[None, :]
    hill_colour = np.array([70, 115, 85], np.float32)
    img[hill] = hill_colour + (30 * mid[hill])[:, None] + (12 * fine[hill])[:, None]
    # Ground: grass with fine blades texture.
    ground = ys >= horizon
    ground_mask = np.broadcast_to(ground, (height, width))
    grass = np.array([55, 140, 95], np.float32)
    img[ground_mask] = grass + (35 * mid[ground_mask])[:, None] + (30 * fine[ground_mask])[:, None]
    # Road: grey asphalt band with gravel texture and a worn edge.
    road_top, road_bottom = int(0.62 * height), int(0.86 * height)
    road = np.zeros((height, width), bool)
    road[road_top:road_bottom] = True
    asphalt = np.array([105, 108, 112], np.float32)
    img[road] = asphalt + (14 * mid[road])[:, None] + (16 * fine[road])[:, None]
    dash_y = (road_top + road_bottom) // 2
    dash = max(2, height // 160)
    for x0 in range(0, width, max(8, width // 10)):
        img[dash_y - dash : dash_y + dash, x0 : x0 + width // 20] = (
            200 + 10 * fine[dash_y - dash : dash_y + dash, x0 : x0 + width // 20, None]
        )
    # House: brick wall with mortar lines, dark roof, a window and a door.
    hx0, hx1 = int(0.52 * width), int(0.86 * width)
    hy0, hy1 = int(0.22 * height), int(0.6 * height)
    wall = np.array([95, 120, 170], np.float32)
    img[hy0:hy1, hx0:hx1] = (
        wall + 20 * mid[hy0:hy1, hx0:hx1, None] + 14 * fine[hy0:hy1, hx0:hx1, None]
    )
    brick_h = max(3, height // 60)
    brick_w = brick_h * 3
    for row, y in enumerate(range(hy0, hy1, brick_h)):
        img[y, hx0:hx1] *= 0.72
        shift = (row % 2) * brick_w // 2
        for x in range(hx0 + shift, hx1, brick_w):
            img[y : y + brick_h, x] *= 0.75
    roof = np.array(
        [[hx0 - width // 40, hy0], [hx1 + width // 40, hy0], [(hx0 + hx1) // 2, hy0 - height // 8]],
        np.int32,
    )
    cv2.fillPoly(img, [roof], (60, 55, 70))
    img[hy0 - height // 8 : hy0] += (
        10 * fine[hy0 - height // 8 : hy0, :, None] * (img[hy0 - height // 8 : hy0] < 80)
    )
    wx0, wx1 = hx0 + (hx1 - hx0) // 8, hx0 + (hx1 - hx0) * 3 // 8
    wy0, wy1 = hy0 + (hy1 - hy0) // 5, hy0 + (hy1 - hy0) // 2
    img[wy0:wy1, wx0:wx1] = (45, 40, 35) + 8 * mid[wy0:wy1, wx0:wx1, None]
    dx0, dx1 = hx0 + (hx1 - hx0) * 5 // 8, hx0 + (hx1 - hx0) * 13 // 16
    img[hy0 + (hy1 - hy0) * 2 // 5 : hy1, dx0:dx1] = (40, 60, 95)
    # Uneven light across the square (vignetting plus a bright patch).
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    vignette = 1.0 - 0.25 * (((xx / width - 0.5) ** 2 + (yy / height - 0.5) ** 2) * 2)
    img *= vignette[:, :, None]
    return np.clip(img, 0, 255).astype(np.float32)


def _night_ir(image: FloatImage, gain: float, offset: float) -> FloatImage:
    """What an IR-cut camera shows at night: grayscale, vegetation pale, sky dark, and the IR
    illuminator's hot spot in the middle falling off towards the corners."""
    b, g, r = image[:, :, 0], image[:, :, 1], image[:, :, 2]
    # Chlorophyll reflects near-IR: green things look pale; blue sky looks dark.
    leafy = np.clip(g - 0.5 * (b + r), 0, None)
    gray = 0.1 * b + 0.45 * g + 0.35 * r + 1.6 * leafy
    gray = gray * gain * _ir_falloff(image.shape[0], image.shape[1]) + offset
    return np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32)


_FALLOFF: dict[tuple[int, int], FloatImage] = {}


def _ir_falloff(height: int, width: int) -> FloatImage:
    cached = _FALLOFF.get((height, width))
    if cached is None:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        radius = ((xx / width - 0.5) ** 2 + (yy / height - 0.55) ** 2) * 4
        cached = (1.15 - 0.6 * np.clip(radius, 0, 1)).astype(np.float32)
        _FALLOFF[(height, width)] = cached
    return cached


class _Walker:
    """A person who walks across, pauses off-screen, and comes back the other way, forever."""

    def __init__(
        self,
        width: int,
        height: int,
        rng: np.random.Generator,
        *,
        body_height: float,
        ground_y: float,
        cross_seconds: float,
        pause_seconds: float,
        lead_seconds: float,
        x_range: tuple[float, float] = (0.0, 1.0),
        colours: tuple[tuple[int, int, int], ...] | None = None,
    ) -> None:
        self.width, self.height = width, height
        self.h = body_height * height
        self.ground_y = ground_y * height
        self.cross = cross_seconds
        self.pause = pause_seconds
        self.lead = lead_seconds
        margin = self.h * 0.3
        self.x0 = x_range[0] * width - margin
        self.x1 = x_range[1] * width + margin
        if colours is None:
            palette = [(40, 40, 160), (150, 90, 40), (60, 60, 60), (30, 120, 200), (200, 200, 210)]
            picks = rng.choice(len(palette), size=2, replace=False)
            colours = (palette[picks[0]], palette[picks[1]], (80, 120, 170))
        self.shirt, self.trousers, self.skin = colours

    def __call__(self, state: _FrameState) -> None:
        if state.t < self.lead:
            return
        period = self.cross + self.pause
        cycle, phase = divmod(state.t - self.lead, period)
        if phase >= self.cross:
            return
        progress = phase / self.cross
        if int(cycle) % 2:
            progress = 1.0 - progress
        cx = self.x0 + (self.x1 - self.x0) * progress
        stride = math.sin(phase * 2 * math.pi * 1.8)
        # Slight bob: a real gait lifts the body twice per stride.
        bob = abs(stride) * self.h * 0.015
        self._draw(state, cx, self.ground_y - bob, stride)

    def _draw(self, state: _FrameState, cx: float, feet: float, stride: float) -> None:
        h = self.h
        shift = 4  # sub-pixel drawing so slow walkers move smoothly
        scale = 1 << shift

        def pt(x: float, y: float) -> tuple[int, int]:
            return (round(x * scale), round(y * scale))

        hip = (cx, feet - 0.48 * h)
        neck = (cx, feet - 0.82 * h)
        leg = max(1, round(0.11 * h))
        arm = max(1, round(0.07 * h))
        for target, colour_of in ((state.image, True), (state.truth, False)):

            def colour(c: tuple[int, int, int], colour_of: bool = colour_of) -> tuple[int, ...]:
                return c if colour_of else (255,)

            # The truth mask stays strictly 0/255: anti-aliasing only on the picture.
            aa = cv2.LINE_AA if colour_of else cv2.LINE_8

            for side in (-1, 1):
                foot = (cx + side * stride * 0.22 * h, feet)
                cv2.line(target, pt(*hip), pt(*foot), colour(self.trousers), leg, aa, shift)
                hand = (cx - side * stride * 0.2 * h, feet - 0.45 * h)
                cv2.line(
                    target, pt(cx, feet - 0.78 * h), pt(*hand), colour(self.shirt), arm, aa, shift
                )
            torso = np.array(
                [
                    pt(cx - 0.13 * h, neck[1]),
                    pt(cx + 0.13 * h, neck[1]),
                    pt(cx + 0.11 * h, hip[1]),
                    pt(cx - 0.11 * h, hip[1]),
                ],
                np.int32,
            )
            cv2.fillPoly(target, [torso], colour(self.shirt), aa, shift)
            cv2.circle(
                target,
                pt(cx, feet - 0.91 * h),
                round(0.085 * h * scale),
                colour(self.skin),
                -1,
                aa,
                shift,
            )


class _Car:
    """A car that drives along the road, alternating direction, with long gaps."""

    def __init__(
        self,
        width: int,
        height: int,
        rng: np.random.Generator,
        *,
        cross_seconds: float,
        pause_seconds: float,
        lead_seconds: float,
    ) -> None:
        self.width, self.height = width, height
        self.length = 0.26 * width
        self.tall = 0.11 * height
        self.cross, self.pause, self.lead = cross_seconds, pause_seconds, lead_seconds
        palette = [(40, 40, 180), (200, 200, 200), (50, 50, 50), (160, 100, 30)]
        self.paint = palette[int(rng.integers(0, len(palette)))]

    def __call__(self, state: _FrameState) -> None:
        if state.t < self.lead:
            return
        cycle, phase = divmod(state.t - self.lead, self.cross + self.pause)
        if phase >= self.cross:
            return
        progress = phase / self.cross
        forward = int(cycle) % 2 == 0
        if not forward:
            progress = 1.0 - progress
        x = -self.length + (self.width + self.length) * progress
        lane = 0.8 if forward else 0.7
        bottom = lane * self.height
        for target, fill in ((state.image, None), (state.truth, (255,))):
            self._draw(target, x, bottom, fill)

    def _draw(
        self,
        target: npt.NDArray[Any],
        x: float,
        bottom: float,
        fill: tuple[int, ...] | None,
    ) -> None:
        L, T = self.length, self.tall  # noqa: N806 (car length and height read as in a drawing)
        body = np.array(
            [
                [x, bottom - 0.25 * T],
                [x + L, bottom - 0.25 * T],
                [x + L, bottom - 0.55 * T],
                [x + 0.75 * L, bottom - 0.6 * T],
                [x + 0.62 * L, bottom - T],
                [x + 0.28 * L, bottom - T],
                [x + 0.15 * L, bottom - 0.6 * T],
                [x, bottom - 0.55 * T],
            ],
            np.float32,
        )
        shift = 4
        aa = cv2.LINE_8 if fill else cv2.LINE_AA
        pts = np.round(body * 16).astype(np.int32)
        cv2.fillPoly(target, [pts], fill or self.paint, aa, shift)
        glass = np.array(
            [
                [x + 0.3 * L, bottom - 0.93 * T],
                [x + 0.6 * L, bottom - 0.93 * T],
                [x + 0.7 * L, bottom - 0.6 * T],
                [x + 0.2 * L, bottom - 0.6 * T],
            ],
            np.float32,
        )
        cv2.fillPoly(
            target, [np.round(glass * 16).astype(np.int32)], fill or (70, 60, 50), aa, shift
        )
        for wx in (x + 0.2 * L, x + 0.8 * L):
            cv2.circle(
                target,
                (round(wx * 16), round((bottom - 0.22 * T) * 16)),
                round(0.22 * T * 16),
                fill or (25, 25, 25),
                -1,
                aa,
                shift,
            )


class _Foliage:
    """Trees and a bush whose crowns sway with gusty, quasi-periodic wind."""

    def __init__(self, background: FloatImage, rng: np.random.Generator) -> None:
        height, width = background.shape[:2]
        self.rgb = np.zeros_like(background)
        alpha = np.zeros((height, width), np.float32)
        leaf = _value_noise(rng, height, width, (2, 3, 6))
        trees = [(0.12, 0.1, 0.2), (0.36, 0.16, 0.14), (0.92, 0.08, 0.18)]
        for cx, top, radius in trees:
            x = int(cx * width)
            r = int(radius * height)
            trunk_top = int(top * height) + r
            cv2.rectangle(
                self.rgb,
                (x - r // 8, trunk_top),
                (x + r // 8, int(0.66 * height)),
                (40, 60, 85),
                -1,
            )
            cv2.rectangle(alpha, (x - r // 8, trunk_top), (x + r // 8, int(0.66 * height)), 1.0, -1)
            for _ in range(9):
                ox = int(rng.normal(0, r * 0.45))
                oy = int(top * height + r + rng.normal(0, r * 0.35))
                rr = int(r * (0.45 + 0.3 * rng.random()))
                cv2.circle(alpha, (x + ox, oy), rr, 2.0, -1)
        bush = (int(0.25 * width), int(0.6 * height), int(0.07 * height))
        cv2.ellipse(alpha, (bush[0], bush[1]), (bush[2] * 2, bush[2]), 0, 180, 360, 2.0, -1)
        crown = alpha >= 2.0
        self.rgb[crown] = np.array([40, 110, 45], np.float32) + (70 * leaf[crown])[:, None]
        alpha = np.minimum(alpha, 1.0)
        self.alpha = cv2.GaussianBlur(alpha, (3, 3), 0)
        ys, xs = np.nonzero(self.alpha > 0)
        self.y0, self.y1 = int(ys.min()), int(ys.max()) + 1
        self.x0, self.x1 = max(0, int(xs.min()) - 8), min(width, int(xs.max()) + 9)
        self.grid_x, self.grid_y = np.meshgrid(
            np.arange(self.x0, self.x1, dtype=np.float32),
            np.arange(self.y0, self.y1, dtype=np.float32),
        )
        # Tree tops bend more than the base; the trunk stays still.
        rel = (self.grid_y - self.y0) / max(1, self.y1 - self.y0)
        self.bend = np.clip(1.0 - rel * 1.1, 0.0, 1.0) ** 1.5
        self.amplitude = 0.009 * width
        self.ripple = 0.0025 * width

    def __call__(self, state: _FrameState) -> None:
        t = state.t
        gust = 0.6 + 0.4 * math.sin(2 * math.pi * t / 9.0)
        sway = gust * (
            math.sin(2 * math.pi * t / 2.3) + 0.4 * math.sin(2 * math.pi * t / 0.9 + 1.0)
        )
        # Leaves flutter independently of the crown: a travelling ripple across x.
        flutter = self.ripple * np.sin(self.grid_x * 0.21 + self.grid_y * 0.13 + t * 7.0)
        dx = self.amplitude * sway * self.bend + flutter * (self.bend > 0)
        dy = 0.3 * flutter
        map_x = self.grid_x - dx
        map_y = self.grid_y - dy
        region = (slice(self.y0, self.y1), slice(self.x0, self.x1))
        rgb = cv2.remap(self.rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.remap(
            self.alpha,
            map_x,
            map_y,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )[:, :, None]
        # The static base is composited here so the tree is drawn over the undisturbed ground.
        base = state.image[region]
        state.image[region] = base * (1.0 - alpha) + rgb * alpha


class _Precipitation:
    """Rain streaks or snow flakes, new positions every frame (at 15 fps they jump far)."""

    def __init__(self, width: int, height: int, *, kind: str, density: float) -> None:
        self.width, self.height = width, height
        self.kind = kind
        # Streaks per picture, not per pixel: the same storm looks the same at any resolution
        # (density is per 1000 pixels of a 640x480 picture).
        self.count = int(density * 640 * 480 / 1000)

    def __call__(self, state: _FrameState) -> None:
        rng = state.rng
        n = self.count
        xs = rng.uniform(-20, self.width, n)
        ys = rng.uniform(-20, self.height, n)
        overlay = np.zeros(state.image.shape[:2], np.float32)
        scale = self.height / 480
        if self.kind == "rain":
            length = rng.uniform(10, 28, n) * scale
            x2 = xs + 0.25 * length
            y2 = ys + length
            lines = np.stack([xs, ys, x2, y2], axis=1).round().astype(np.int32)
            strength = rng.uniform(0.25, 0.6, n)
            for level in (0.3, 0.45, 0.6):
                chosen = lines[(strength <= level) & (strength > level - 0.15)]
                polys = [c.reshape(2, 2) for c in chosen]
                cv2.polylines(overlay, polys, False, level, max(1, round(scale)), cv2.LINE_AA)
            state.image *= 0.93
            state.image += overlay[:, :, None] * (230 - state.image)
        else:
            radius = np.where(rng.random(n) < 0.03, rng.uniform(3, 6, n), rng.uniform(0.8, 2, n))
            radius = radius * scale
            for x, y, r in zip(xs, ys, radius, strict=True):
                cv2.circle(
                    overlay,
                    (round(x * 16), round(y * 16)),
                    max(1, round(r * 16)),
                    0.8,
                    -1,
                    cv2.LINE_AA,
                    4,
                )
            blurred = cv2.GaussianBlur(overlay, (3, 3), 0)
            state.image += blurred[:, :, None] * (240 - state.image)


class Scene:
    """A deterministic synthetic camera: ``render(i)`` → (BGR uint8 frame, uint8 truth mask)."""

    def __init__(
        self,
        name: str,
        width: int,
        height: int,
        *,
        seed: int,
        fps: float,
        background: FloatImage,
        layers: list[Layer],
        post: Callable[[_FrameState], None] | None,
        noise_sigma: float | Callable[[float], float],
        num_frames: int | None = None,
    ) -> None:
        self.name = name
        self.description = SCENES[name]
        self.width, self.height = width, height
        self.seed = seed
        self.fps = fps
        self.num_frames = num_frames
        self.eval_frames = round(EVAL_SECONDS[name] * fps)
        self._background = background
        self._layers = layers
        self._post = post
        self._noise_sigma = noise_sigma

    def render(self, index: int) -> tuple[ByteImage, ByteImage]:
        if index < 0 or (self.num_frames is not None and index >= self.num_frames):
            raise IndexError(f"frame {index} is outside scene {self.name}")
        t = index / self.fps
        state = _FrameState(
            image=self._background.copy(),
            truth=np.zeros((self.height, self.width), np.uint8),
            t=t,
            index=index,
            rng=np.random.default_rng([self.seed, index, 0x5EED]),
        )
        for layer in self._layers:
            layer(state)
        if self._post is not None:
            self._post(state)
        sigma = self._noise_sigma(t) if callable(self._noise_sigma) else self._noise_sigma
        if sigma > 0:
            noise = state.rng.standard_normal((self.height, self.width), np.float32)
            # Mostly luminance noise plus a little chroma noise, like a real sensor.
            chroma = state.rng.standard_normal((self.height, self.width, 3), np.float32)
            state.image += sigma * (0.8 * noise[:, :, None] + 0.45 * chroma)
        frame = np.clip(state.image, 0, 255).astype(np.uint8)
        return frame, state.truth

    def truth_intervals(self, num_frames: int) -> list[tuple[int, int]]:
        """Runs of frames (first, last inclusive) in which something truly moves."""
        intervals: list[tuple[int, int]] = []
        start: int | None = None
        for index in range(num_frames):
            moving = bool(self.render(index)[1].any())
            if moving and start is None:
                start = index
            elif not moving and start is not None:
                intervals.append((start, index - 1))
                start = None
        if start is not None:
            intervals.append((start, num_frames - 1))
        return intervals


def _lighting(width: int, height: int, rng: np.random.Generator) -> Layer:
    cloud = _value_noise(rng, height, width * 3, (max(16, width // 5), max(32, width // 2)))
    # Soft-edged shadows: the edge of a real cloud shadow spans tens of metres on the ground.
    shade = np.clip(0.5 + 0.8 * cloud, 0.0, 1.0).astype(np.float32)
    speed = 0.004 * width  # pixels per second-ish at 15 fps: a slow drifting cloud shadow

    def apply(state: _FrameState) -> None:
        t = state.t
        offset = int(speed * t * 15) % (2 * width)
        field = shade[:, offset : offset + width]
        gain = 0.72 + 0.28 * math.cos(2 * math.pi * t / 30.0)
        state.image *= (gain * (1.0 - 0.35 * field))[:, :, None]

    return apply


def _ir_switch(period: float) -> tuple[Callable[[_FrameState], None], Callable[[float], float]]:
    def night(t: float) -> bool:
        return (t % period) >= period / 2

    def apply(state: _FrameState) -> None:
        t = state.t
        if not night(t):
            return
        since = (t % period) - period / 2
        # Auto-exposure hunts for a couple of seconds after the switch, then settles.
        hunt = 0.25 * math.exp(-since / 1.2) * math.sin(2 * math.pi * since / 0.8)
        state.image[:] = _night_ir(state.image, 0.55 * (1.0 + hunt), 8.0)

    def sigma(t: float) -> float:
        return 5.5 if night(t) else 2.0

    return apply, sigma


def _hot_pixels(width: int, height: int, rng: np.random.Generator) -> Layer:
    count = max(1, width * height // 4000)
    ys = rng.integers(0, height, count)
    xs = rng.integers(0, width, count)

    def apply(state: _FrameState) -> None:
        # Hot pixels blink: a stuck pixel lit in some frames, off in others.
        lit = state.rng.random(count) < 0.5
        state.image[ys[lit], xs[lit]] = 255.0
        state.image *= 0.6

    return apply


def make_scene(name: str, width: int, height: int, seed: int = 0, fps: float = 15.0) -> Scene:
    """Build a named scene; raises ValueError naming the known scenes for an unknown name."""
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; known scenes: {', '.join(sorted(SCENES))}")
    if width < 32 or height < 32:
        raise ValueError("scene size must be at least 32x32")
    if fps <= 0:
        raise ValueError("fps must be positive")
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    background = _village_background(rng, width, height)
    layers: list[Layer] = []
    post: Callable[[_FrameState], None] | None = None
    sigma: float | Callable[[float], float] = 2.0
    if name in ("foliage", "person_by_trees"):
        layers.append(_Foliage(background, rng))
    if name in ("walking_person", "person_in_rain", "person_by_trees"):
        layers.append(
            _Walker(
                width,
                height,
                rng,
                body_height=0.34,
                ground_y=0.9,
                cross_seconds=7.0,
                pause_seconds=7.0,
                lead_seconds=2.5,
            )
        )
    if name == "car":
        layers.append(
            _Car(width, height, rng, cross_seconds=3.5, pause_seconds=8.5, lead_seconds=2.5)
        )
    if name == "small_person_night":
        layers.append(
            _Walker(
                width,
                height,
                rng,
                body_height=0.07,
                ground_y=0.56,
                cross_seconds=14.0,
                pause_seconds=6.0,
                lead_seconds=3.0,
                x_range=(0.15, 0.7),
                colours=((150, 150, 150), (120, 120, 120), (170, 170, 170)),
            )
        )
        post = _dark_ir
        sigma = 7.0
    if name in ("rain", "person_in_rain"):
        layers.append(_Precipitation(width, height, kind="rain", density=1.6))
        sigma = 3.0
    if name == "snow":
        layers.append(_Precipitation(width, height, kind="snow", density=1.2))
    if name == "lighting_ramp":
        layers.append(_lighting(width, height, rng))
    if name == "ir_switch":
        post, sigma = _ir_switch(period=20.0)
    if name == "sensor_noise":
        layers.append(_hot_pixels(width, height, rng))
        sigma = 10.0
    return Scene(
        name,
        width,
        height,
        seed=seed,
        fps=fps,
        background=background,
        layers=layers,
        post=post,
        noise_sigma=sigma,
    )


def _dark_ir(state: _FrameState) -> None:
    state.image[:] = _night_ir(state.image, 0.32, 6.0)


def write_cdnet(scene: Scene, folder: Path, num_frames: int, *, roi_start: int = 1) -> Path:
    """Write ``num_frames`` of ``scene`` as a CDnet-2014 folder; returns ``folder``.

    ``roi_start`` is the first scored frame (1-based) written to temporalROI.txt, as CDnet does
    to leave detectors a warm-up period.
    """
    (folder / "input").mkdir(parents=True, exist_ok=True)
    (folder / "groundtruth").mkdir(parents=True, exist_ok=True)
    for index in range(num_frames):
        frame, truth = scene.render(index)
        number = index + 1
        if not cv2.imwrite(
            str(folder / "input" / f"in{number:06d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92]
        ):
            raise OSError(f"cannot write frame {number} into {folder}")
        cv2.imwrite(str(folder / "groundtruth" / f"gt{number:06d}.png"), truth)
    (folder / "temporalROI.txt").write_text(f"{roi_start} {num_frames}\n", encoding="ascii")
    return folder
