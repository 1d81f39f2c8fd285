"""Replay frames for the demo and the tests, built from the photos edgemood ships.

Real faces, not drawings: the astronaut (smiling) and Grace Hopper, and
photos without a face (a brick wall, a rocket launch, a cup of coffee), each
placed on a 640x480 camera-sized canvas with a little drift from frame to
frame, as a person in front of a camera would move. The same seed gives the
same frames, so a replay tells the same story every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgemood.demo.photos import ASTRONAUT, BRICK, COFFEE, HOPPER, ROCKET, Photo

FRAME_SIZE = (640, 480)

#: What a scene can show: its photos, shown in turn, one per frame.
SUBJECTS: dict[str, tuple[Photo, ...]] = {
    "astronaut": (ASTRONAUT,),
    "hopper": (HOPPER,),
    "nobody": (BRICK, ROCKET, COFFEE),
}
#: The part of a photo that is shown (rows, columns): head and shoulders.
CROPS: dict[str, tuple[slice, slice]] = {"astronaut": (slice(20, 330), slice(110, 350))}


@dataclass(frozen=True)
class Scene:
    """A run of frames showing one subject."""

    subject: str
    frames: int

    @property
    def caption(self) -> str:
        """What is in front of the camera, in words."""
        photos = SUBJECTS[self.subject]
        if self.subject == "nobody":
            return "nobody (photos of " + ", ".join(photo.caption for photo in photos) + ")"
        return " / ".join(photo.caption for photo in photos)


#: The demo's story: a smile, nobody, someone calm, the smile again.
DEMO_SCENES = (Scene("astronaut", 16), Scene("nobody", 12), Scene("hopper", 16), Scene("astronaut", 12))


def _place(photo: np.ndarray, rng: np.random.Generator, share: float = 0.8) -> np.ndarray:
    width, height = FRAME_SIZE
    canvas = np.full((height, width), 90, np.uint8)
    scale = min(share * height / photo.shape[0], share * width / photo.shape[1])
    resized = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    h, w = resized.shape
    x = (width - w) // 2 + int(rng.integers(-12, 13))
    y = (height - h) // 2 + int(rng.integers(-8, 9))
    canvas[y : y + h, x : x + w] = resized
    return canvas


def _photo(photo: Photo) -> np.ndarray:
    image = photo.load()
    rows, columns = CROPS.get(photo.name, (slice(None), slice(None)))
    return image[rows, columns]


def write_replay(folder: Path, scenes: tuple[Scene, ...] = DEMO_SCENES, seed: int = 0) -> list[str]:
    """Write numbered PNG frames into ``folder``; returns each frame's subject."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = {name: [_photo(photo) for photo in subject] for name, subject in SUBJECTS.items()}
    labels = []
    for scene in scenes:
        shown = photos[scene.subject]
        for i in range(scene.frames):
            frame = _place(shown[i % len(shown)], rng)
            cv2.imwrite(str(folder / f"{len(labels):04d}.png"), frame)
            labels.append(scene.subject)
    return labels
