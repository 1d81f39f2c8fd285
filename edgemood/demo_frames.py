"""Replay frames for the demo and the tests, built from photos scikit-image ships.

Real faces, not drawings: the astronaut (smiling), faces from the LFW subset,
and photos without a face (a brick wall, the moon, a rocket), each placed on a 640x480
camera-sized canvas with a little drift from frame to frame, as a person in
front of a camera would move.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FRAME_SIZE = (640, 480)


@dataclass(frozen=True)
class Scene:
    """A run of frames showing one subject."""

    subject: str
    frames: int


#: The demo's story: a smile, nobody, other people, the smile again.
DEMO_SCENES = (
    Scene("astronaut", 16), Scene("nobody", 12), Scene("lfw", 16), Scene("lfw_more", 16), Scene("astronaut", 12),
)
#: Which LFW faces the two LFW scenes show (indices into ``lfw_subset()``).
LFW_FACES = {"lfw": (0, 29, 48, 51), "lfw_more": (2, 3, 4, 5)}
#: Face photos are shown at this share of the frame height (LFW's are 25 px:
#: larger would only be blur).
SUBJECT_HEIGHT = {"lfw": 0.34, "lfw_more": 0.34}


def _subjects() -> dict[str, list[np.ndarray]]:
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    lfw = (data.lfw_subset()[:100] * 255).astype(np.uint8)
    return {
        "astronaut": [astronaut[20:330, 110:350]],  # head and shoulders
        "nobody": [data.brick(), data.moon(), cv2.cvtColor(data.rocket(), cv2.COLOR_RGB2GRAY)],
        **{
            name: [cv2.copyMakeBorder(lfw[i], 8, 8, 8, 8, cv2.BORDER_REPLICATE) for i in indices]
            for name, indices in LFW_FACES.items()
        },
    }


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


def write_replay(folder: Path, scenes: tuple[Scene, ...] = DEMO_SCENES, seed: int = 0) -> list[str]:
    """Write numbered PNG frames into ``folder``; returns each frame's subject."""
    folder.mkdir(parents=True, exist_ok=True)
    subjects = _subjects()
    rng = np.random.default_rng(seed)
    labels = []
    for scene in scenes:
        photos = subjects[scene.subject]
        for i in range(scene.frames):
            frame = _place(photos[i % len(photos)], rng, SUBJECT_HEIGHT.get(scene.subject, 0.8))
            cv2.imwrite(str(folder / f"{len(labels):04d}.png"), frame)
            labels.append(scene.subject)
    return labels
