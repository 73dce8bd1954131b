"""Pictures for upload tests: real JPEGs (one with a GPS EXIF block) and things that are not."""

from __future__ import annotations

import struct

import cv2
import numpy as np

# 30°15'43.21"N 120°9'12.34"E as EXIF rationals: present in the upload, absent once stored.
GPS_LATITUDE = struct.pack("<6I", 30, 1, 15, 1, 4321, 100)
GPS_LONGITUDE = struct.pack("<6I", 120, 1, 9, 1, 1234, 100)


def jpeg(width: int = 640, height: int = 480, seed: int = 1) -> bytes:
    """A photo-like JPEG (a gradient with some noise) as a camera would give."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, width, dtype=np.float32)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = ramp.astype(np.uint8)
    image[..., 1] = np.linspace(0, 255, height, dtype=np.float32)[:, None].astype(np.uint8)
    image[..., 2] = rng.integers(0, 255, (height, width), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), 90])
    assert ok
    return encoded.tobytes()


def exif_gps_block() -> bytes:
    """An APP1 Exif segment whose IFD0 points to a GPS IFD with latitude and longitude."""
    # TIFF header (little-endian), IFD0 at 8 with one entry: GPSInfo -> GPS IFD at 26.
    tiff = b"II*\x00" + struct.pack("<I", 8)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x8825, 4, 1, 26) + struct.pack("<I", 0)
    # GPS IFD: 4 entries (2 + 4*12 + 4 = 54 bytes), its rationals right after, at 80 and 104.
    tiff += struct.pack("<H", 4)
    tiff += struct.pack("<HHI4s", 1, 2, 2, b"N\x00\x00\x00")
    tiff += struct.pack("<HHII", 2, 5, 3, 80)
    tiff += struct.pack("<HHI4s", 3, 2, 2, b"E\x00\x00\x00")
    tiff += struct.pack("<HHII", 4, 5, 3, 104)
    tiff += struct.pack("<I", 0)
    assert len(tiff) == 80
    tiff += GPS_LATITUDE + GPS_LONGITUDE
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def jpeg_with_gps(width: int = 640, height: int = 480) -> bytes:
    plain = jpeg(width, height)
    return plain[:2] + exif_gps_block() + plain[2:]


def header_markers(data: bytes) -> list[int]:
    """The JPEG markers before the picture data (APPn, DQT, SOF, ...)."""
    assert data[:2] == b"\xff\xd8"
    markers, index = [], 2
    while index + 4 <= len(data):
        assert data[index] == 0xFF
        marker = data[index + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        index += 2 + struct.unpack(">H", data[index + 2 : index + 4])[0]
    return markers
