"""Every picture of a camera that leaves the agent is masked the same way, to the pixel.

Event snapshots, clips, the snapshot command and the web UI's snapshot are taken from one
camera watching a white wall with a privacy polygon on it while a dark box moves elsewhere.
Around the polygon every frame is the same, so each path's picture there must equal the
masker's output pixel for pixel (JPEG rounding aside: the scene is pure black and white, so
thresholding at mid-grey gives the exact pixels back).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from agent.camera.pictures import CameraPictures
from agent.camera.slot import FrameSlot
from agent.config import CameraConfig
from agent.motion import EventConfig, MotionConfig
from agent.motion.regions import PrivacyMasker
from agent.store.database import Database
from agent.store.events import EventStore
from agent.watch import CameraWatch
from tests.fixtures.browser import build_web_context, kiosk_config
from web_ui.app import create_app
from web_ui.security import SESSION_COOKIE

W, H = 640, 480
FPS = 10
T0 = 1_760_000_000.0
# An irregular polygon with edges at fractional pixel positions, where rims appear.
POLYGON = [[0.05, 0.07], [0.41, 0.11], [0.37, 0.63], [0.12, 0.71], [0.02, 0.33]]
# The part of the picture around the polygon (with a margin): identical in every frame.
CROP = (slice(0, int(0.8 * H)), slice(0, int(0.5 * W)))


def _frames(count: int) -> list[np.ndarray]:
    """A white wall; from frame 20 on a dark box walks across the right half."""
    frames = []
    for index in range(count):
        image = np.full((H, W, 3), 255, np.uint8)
        if index >= 20:
            x = 360 + (index - 20) * 6 % 200
            image[200:320, x : x + 60] = 30
        frames.append(image)
    return frames


def _binary(picture: np.ndarray) -> np.ndarray:
    gray = picture if picture.ndim == 2 else cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
    return (gray[CROP] >= 128).astype(np.uint8)


def _decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _clip_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    ok, frame = capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    capture.release()
    return frames


@pytest.fixture
def watched(tmp_path: Path) -> dict[str, Any]:
    camera = CameraConfig.model_validate(
        {
            "id": "yard",
            "source": "sim://empty",
            "fps": FPS,
            "resolution": f"{W}x{H}",
            "privacy_masks": [{"name": "neighbour", "points": POLYGON}],
        }
    )
    store = EventStore(Database(tmp_path / "kiosk.sqlite3"), tmp_path / "media")
    masker = PrivacyMasker(camera.privacy_masks)
    watch = CameraWatch(
        camera,
        MotionConfig(),
        EventConfig(clip_seconds=2.0, pre_roll_seconds=1.0, quiet_seconds=1.0),
        store,
        masker=masker,
    )
    slot = FrameSlot()
    for index, image in enumerate(_frames(120)):
        frame = slot.put(image, T0 + index / FPS)
        watch.on_frame(frame)
    # The wall alone again, so the last frame is the same everywhere around the polygon.
    for index in range(120, 150):
        watch.on_frame(slot.put(np.full((H, W, 3), 255, np.uint8), T0 + index / FPS))
    watch.close(T0 + 16.0)
    return {
        "camera": camera,
        "store": store,
        "watch": watch,
        "slot": slot,
        "masker": masker,
        "data_dir": tmp_path,
    }


def test_snapshots_clips_command_and_web_mask_the_same_pixels(watched: dict[str, Any]) -> None:
    masker: PrivacyMasker = watched["masker"]
    store: EventStore = watched["store"]
    reference = _binary(masker.apply(np.full((H, W, 3), 255, np.uint8)))
    masked_pixels = int((reference == 0).sum())
    assert masked_pixels > 10_000, "the polygon covers a real area"

    pictures: dict[str, list[np.ndarray]] = {"event": [], "clip": [], "command": [], "web": []}
    events = store.recent("yard", limit=10)
    assert events, "the moving box made an event"
    for record in events:
        assert record.snapshot_path
        pictures["event"].append(cv2.imread(str(store.media_dir / record.snapshot_path)))
        if record.clip_path:
            pictures["clip"] += _clip_frames(store.media_dir / record.clip_path)
    command_path: Path = watched["watch"].snapshot_now()
    pictures["command"].append(_decode(command_path.read_bytes()))

    parts = build_web_context(
        watched["data_dir"] / "web",
        {"yard": _SlotCamera(watched["slot"])},
        kiosk_config(watched["data_dir"] / "web", [watched["camera"]]),
    )
    # The runtime hands the web UI the watch's own masker; so does this test.
    parts.context.pictures = {"yard": CameraPictures(watched["slot"], masker)}
    parts.add_user("li.police", "police")
    client = TestClient(create_app(parts.context))
    account = parts.context.accounts.get_user("li.police")
    assert account is not None
    client.cookies.set(SESSION_COOKIE, parts.context.accounts.start_session(account).token)
    response = client.get("/cameras/yard/snapshot.jpg")
    assert response.status_code == 200
    pictures["web"].append(_decode(response.content))
    # The web still and the command's still of the same frame are the same bytes.
    assert response.content == command_path.read_bytes()

    for path, images in pictures.items():
        assert images, f"no picture from the {path} path"
        for image in images:
            different = int((_binary(image) != reference).sum())
            assert different == 0, f"{path}: {different} pixels differ from the masker's picture"


class _SlotCamera:
    """What the status page needs of a camera besides its pictures."""

    def __init__(self, slot: FrameSlot) -> None:
        self.slot = slot

    def status(self) -> Any:
        raise AssertionError("not used by the snapshot route")
