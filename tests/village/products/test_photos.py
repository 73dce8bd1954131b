"""The photo store (agent/village/photos.py): what an upload must be, what is kept of it."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.errors import RecordNotFoundError, ValidationError
from agent.store.database import Database
from agent.village.photos import MiB, PhotoLimits, PhotoStore, picture_size
from tests.village.products.helpers import (
    GPS_LATITUDE,
    GPS_LONGITUDE,
    header_markers,
    jpeg,
    jpeg_with_gps,
)


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database(tmp_path / "kiosk.sqlite3")


def make_store(database: Database, tmp_path: Path, **limits: int) -> PhotoStore:
    store = PhotoStore(database, tmp_path / "photos", area="products", limits=PhotoLimits(**limits))
    store.migrate()
    return store


def stored_files(store: PhotoStore) -> list[Path]:
    return sorted(store.folder.iterdir())


def save(store: PhotoStore, database: Database, data: bytes, owner: str = "zhou.staff") -> str:
    prepared = store.prepare(io.BytesIO(data))
    with database.write() as db:
        return store.add(db, prepared, owner=owner).id


class CountingReader(io.RawIOBase):
    """A 50 MB upload that counts what is taken from it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.size - self.taken)
        buffer[:count] = b"\xff" * count
        self.taken += count
        return count


def test_a_50_mb_upload_is_refused_after_reading_the_allowed_size_only(
    database: Database, tmp_path: Path
) -> None:
    store = make_store(database, tmp_path)
    upload = CountingReader(50 * MiB)
    with pytest.raises(ValidationError) as refused:
        store.prepare(io.BufferedReader(upload, buffer_size=64 * 1024))
    assert refused.value.message == "products.photo.too_large"
    assert upload.taken <= store.limits.max_bytes + 64 * 1024
    assert stored_files(store) == []


def test_a_text_file_named_jpg_is_refused_and_nothing_is_stored(
    database: Database, tmp_path: Path
) -> None:
    store = make_store(database, tmp_path)
    for data in (
        b"%PDF-1.7\n" + b"0" * 5000,
        b"not a picture at all",
        b"\xff\xd8\xff" + b"x" * 900,
    ):
        with pytest.raises(ValidationError) as refused:
            store.prepare(io.BytesIO(data))
        assert refused.value.message == "products.photo.not_image"
    assert stored_files(store) == []
    assert store.usage("zhou.staff") == (0, 0)


def test_a_jpeg_with_gps_is_stored_without_any_metadata(database: Database, tmp_path: Path) -> None:
    store = make_store(database, tmp_path)
    upload = jpeg_with_gps()
    # The upload really carries the GPS block, and OpenCV reads it as a picture.
    assert 0xE1 in header_markers(upload) and GPS_LATITUDE in upload
    assert cv2.imdecode(np.frombuffer(upload, np.uint8), cv2.IMREAD_COLOR) is not None
    photo_id = save(store, database, upload)
    stored = store.read(photo_id)
    assert stored != upload
    assert (store.folder / f"{photo_id}.jpg").read_bytes() == stored
    markers = header_markers(stored)
    assert 0xE1 not in markers, "no APP1 (EXIF/XMP) segment"
    assert b"Exif" not in stored and GPS_LATITUDE not in stored and GPS_LONGITUDE not in stored
    picture = cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (480, 640, 3)


def test_a_big_photo_is_scaled_to_the_longest_side(database: Database, tmp_path: Path) -> None:
    store = make_store(database, tmp_path)
    upload = jpeg(4000, 3000)
    photo_id = save(store, database, upload)
    stored = store.read(photo_id)
    assert picture_size(stored) == ("jpeg", 1600, 1200)
    assert stored != upload


def test_a_png_is_stored_as_jpeg(database: Database, tmp_path: Path) -> None:
    store = make_store(database, tmp_path)
    ok, png = cv2.imencode(".png", np.full((100, 200, 3), 90, np.uint8))
    assert ok
    stored = store.read(save(store, database, png.tobytes()))
    assert picture_size(stored) == ("jpeg", 200, 100)


def test_a_picture_of_too_many_pixels_is_refused_before_decoding(
    database: Database, tmp_path: Path
) -> None:
    store = make_store(database, tmp_path)
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    assert ok
    # The same file with a header claiming 60000 x 60000 (10.8 GB once decoded).
    bomb = bytearray(png.tobytes())
    bomb[16:24] = (60000).to_bytes(4, "big") * 2
    with pytest.raises(ValidationError) as refused:
        store.prepare(bytes(bomb))
    assert refused.value.message == "products.photo.too_many_pixels"


def test_an_owner_keeps_a_bounded_number_and_size_of_photos(
    database: Database, tmp_path: Path
) -> None:
    store = make_store(database, tmp_path, max_per_owner=2)
    save(store, database, jpeg(seed=1))
    save(store, database, jpeg(seed=2))
    with pytest.raises(ValidationError) as refused:
        save(store, database, jpeg(seed=3))
    assert refused.value.message == "products.photo.owner_count"
    assert len(stored_files(store)) == 2
    save(store, database, jpeg(seed=3), owner="other.staff")  # another owner is not held back

    roomy = PhotoStore(
        database,
        tmp_path / "photos",
        area="attractions",
        limits=PhotoLimits(max_bytes_per_owner=MiB),
    )
    roomy.migrate()
    big = jpeg(1600, 1200, seed=4)  # ~0.5 MB of noise once re-encoded
    photo_id = save(roomy, database, big)
    used = roomy.usage("zhou.staff")
    assert used[0] == 1 and used[1] == len(roomy.read(photo_id))
    with pytest.raises(ValidationError) as refused:
        for seed in range(5, 10):
            save(roomy, database, jpeg(1600, 1200, seed=seed))
    assert refused.value.message == "attractions.photo.owner_bytes"
    assert roomy.usage("zhou.staff")[1] <= MiB


def test_ids_that_are_not_photo_ids_reach_no_file(database: Database, tmp_path: Path) -> None:
    store = make_store(database, tmp_path)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(jpeg())
    for photo_id in ("../secret", "../../secret.jpg", "a" * 31, "A" * 32, "/etc/passwd", ""):
        with pytest.raises(RecordNotFoundError):
            store.read(photo_id)
    # A well-formed id of a file put there by hand has no row: not served either.
    stray = "0" * 32
    (store.folder / f"{stray}.jpg").write_bytes(jpeg())
    with pytest.raises(RecordNotFoundError):
        store.read(stray)


def test_a_rolled_back_photo_is_never_served_and_is_purged(
    database: Database, tmp_path: Path
) -> None:
    store = make_store(database, tmp_path)
    prepared = store.prepare(jpeg())
    with pytest.raises(RuntimeError), database.write() as db:
        photo_id = store.add(db, prepared, owner="zhou.staff").id
        raise RuntimeError("the listing failed after the photo")
    with pytest.raises(RecordNotFoundError):
        store.read(photo_id)
    kept = save(store, database, jpeg(seed=5))
    assert store.purge_orphans() == 0, "young files may belong to a running transaction"
    old = time.time() - 7200
    for path in stored_files(store):
        os.utime(path, (old, old))
    assert store.purge_orphans() == 1
    assert [path.name for path in stored_files(store)] == [f"{kept}.jpg"]
    assert store.read(kept)
