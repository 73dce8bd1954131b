"""Motion detection: pure functions of arrays (no I/O, no clock reads)."""

from agent.motion.config import EventConfig, MotionConfig

__all__ = ["EventConfig", "MotionConfig"]
