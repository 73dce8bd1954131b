"""Checking that an array is a picture the detector can use, with a clear error when it is not."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from agent.errors import ValidationError


class FrameError(ValidationError):
    """A frame was rejected: wrong type, dtype, shape or size, or empty."""

    def __init__(self, message: str) -> None:
        super().__init__("frame", message)


def check_frame(frame: object, width: int, height: int) -> npt.NDArray[np.uint8]:
    """Return ``frame`` typed as uint8 if it is a ``height`` x ``width`` BGR or gray image."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"expected a numpy array, got {type(frame).__name__}")
    if frame.size == 0:
        raise FrameError("empty image")
    if frame.dtype != np.uint8:
        raise FrameError(f"expected uint8 pixels, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] != 3):
        raise FrameError(f"expected HxWx3 BGR or HxW gray, got shape {frame.shape}")
    if frame.shape[0] != height or frame.shape[1] != width:
        raise FrameError(f"expected {width}x{height}, got {frame.shape[1]}x{frame.shape[0]}")
    return frame
