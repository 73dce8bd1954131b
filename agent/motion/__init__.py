"""Motion detection: pure functions of arrays (no I/O, no clock reads)."""

from agent.motion.config import EventConfig, MotionConfig
from agent.motion.detector import Box, MotionDetector, MotionResult
from agent.motion.frames import FrameError
from agent.motion.regions import PrivacyMasker
from agent.motion.schedule import is_armed
from agent.motion.tracker import EventTracker, EventTransition

__all__ = [
    "Box",
    "EventConfig",
    "EventTracker",
    "EventTransition",
    "FrameError",
    "MotionConfig",
    "MotionDetector",
    "MotionResult",
    "PrivacyMasker",
    "is_armed",
]
