"""One router per area of the UI."""
