"""The motion detector: one frame in, a motion mask, boxes and a score out.

How it works (docs/MOTION.md has the long version):

1. The BGR frame is shrunk first (cheap linear resize) and only the small image is converted to
   gray, then mapped through a log table: a lighting change multiplies brightness, and in the log
   domain it becomes an addition that is easy to take out.
2. The difference to the background model is split into a coarse illumination field (block means
   over pixels that did not move last frame) and a residual. The illumination field is moved into
   the background at once, so slow clouds, dimming and exposure hunting never become motion and
   there is no "calibration" state to get stuck in.
3. A pixel is a motion candidate when it differs from every background pixel of its 3x3
   neighbourhood by more than k standard deviations of its own learned noise (never less than the
   frame's current noise floor). The neighbourhood tolerates swaying leaves and camera jitter of a
   pixel or two; the per-pixel noise learns what moves periodically (foliage, water) and raises
   the bar there.
4. A candidate must persist in two consecutive frames: rain streaks and snow flakes land somewhere
   else every frame. A median filter then removes specks, and blobs smaller than the minimum area
   are dropped.
5. When a large share of the frame changes at once (the IR filter switching, lights on), the model
   is re-based on the current frame and the frame is reported as a lighting change, never as
   motion. This suppression is bounded: a change that never settles is learned after
   ``max_global_change_frames`` frames like any other dynamic background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from agent.motion.config import MotionConfig
from agent.motion.frames import check_frame
from agent.motion.regions import PolygonLike, Region, polygon_mask

Box = tuple[int, int, int, int]
# OpenCV's stubs type every result as a generic array; these aliases say what the array holds.
FloatImage = npt.NDArray[Any]  # float32 at the detection size
Mask = npt.NDArray[Any]  # uint8 0/255 at the detection size

# Log table: brightness 0..255 → roughly one unit per gray level at mid-grey. The small offset
# keeps near-black pixels from exploding into noise.
_LOG_OFFSET = 4.0
_LOG_SCALE = 132.0
_LOG_TABLE = (_LOG_SCALE * np.log(np.arange(256, dtype=np.float64) + _LOG_OFFSET)).astype(
    np.float32
)
_INITIAL_NOISE = 3.0  # log units; relearned within the warm-up frames
_MIN_NOISE = 1.0  # quantisation alone is worth about this much
_VARIANCE_CAP = 8.0  # one frame can raise a pixel's variance by at most this factor x rate
_ILLUMINATION_CELLS = 10  # blocks across the frame for the illumination field
_SAMPLES_PER_CELL = 6  # a 6x6 sample grid per block: a cheap but robust median
_KERNEL = np.ones((3, 3), np.uint8)
_WIDE_KERNEL = np.ones((5, 5), np.uint8)
_BIG_GAIN_JUMP = _LOG_SCALE * math.log(1.3)  # a 30 % brightness jump in one frame
_NOISE_JUMP = 2.0  # frame noise this many times above or below its recent average
_NOISE_AVERAGE_RATE = 0.05
_NOISE_FLOOR = 0.3
_SURE_BLOB_FACTOR = 4  # blobs this many times the minimum area need no third frame
_BUDGET_REFILL = 0.25
_FORGET = 0.2  # noise is forgotten five times slower than it is learned
_SETTLE_FRAMES = 3  # frames a change must stay still before it is learned as settled
_ONE = np.ones((1,), np.uint8)


@dataclass(frozen=True)
class MotionResult:
    """What the detector saw in one frame.

    ``mask`` is at the detection resolution (``MotionDetector.detection_size``), 255 = motion,
    restricted to the zones (whole frame without zones) and never inside a privacy mask.
    ``boxes`` are ``(x, y, w, h)`` in input-frame pixels. ``score`` is the share of the counted
    area in motion (0..1). ``zones`` names the zones with motion. ``lighting_change`` is set on
    frames taken as a global lighting or IR change; ``learning`` during the first frames.
    """

    mask: Mask
    boxes: list[Box]
    score: float
    zones: tuple[str, ...] = ()
    lighting_change: bool = False
    learning: bool = False
    noise: float = 0.0
    timestamp: float | None = None
    changed_fraction: float = field(default=0.0, repr=False)

    @property
    def motion(self) -> bool:
        return bool(self.boxes)


def _median(values: FloatImage) -> float:
    flat = values.ravel()
    middle = flat.size // 2
    return float(np.partition(flat, middle)[middle])


def detection_size(frame_size: tuple[int, int], detection_width: int) -> tuple[int, int]:
    """The (width, height) the detector works at: never wider than the input."""
    width, height = frame_size
    small_w = min(detection_width, width)
    small_h = max(1, round(height * small_w / width))
    return small_w, small_h


class MotionDetector:
    """Adaptive background subtraction for one camera. Not thread-safe: one per capture thread."""

    def __init__(
        self,
        config: MotionConfig,
        frame_size: tuple[int, int],
        *,
        zones: Sequence[PolygonLike] = (),
        privacy_masks: Sequence[PolygonLike] = (),
    ) -> None:
        width, height = frame_size
        if width < 8 or height < 8:
            raise ValueError(f"frame size {width}x{height} is too small")
        self.config = config
        self.frame_size = (width, height)
        self.detection_size = detection_size(self.frame_size, config.detection_width)
        dw, dh = self.detection_size
        self._scale = (width / dw, height / dh)
        self.zones = tuple(Region.of(z) for z in zones)
        self.privacy_masks = tuple(Region.of(p) for p in privacy_masks)

        privacy = polygon_mask(self.privacy_masks, dw, dh)
        if self.privacy_masks:
            privacy = cv2.dilate(privacy, _KERNEL)
        self._privacy: Mask = privacy
        self._keep: Mask = cv2.bitwise_not(privacy)
        self._keep_float: FloatImage | None = (
            (self._keep / 255.0).astype(np.float32) if self.privacy_masks else None
        )
        self._keep_pixels = max(1, cv2.countNonZero(self._keep))
        self._zone_masks = [
            (zone.name, cv2.bitwise_and(polygon_mask([zone], dw, dh), self._keep))
            for zone in self.zones
        ]
        if self._zone_masks:
            counted: Mask = np.zeros((dh, dw), np.uint8)
            for _, zone_mask in self._zone_masks:
                counted = cv2.bitwise_or(counted, zone_mask)
            self._counted = counted
        else:
            self._counted = self._keep
        self._counted_pixels = max(1, cv2.countNonZero(self._counted))
        cells_x = max(2, min(_ILLUMINATION_CELLS, dw // 8))
        cells_y = max(2, round(cells_x * dh / dw))
        self._cells = (cells_x, cells_y)
        self._empty_mask: Mask = np.zeros((dh, dw), np.uint8)
        self.set_sensitivity(config.sensitivity)
        self.reset()

    # -- settings -----------------------------------------------------------------------------

    def set_sensitivity(self, value: float) -> None:
        """0 = only strong, large motion; 1 = faint, small motion. Takes effect next frame."""
        if not 0.0 <= value <= 1.0 or math.isnan(value):
            raise ValueError("sensitivity must be between 0 and 1")
        self.sensitivity = value
        self._k = 5.5 - 3.0 * value
        self._lighting_spread = _LOG_SCALE * math.log1p(self.config.lighting_spread / 100.0)
        area = self.config.min_area_fraction * self._counted_pixels
        # Sensitive settings accept smaller blobs, down to a few pixels for distant people.
        self._min_pixels = max(3, round(area * (1.5 - value)))

    def reset(self) -> None:
        """Forget the background (after a camera reconnect, for example)."""
        self._frames = 0
        self._background: FloatImage | None = None
        self._previous_level: FloatImage = np.zeros(
            (self.detection_size[1], self.detection_size[0]), np.float32
        )
        self._variance: FloatImage | None = None
        self._previous_raw: Mask = self._empty_mask.copy()
        self._previous_persistent: Mask = self._empty_mask.copy()
        self._settled_frames: Mask = self._empty_mask.copy()
        self._previous_motion: Mask = self._empty_mask.copy()
        self._ignore: Mask = self._privacy
        self._global_spent = 0.0
        self._noise_average = 0.0
        self._noise_jump = 0

    # -- detection ----------------------------------------------------------------------------

    def detect(
        self, frame: npt.NDArray[np.uint8], *, timestamp: float | None = None
    ) -> MotionResult:
        """Analyse one frame; raises agent.motion.frames.FrameError for an unusable frame."""
        width, height = self.frame_size
        image: npt.NDArray[Any] = check_frame(frame, width, height)
        dw, dh = self.detection_size
        if (width, height) != (dw, dh):
            image = cv2.resize(image, (dw, dh), interpolation=cv2.INTER_LINEAR)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        level = cv2.GaussianBlur(cv2.LUT(gray, _LOG_TABLE), (3, 3), 0)
        if self._keep_float is not None:
            level = cv2.multiply(level, self._keep_float)

        background, variance = self._background, self._variance
        if background is None or variance is None:
            self._background = level.copy()
            self._previous_level = level
            self._variance = np.full((dh, dw), _INITIAL_NOISE**2, np.float32)
            self._frames = 1
            return self._quiet(timestamp, learning=True)
        self._frames += 1
        learning = self._frames <= self.config.warmup_frames

        difference = cv2.subtract(level, background)
        blocks = self._illumination_blocks(difference)
        background = cv2.add(background, self._illumination_field(blocks))
        residual = cv2.subtract(level, background)

        noise = self._frame_noise(residual)
        floor = max(_MIN_NOISE, 0.7 * noise) ** 2
        threshold = np.sqrt(np.maximum(variance, np.float32(floor))) * np.float32(self._k)
        # Distance to the nearest value in the 3x3 neighbourhood of the background: a leaf that
        # swayed a pixel still matches its own old position.
        above = cv2.subtract(level, cv2.dilate(background, _KERNEL))
        below = cv2.subtract(cv2.erode(background, _KERNEL), level)
        distance = cv2.max(above, below)
        raw = cv2.compare(distance, threshold, cv2.CMP_GT)
        if self._keep_float is not None:
            raw = cv2.bitwise_and(raw, self._keep)

        changed = cv2.countNonZero(raw) / self._keep_pixels
        # A lighting change moves blocks unevenly (IR switch: sky darker, grass brighter); a
        # uniform gain change is already absorbed and a person moves only a few blocks.
        level_jump = _median(blocks)
        spread = _median(np.abs(blocks - level_jump))
        # So does a jump in sensor noise (the camera switching to night mode raises its gain).
        if learning or self._noise_average <= 0:
            self._noise_average = max(self._noise_average, noise)
        noise_ratio = noise / self._noise_average
        # A noise jump must last two frames in the same direction: a shaking camera makes the
        # residual noise flicker up and down from frame to frame.
        noise_jump = (noise_ratio > _NOISE_JUMP) - (noise_ratio < 1 / _NOISE_JUMP)
        noise_sudden = noise_jump != 0 and noise_jump == self._noise_jump
        self._noise_jump = noise_jump
        sudden = (
            spread > max(self._lighting_spread, 2.0 * noise)
            or abs(level_jump) > _BIG_GAIN_JUMP
            or noise_sudden
        )
        if sudden and not learning:
            # Rescale every pixel's learned noise by the change of the frame's noise floor.
            variance = variance * np.float32(min(max(noise_ratio, 0.25), 8.0) ** 2)
            self._noise_average = noise
        else:
            self._noise_average += _NOISE_AVERAGE_RATE * (noise - self._noise_average)
        # Suppression has a budget: each lighting-change frame spends one frame of it, each calm
        # frame earns back a quarter. A change that never settles (auto exposure gone mad,
        # flickering lamp) exhausts the budget, and from then on it is learned like any other
        # dynamic background instead of blinding the detector forever.
        if (sudden or changed > self.config.global_change_fraction) and not learning:
            self._global_spent += 1.0
            if self._global_spent <= self.config.max_global_change_frames:
                self._rebase(level, variance, residual)
                return self._quiet(timestamp, lighting_change=True, changed=changed, noise=noise)
        else:
            self._global_spent = max(0.0, self._global_spent - _BUDGET_REFILL)

        persistent = cv2.bitwise_and(raw, cv2.dilate(self._previous_raw, _KERNEL))
        persistent = cv2.medianBlur(persistent, 3)
        self._previous_raw = raw
        # A small blob must also overlap what persisted the frame before: rain and snow leave
        # specks that survive two frames by chance, never three in the same place.
        confirmed_by = self._previous_persistent
        self._previous_persistent = cv2.dilate(persistent, _KERNEL)
        # Pixels that differ from the background but not from the previous frame have stopped
        # moving: a ghost or a parked object, learned faster than a moving one.
        previous = self._previous_level
        self._previous_level = level
        # Within a pixel of travel, like the background test, so a shaking camera still lets
        # a ghost settle.
        moved = cv2.max(
            cv2.subtract(level, cv2.dilate(previous, _KERNEL)),
            cv2.subtract(cv2.erode(previous, _KERNEL), level),
        )
        settled = cv2.compare(moved, threshold * np.float32(0.5), cv2.CMP_LT)

        self._learn(level, background, variance, residual, raw, settled, learning)
        if learning:
            return self._quiet(timestamp, learning=True, changed=changed, noise=noise)
        return self._result(
            persistent, confirmed_by, distance, threshold, timestamp, changed, noise
        )

    # -- steps ----------------------------------------------------------------------------------

    def _illumination_blocks(self, difference: FloatImage) -> FloatImage:
        """Brightness change of the still part of the scene, one value per block.

        Each block's change is the median of a grid of samples, with samples that moved last
        frame counted as unchanged: an object entering a block is a minority of its samples
        and does not leak into the lighting estimate (a mean would leave a ghost behind it).
        """
        cells_x, cells_y = self._cells
        side = _SAMPLES_PER_CELL
        grid = (cells_x * side, cells_y * side)
        samples = cv2.resize(difference, grid, interpolation=cv2.INTER_NEAREST)
        moving = cv2.resize(self._ignore, grid, interpolation=cv2.INTER_NEAREST)
        samples[moving > 0] = 0.0
        per_block = (
            samples.reshape(cells_y, side, cells_x, side)
            .transpose(0, 2, 1, 3)
            .reshape(cells_y, cells_x, side * side)
        )
        middle = side * side // 2
        field = np.partition(per_block, middle, axis=2)[:, :, middle]
        return np.ascontiguousarray(field, dtype=np.float32)

    def _illumination_field(self, blocks: FloatImage) -> FloatImage:
        """Blocks interpolated to full size; the outer half-blocks are extrapolated, so a
        brightness gradient (a cloud edge) is followed right up to the frame border."""
        dw, dh = self.detection_size
        cells_x, cells_y = self._cells
        padded = np.empty((cells_y + 2, cells_x + 2), np.float32)
        padded[1:-1, 1:-1] = blocks
        padded[1:-1, 0] = 2 * blocks[:, 0] - blocks[:, 1]
        padded[1:-1, -1] = 2 * blocks[:, -1] - blocks[:, -2]
        padded[0] = 2 * padded[1] - padded[2]
        padded[-1] = 2 * padded[-2] - padded[-3]
        block_w, block_h = dw / cells_x, dh / cells_y
        size = (round((cells_x + 2) * block_w), round((cells_y + 2) * block_h))
        field = cv2.resize(padded, size, interpolation=cv2.INTER_LINEAR)
        x0, y0 = round(block_w), round(block_h)
        return field[y0 : y0 + dh, x0 : x0 + dw]

    def _frame_noise(self, residual: FloatImage) -> float:
        """Robust noise level of this frame (median absolute residual on a sparse grid)."""
        sample = np.abs(residual[1::4, 1::4]).ravel()
        middle = sample.size // 2
        # A perfectly still synthetic or frozen picture has no noise at all; keep a floor so
        # ratios of noise levels stay finite.
        return max(_NOISE_FLOOR, float(np.partition(sample, middle)[middle]) * 1.4826)

    def _rebase(self, level: FloatImage, variance: FloatImage, residual: FloatImage) -> None:
        """Take the current frame as the new background after a global change."""
        self._background = level.copy()
        self._previous_level = level
        # The new scene may be noisier (IR at night): start from what this frame shows.
        noise = self._frame_noise(residual)
        self._variance = np.maximum(variance, np.float32(max(_MIN_NOISE, noise) ** 2 * 0.25))
        self._previous_raw = self._empty_mask.copy()
        self._previous_persistent = self._empty_mask.copy()
        self._settled_frames = self._empty_mask.copy()
        self._previous_motion = self._empty_mask.copy()
        self._ignore = self._privacy

    def _learn(
        self,
        level: FloatImage,
        background: FloatImage,
        variance: FloatImage,
        residual: FloatImage,
        raw: Mask,
        settled: Mask,
        learning: bool,
    ) -> None:
        cfg = self.config
        # While learning, everything is background: whatever sways in the first seconds (trees,
        # water) sets its own noise level before it could be taken for motion.
        moving = self._empty_mask if learning else cv2.dilate(raw, _WIDE_KERNEL)
        still = cv2.bitwise_not(moving)
        fast = max(cfg.background_rate, 1.0 / self._frames) if learning else cfg.background_rate
        cv2.accumulateWeighted(level, background, fast, mask=still)
        # Only a change that stays still for a while has settled: a planted foot in mid-stride
        # must not be learned, or it leaves a ghost behind when the walker has gone.
        still_changed = cv2.bitwise_and(settled, moving)
        self._settled_frames = cv2.bitwise_and(cv2.add(self._settled_frames, _ONE), still_changed)
        _, settled = cv2.threshold(self._settled_frames, _SETTLE_FRAMES - 1, 255, cv2.THRESH_BINARY)
        if cfg.moving_rate > 0:
            cv2.accumulateWeighted(
                level, background, cfg.moving_rate, mask=cv2.bitwise_xor(moving, settled)
            )
        if cfg.settled_rate > 0:
            cv2.accumulateWeighted(level, background, cfg.settled_rate, mask=settled)
        squared = cv2.multiply(residual, residual)
        squared = cv2.min(squared, variance * np.float32(_VARIANCE_CAP))
        rate = max(cfg.variance_rate, 1.0 / self._frames) if learning else cfg.variance_rate
        # Noise is learned fast upwards and forgotten slowly: foliage in gusty wind keeps the
        # bar of its strongest gust through the calm between gusts.
        rising = cv2.bitwise_and(cv2.compare(squared, variance, cv2.CMP_GT), still)
        cv2.accumulateWeighted(squared, variance, rate, mask=rising)
        falling = rate if learning else rate * _FORGET
        cv2.accumulateWeighted(squared, variance, falling, mask=cv2.bitwise_xor(still, rising))
        # Under motion the noise is still learned, ten times slower: a swaying branch raises
        # its own bar within seconds, a person walking past leaves almost no trace.
        cv2.accumulateWeighted(squared, variance, rate * 0.1, mask=moving)
        self._background = background
        self._variance = variance
        self._previous_motion = moving
        # A change that stopped moving (a ghost, a patch of light) takes part in the lighting
        # estimate again, so light that keeps changing under it is followed.
        self._ignore = cv2.bitwise_or(cv2.bitwise_xor(moving, settled), self._privacy)

    def _result(
        self,
        persistent: Mask,
        confirmed_by: Mask,
        distance: FloatImage,
        threshold: FloatImage,
        timestamp: float | None,
        changed: float,
        noise: float,
    ) -> MotionResult:
        counted = cv2.bitwise_and(persistent, self._counted)
        if not cv2.countNonZero(counted):
            return self._quiet(timestamp, changed=changed, noise=noise)
        # Close small gaps so a person split into head, body and legs is one blob. Contours
        # are far cheaper than labelling when, as usual, only a few blobs move.
        joined = cv2.dilate(counted, _KERNEL)
        contours, _ = cv2.findContours(joined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[Box] = []
        dropped = []
        sx, sy = self._scale
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            blob = counted[y : y + h, x : x + w]
            pixels = cv2.countNonZero(blob)
            if pixels < self._min_pixels or (
                # A big blob is not chance; a small one must have been there the frame before.
                pixels < _SURE_BLOB_FACTOR * self._min_pixels
                and 2 * cv2.countNonZero(cv2.bitwise_and(blob, confirmed_by[y : y + h, x : x + w]))
                < pixels
            ):
                dropped.append(contour)
                continue
            boxes.append((int(x * sx), int(y * sy), max(1, round(w * sx)), max(1, round(h * sy))))
        if not boxes:
            return self._quiet(timestamp, changed=changed, noise=noise)
        if dropped:
            cv2.drawContours(counted, dropped, -1, 0, -1)
        # Hysteresis: around a confirmed blob, half the threshold is enough, which recovers the
        # faint edges and limbs of the same object without letting anything new in.
        weak = cv2.compare(distance, threshold * np.float32(0.5), cv2.CMP_GT)
        near = cv2.bitwise_and(cv2.dilate(counted, _WIDE_KERNEL), self._counted)
        counted = cv2.bitwise_or(counted, cv2.bitwise_and(weak, near))
        zones = tuple(
            name
            for name, zone_mask in self._zone_masks
            if cv2.countNonZero(cv2.bitwise_and(counted, zone_mask))
            >= max(1, self._min_pixels // 2)
        )
        score = cv2.countNonZero(counted) / self._counted_pixels
        return MotionResult(
            mask=counted,
            boxes=boxes,
            score=score,
            zones=zones,
            noise=noise,
            timestamp=timestamp,
            changed_fraction=changed,
        )

    def _quiet(
        self,
        timestamp: float | None,
        *,
        learning: bool = False,
        lighting_change: bool = False,
        changed: float = 0.0,
        noise: float = 0.0,
    ) -> MotionResult:
        return MotionResult(
            mask=self._empty_mask.copy(),
            boxes=[],
            score=0.0,
            learning=learning,
            lighting_change=lighting_change,
            noise=noise,
            timestamp=timestamp,
            changed_fraction=changed,
        )
