"""Photos that villagers, staff and hosts upload (products, attractions, ...): checked, cleaned
and kept under ``<data_dir>/photos/<area>/``.

What an upload goes through (``PhotoStore.prepare``, CPU work, outside any transaction):
- size: at most ``PhotoLimits.max_bytes`` is ever read from the upload; one byte more and it
  is refused (``<area>.photo.too_large``). The web route's own body limit
  (``UPLOAD_BODY_LIMIT``) refuses a larger request before its body is read at all;
- type: JPEG, PNG or WebP by their first bytes, with the picture size read from the header
  before anything is decoded, so a small file that would decode into gigabytes (a
  "decompression bomb") is refused (``<area>.photo.too_many_pixels``); then it must decode
  with OpenCV (``<area>.photo.not_image`` for anything else, a renamed document included);
- re-encoded as a JPEG of at most ``max_side`` pixels on its longest side. Nothing of the
  uploaded file is kept: EXIF (GPS position, camera serial, time), XMP, comments and any bytes
  after the picture are gone. OpenCV turns the picture upright by its EXIF orientation while
  decoding, so a phone's portrait photo stays upright without the tag.

Then ``PhotoStore.add(db, prepared, owner=...)`` inside the caller's write transaction: the
owner's bound (``max_per_owner`` photos and ``max_bytes_per_owner`` bytes of stored JPEG in
this area) is checked under the write lock, the row is written and the file is written
beside it through a temporary file and a rename, so a reader never sees half a file. A
transaction that rolls back after that leaves a file without a row: nothing serves it
(``read`` needs the row) and ``purge_orphans`` deletes it.

Use from a service::

    store = PhotoStore(parts.database, parts.config.device.data_dir / "photos",
                       area="products", limits=settings.photos)
    store.migrate()                               # in the service's migrate()
    prepared = store.prepare(upload_file)          # raises ValidationError("photo", ...)
    with database.write() as db:
        photo = store.add(db, prepared, owner=actor)   # -> Photo (id, size, width, height)
        ...                                        # the service's row naming photo.id
    data = store.read(photo_id)                    # bytes of image/jpeg; RecordNotFoundError
    store.remove(db, photo_id)                     # row and file

Photo ids are 32 random hex digits; ``read`` and ``remove`` refuse anything else before a path
is built, so no id can reach outside the area's folder. Which photo may be shown to whom is the
service's rule: it serves only ids its own records name. Error texts: merge
``error_messages(area)`` into the service's ERROR_MESSAGES and its catalogs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, BinaryIO

import cv2
import numpy as np
import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field

from agent.errors import RecordNotFoundError, StoreError, ValidationError
from agent.store.database import Database, Migration

log = logging.getLogger(__name__)

AREA = "photos"
MiB = 1024 * 1024
# The largest photo any service may allow; the upload routes' body limit is built from it.
MAX_PHOTO_BYTES = 16 * MiB
# Room for the form's other fields and the multipart framing besides one photo.
FORM_OVERHEAD_BYTES = 256 * 1024
# The request body limit of a route that takes photos (FastAPI's per-route max_body_size,
# which overrides the app-wide [web] max_body_bytes for that route only).
UPLOAD_BODY_LIMIT = MAX_PHOTO_BYTES + FORM_OVERHEAD_BYTES
# A decoded 40 MP picture is 120 MB of BGR: the most a Pi should be asked to hold at once.
MAX_PIXELS = 40_000_000
PHOTO_ID = re.compile(r"[0-9a-f]{32}")
PHOTO_ID_PATTERN = r"^[0-9a-f]{32}$"
# A file without its row younger than this may belong to a transaction still running.
ORPHAN_GRACE_SECONDS = 3600.0
CONTENT_TYPE = "image/jpeg"


class PhotoLimits(BaseModel):
    """A service's photo settings (``[services.<name>.photos]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: Annotated[int, Field(ge=64 * 1024, le=MAX_PHOTO_BYTES)] = 8 * MiB
    max_side: Annotated[int, Field(ge=320, le=4096)] = 1600
    jpeg_quality: Annotated[int, Field(ge=50, le=95)] = 85
    max_per_owner: Annotated[int, Field(ge=1, le=100_000)] = 200
    max_bytes_per_owner: Annotated[int, Field(ge=MiB, le=64 * 1024 * MiB)] = 200 * MiB


def error_messages(area: str) -> dict[str, str]:
    """The English text of the codes ``PhotoStore(area=...)`` raises."""
    return {
        f"{area}.photo.required": "Choose a photo.",
        f"{area}.photo.too_large": "The photo is too large.",
        f"{area}.photo.not_image": "This file is not a JPEG, PNG or WebP picture.",
        f"{area}.photo.too_many_pixels": "The picture has too many pixels.",
        f"{area}.photo.owner_count": "This account has stored as many photos as it may.",
        f"{area}.photo.owner_bytes": "This account's photos take all the space it may use.",
        f"{area}.photo.not_found": "This photo does not exist.",
    }


@dataclass(frozen=True)
class PreparedPhoto:
    """A cleaned photo ready to store: JPEG bytes that contain nothing of the upload but its
    pixels."""

    jpeg: bytes
    width: int
    height: int


@dataclass(frozen=True)
class Photo:
    id: str
    owner: str
    size: int
    width: int
    height: int
    created_at: datetime


def _create_tables(db: sqlite_utils.Database) -> None:
    db["photos"].create(  # type: ignore[union-attr]
        {
            "id": str,
            "area": str,
            "owner": str,
            "size": int,
            "width": int,
            "height": int,
            "created_at": str,
        },
        pk="id",
        not_null={"area", "owner", "size", "width", "height", "created_at"},
        if_not_exists=True,
    )
    db["photos"].create_index(["area", "owner"], if_not_exists=True)  # type: ignore[union-attr]


MIGRATIONS = (Migration(1, "photos: one row per stored photo, by area and owner", _create_tables),)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PhotoStore:
    """The photos of one area (one service) on disk, with their rows in the database."""

    def __init__(
        self,
        database: Database,
        root: Path,
        *,
        area: str,
        limits: PhotoLimits | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", area):
            raise ValueError(f"photo area must be a lowercase identifier, not {area!r}")
        self._database = database
        self._folder = root / area
        self._area = area
        self.limits = limits or PhotoLimits()
        self._clock = clock

    @property
    def folder(self) -> Path:
        return self._folder

    def migrate(self) -> None:
        self._database.migrate(AREA, MIGRATIONS)
        try:
            self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the photo folder {self._folder}: {exc}") from exc

    # -- checking and cleaning --------------------------------------------------------------

    def prepare(self, upload: BinaryIO | bytes | None) -> PreparedPhoto:
        """Check an upload and re-encode it; raises ValidationError("photo", code)."""
        data = self._read_bounded(upload)
        kind_size = picture_size(data)
        if kind_size is None:
            raise self._invalid("not_image")
        width, height = kind_size[1:]
        if width < 1 or height < 1:
            raise self._invalid("not_image")
        if width * height > MAX_PIXELS:
            raise self._invalid("too_many_pixels")
        flags = cv2.IMREAD_COLOR
        if kind_size[0] == "jpeg":
            # libjpeg scales while decoding: a 4000 px phone photo never exists in full.
            for factor, reduced in ((8, cv2.IMREAD_REDUCED_COLOR_8),
                                    (4, cv2.IMREAD_REDUCED_COLOR_4),
                                    (2, cv2.IMREAD_REDUCED_COLOR_2)):  # fmt: skip
                if max(width, height) // factor >= self.limits.max_side:
                    flags = reduced
                    break
        try:
            image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
        except cv2.error:
            image = None
        if image is None or image.ndim != 3 or image.size == 0:
            raise self._invalid("not_image")
        image = _bounded(image, self.limits.max_side)
        ok, encoded = cv2.imencode(
            ".jpg",
            image,
            [int(cv2.IMWRITE_JPEG_QUALITY), self.limits.jpeg_quality,
             int(cv2.IMWRITE_JPEG_OPTIMIZE), 1],
        )  # fmt: skip
        if not ok:
            raise self._invalid("not_image")
        return PreparedPhoto(encoded.tobytes(), int(image.shape[1]), int(image.shape[0]))

    def _read_bounded(self, upload: BinaryIO | bytes | None) -> bytes:
        if upload is None:
            raise self._invalid("required")
        if isinstance(upload, bytes):
            data = upload[: self.limits.max_bytes + 1]
        else:
            data = upload.read(self.limits.max_bytes + 1)
        if not data:
            raise self._invalid("required")
        if len(data) > self.limits.max_bytes:
            raise self._invalid("too_large")
        return data

    def _invalid(self, what: str) -> ValidationError:
        return ValidationError("photo", f"{self._area}.photo.{what}")

    # -- storing ----------------------------------------------------------------------------

    def add(self, db: sqlite_utils.Database, prepared: PreparedPhoto, *, owner: str) -> Photo:
        """Store a prepared photo for ``owner`` in the caller's write transaction."""
        count, used = self._usage(db, owner)
        if count >= self.limits.max_per_owner:
            raise self._invalid("owner_count")
        if used + len(prepared.jpeg) > self.limits.max_bytes_per_owner:
            raise self._invalid("owner_bytes")
        photo = Photo(
            id=secrets.token_hex(16),
            owner=owner,
            size=len(prepared.jpeg),
            width=prepared.width,
            height=prepared.height,
            created_at=self._clock(),
        )
        db["photos"].insert(  # type: ignore[union-attr]
            {
                "id": photo.id,
                "area": self._area,
                "owner": owner,
                "size": photo.size,
                "width": photo.width,
                "height": photo.height,
                "created_at": photo.created_at.astimezone(UTC).isoformat(timespec="seconds"),
            }
        )
        self._write_file(self._path(photo.id), prepared.jpeg)
        return photo

    def usage(self, owner: str) -> tuple[int, int]:
        """How many photos ``owner`` keeps in this area, and their bytes."""
        with self._database.read() as db:
            return self._usage(db, owner)

    def _usage(self, db: sqlite_utils.Database, owner: str) -> tuple[int, int]:
        row = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM photos WHERE area = ? AND owner = ?",
            [self._area, owner],
        ).fetchone()
        return int(row[0]), int(row[1])

    def read(self, photo_id: str) -> bytes:
        """The stored JPEG; RecordNotFoundError for an unknown or malformed id."""
        path = self._path(photo_id)
        with self._database.read() as db:
            row = db.execute(
                "SELECT 1 FROM photos WHERE id = ? AND area = ?", [photo_id, self._area]
            ).fetchone()
        if row is None:
            raise RecordNotFoundError("photo", f"{self._area}.photo.not_found")
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise RecordNotFoundError("photo", f"{self._area}.photo.not_found") from exc
        except OSError as exc:
            raise StoreError(f"cannot read photo {photo_id}: {exc}") from exc

    def remove(self, db: sqlite_utils.Database, photo_id: str) -> None:
        """Delete the row (in the caller's transaction) and the file."""
        path = self._path(photo_id)
        db.execute("DELETE FROM photos WHERE id = ? AND area = ?", [photo_id, self._area])
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def purge_orphans(self) -> int:
        """Delete files without a row (left by a transaction that rolled back), and temporary
        files left by a crash; returns how many went."""
        cutoff = time.time() - ORPHAN_GRACE_SECONDS
        with self._database.read() as db:
            known = {
                row[0] for row in db.execute("SELECT id FROM photos WHERE area = ?", [self._area])
            }
        removed = 0
        try:
            entries = list(self._folder.iterdir())
        except FileNotFoundError:
            return 0
        for path in entries:
            stem = path.name.removesuffix(".jpg")
            if path.suffix == ".jpg" and stem in known:
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.info("removed %d photo files without a record in %s", removed, self._area)
        return removed

    def _path(self, photo_id: str) -> Path:
        if not isinstance(photo_id, str) or not PHOTO_ID.fullmatch(photo_id):
            raise RecordNotFoundError("photo", f"{self._area}.photo.not_found")
        return self._folder / f"{photo_id}.jpg"

    def _write_file(self, path: Path, data: bytes) -> None:
        try:
            descriptor, temporary = tempfile.mkstemp(dir=self._folder, prefix=".upload-")
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                Path(temporary).replace(path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    Path(temporary).unlink()
                raise
        except OSError as exc:
            raise StoreError(f"cannot write photo {path.name}: {exc}") from exc


def _bounded(image: np.ndarray, max_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


# -- picture headers ----------------------------------------------------------------------
# The size is read from the header only, before OpenCV allocates anything.

_JPEG_SOF = frozenset({*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC),
                       *range(0xCD, 0xD0)})  # fmt: skip
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def picture_size(data: bytes) -> tuple[str, int, int] | None:
    """``(kind, width, height)`` of a JPEG, PNG or WebP from its header; None otherwise."""
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg_size(data)
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        return "png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            index += 2
            continue
        length = int.from_bytes(data[index + 2 : index + 4], "big")
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            if index + 9 > len(data):
                return None
            height = int.from_bytes(data[index + 5 : index + 7], "big")
            width = int.from_bytes(data[index + 7 : index + 9], "big")
            return "jpeg", width, height
        if marker in (0xD9, 0xDA):  # end, or scan data before any frame header
            return None
        index += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[str, int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return "webp", width, height
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return "webp", width, height
    return None
