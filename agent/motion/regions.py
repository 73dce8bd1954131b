"""Zones and privacy masks: polygons in normalized coordinates turned into pixel masks.

A zone is where motion counts (only armed zones raise events; no zones means the whole frame). A
privacy mask is never analysed and is blacked out in every picture that leaves the detector.
Polygons come from the camera config (``name`` plus ``points`` in 0..1, origin top-left), but any
object with those two attributes will do, so this module does not depend on the config tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[Any]  # uint8, 255 inside


class PolygonLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def points(self) -> Sequence[tuple[float, float]]: ...


@dataclass(frozen=True)
class Region:
    """A named polygon in normalized coordinates; the detector's own copy of a config polygon."""

    name: str
    points: tuple[tuple[float, float], ...]

    @classmethod
    def of(cls, polygon: PolygonLike) -> Region:
        return cls(polygon.name, tuple((float(x), float(y)) for x, y in polygon.points))


def polygon_mask(polygons: Sequence[PolygonLike], width: int, height: int) -> Mask:
    """A uint8 mask (255 inside any polygon) of ``width`` x ``height`` pixels."""
    mask = np.zeros((height, width), np.uint8)
    if not polygons:
        return mask
    shift = 4  # sub-pixel vertices keep small polygons faithful at low resolution
    scale = float(1 << shift)
    contours = [
        np.array(
            [[round(x * width * scale), round(y * height * scale)] for x, y in polygon.points],
            np.int32,
        )
        for polygon in polygons
    ]
    cv2.fillPoly(mask, contours, 255, cv2.LINE_8, shift)
    return mask


class PrivacyMasker:
    """Blacks out privacy polygons in full-size BGR images (snapshots, clips, live pictures).

    The pixel mask is built once per image size, since cameras keep their size.
    """

    def __init__(self, polygons: Sequence[PolygonLike]) -> None:
        self.regions = tuple(Region.of(p) for p in polygons)
        self._cache: dict[tuple[int, int], Mask] = {}

    @property
    def active(self) -> bool:
        return bool(self.regions)

    def mask_for(self, width: int, height: int) -> Mask:
        key = (width, height)
        mask = self._cache.get(key)
        if mask is None:
            # Dilate by one pixel so anti-aliased edges of the polygon never leak a sliver.
            mask = cv2.dilate(polygon_mask(self.regions, width, height), np.ones((3, 3), np.uint8))
            self._cache[key] = mask
        return mask

    def apply(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """A copy of ``image`` (HxW or HxWx3) with every privacy pixel set to black."""
        out = image.copy()
        if not self.regions:
            return out
        mask = self.mask_for(image.shape[1], image.shape[0])
        out[mask > 0] = 0
        return out
