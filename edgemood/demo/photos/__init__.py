"""Five small photos shipped with edgemood, all public domain or CC0.

The demo replays them and the tests use them, so neither needs a download or
scikit-image (whose scipy would triple the size of a development install).
They are grayscale JPEGs, 172 KB together; the README lists their sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Photo:
    """One shipped photo: what a person sees in it, and whose it is."""

    name: str
    caption: str
    credit: str

    @property
    def path(self) -> Path:
        """Where the installed package keeps the file."""
        return Path(str(resources.files(__name__) / f"{self.name}.jpg"))

    def load(self) -> np.ndarray:
        """The photo as a grayscale uint8 array."""
        image = cv2.imread(str(self.path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FileNotFoundError(f"shipped photo {self.path} is missing or damaged; reinstall edgemood")
        return image


ASTRONAUT = Photo(
    "astronaut", "Eileen Collins, NASA astronaut, smiling",
    "NASA, public domain; from scikit-image's sample data (skimage.data.astronaut)",
)
HOPPER = Photo(
    "hopper", "Grace Hopper, official US Navy portrait, a calm face",
    "US Navy, public domain; from Matplotlib's sample data (grace_hopper.jpg)",
)
BRICK = Photo("brick", "a brick wall", "CC0Textures, CC0; from scikit-image's sample data (skimage.data.brick)")
ROCKET = Photo(
    "rocket", "a Falcon 9 launch",
    "SpaceX, public domain (CC0); from scikit-image's sample data (skimage.data.rocket)",
)
COFFEE = Photo(
    "coffee", "a cup of coffee", "Rachel Michetti, CC0; from scikit-image's sample data (skimage.data.coffee)"
)

#: Every shipped photo by name.
PHOTOS: dict[str, Photo] = {photo.name: photo for photo in (ASTRONAUT, HOPPER, BRICK, ROCKET, COFFEE)}
