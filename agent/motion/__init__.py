"""Motion detection: pure functions of arrays (no I/O, no clock reads)."""

from agent.motion.config import EventConfig, MotionConfig
from agent.motion.detector import Box, MotionDetector, MotionResult
from agent.motion.frames import FrameError

__all__ = ["Box", "EventConfig", "FrameError", "MotionConfig", "MotionDetector", "MotionResult"]
