"""Load an image-folder dataset (``<root>/<split>/<class>/*.png``) into arrays.

FERPlus ships ten crowd votes per image in ``labels.csv``; where present they
become soft targets (the FER+ paper's cross-entropy mode beats majority
labels), otherwise the folder name is a one-hot target.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgemood.classes import CLASSES

#: labels.csv vote columns, in CLASSES order.
VOTE_COLUMNS = ("anger", "contempt", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")


@dataclass(frozen=True)
class Split:
    """Images (N, S, S) uint8, majority labels (N,) and targets (N, 8) float32."""

    images: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    files: list[str]


def _votes(root: Path) -> dict[str, np.ndarray]:
    path = root / "labels.csv"
    if not path.is_file():
        return {}
    votes = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if not all(c in row for c in VOTE_COLUMNS):
                return {}
            counts = np.array([float(row[c]) for c in VOTE_COLUMNS], dtype=np.float32)
            counts[counts <= 1] = 0  # single votes are outliers (FER+ reference rule)
            votes[row["file"]] = counts
    return votes


def load_split(root: Path, split: str, size: int = 48, limit_per_class: int | None = None) -> Split:
    """Read every ``<root>/<split>/<class>/*`` image, resized to ``size``."""
    root = Path(root)
    if not (root / split).is_dir():
        raise FileNotFoundError(f"{root / split} is not a directory")
    votes = _votes(root)
    images, labels, targets, files = [], [], [], []
    for index, name in enumerate(CLASSES):
        paths = sorted((root / split / name).glob("*.png")) + sorted((root / split / name).glob("*.jpg"))
        for path in paths[:limit_per_class]:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                continue
            if image.shape != (size, size):
                image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            rel = f"{split}/{name}/{path.name}"
            target = votes.get(rel)
            if target is None or target.sum() == 0:
                target = np.eye(len(CLASSES), dtype=np.float32)[index]
            images.append(image)
            labels.append(index)
            targets.append(target / target.sum())
            files.append(rel)
    if not images:
        raise FileNotFoundError(f"no images under {root / split}/<class>/")
    return Split(np.stack(images), np.array(labels, np.int64), np.stack(targets).astype(np.float32), files)
