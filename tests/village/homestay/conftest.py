"""The homestay service's own fixtures, shared by its test modules."""

from tests.village.homestay.test_homestay import kiosk

__all__ = ["kiosk"]
