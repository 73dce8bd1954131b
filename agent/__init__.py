"""Village kiosk edge agent: cameras, motion alerts to the county police, village services."""

__version__ = "0.1.0"
