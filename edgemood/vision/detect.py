"""Viola-Jones face detection with OpenCV's bundled Haar cascade, made cheap.

Detection is the most expensive stage, so it runs on a CLAHE-equalised copy
of the frame downscaled to ``detect_width`` pixels, and when the previous
frame had a face it first searches a window around it (a face rarely jumps
across the frame between samples), with a full scan every few frames so a new,
larger face is not missed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgemood.vision.crop import Box

#: OpenCV 4.x ships the cascades; 5.x dropped both them and CascadeClassifier.
CASCADE_DIR = cv2.data.haarcascades


def load_cascade(name: str) -> cv2.CascadeClassifier:
    """Load one of OpenCV's bundled cascades or fail loudly (empty means missing)."""
    cascade = cv2.CascadeClassifier(CASCADE_DIR + name)
    if cascade.empty():
        raise RuntimeError(f"OpenCV cascade {name} not found in {CASCADE_DIR}")
    return cascade


@dataclass(frozen=True)
class DetectorSettings:
    """Tunables of the ``[detect]`` config section."""

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face_px: int = 48
    detect_width: int = 320
    full_scan_every: int = 8


class FaceDetector:
    """Find face boxes (full-frame coordinates) in a grayscale frame."""

    def __init__(self, settings: DetectorSettings = DetectorSettings()):
        self.settings = settings
        self._cascade = load_cascade("haarcascade_frontalface_default.xml")
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self._last: Box | None = None  # in downscaled coordinates
        self._since_full_scan = 0

    def reset(self) -> None:
        """Forget the tracked face (e.g. when the source restarts)."""
        self._last = None

    def detect(self, gray: np.ndarray, track: bool = True) -> list[Box]:
        """All faces, largest first; with ``track`` a hit near the last face suffices."""
        factor = min(1.0, self.settings.detect_width / gray.shape[1])
        small = gray if factor == 1.0 else cv2.resize(
            gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA
        )
        small = self._clahe.apply(small)
        min_px = max(20, int(round(self.settings.min_face_px * factor)))
        boxes: list[Box] = []
        if track and self._last is not None and self._since_full_scan < self.settings.full_scan_every:
            boxes = self._search_near(small, self._last, min_px)
            self._since_full_scan += 1
        if not boxes:
            boxes = self._scan(small, (0, 0), min_px, None)
            self._since_full_scan = 0
        boxes.sort(key=lambda b: b.w * b.h, reverse=True)
        self._last = boxes[0] if boxes else None
        return [b.scaled(1.0 / factor) for b in boxes]

    def _search_near(self, small: np.ndarray, last: Box, min_px: int) -> list[Box]:
        pad = last.w * 0.6
        x0, y0 = max(0, int(last.x - pad)), max(0, int(last.y - pad))
        x1 = min(small.shape[1], int(last.x + last.w + pad))
        y1 = min(small.shape[0], int(last.y + last.h + pad))
        if x1 - x0 < min_px or y1 - y0 < min_px:
            return []
        lo = max(min_px, int(last.w * 0.7))
        return self._scan(small[y0:y1, x0:x1], (x0, y0), lo, int(last.w * 1.4) + 1)

    def _scan(self, image: np.ndarray, offset: tuple[int, int], min_px: int, max_px: int | None) -> list[Box]:
        found = self._cascade.detectMultiScale(
            image,
            scaleFactor=self.settings.scale_factor,
            minNeighbors=self.settings.min_neighbors,
            minSize=(min_px, min_px),
            maxSize=(max_px, max_px) if max_px else (0, 0),
        )
        return [Box(float(x + offset[0]), float(y + offset[1]), float(w), float(h)) for x, y, w, h in found]
