"""Viola-Jones face detection with OpenCV's bundled Haar cascade, made cheap.

A full scan is the most expensive stage of the pipeline: it runs on a
CLAHE-equalised copy of the frame downscaled to ``detect_width`` pixels, and
its cost is set by the smallest face size, where the cascade visits the most
windows. A face rarely jumps across the frame or changes size much between
samples, so once one is found (``track``) the next frames only search a small
window around it, scaled so the face is about ``TRACK_FACE_PX`` wide whatever
its size in the frame: a few thousand windows instead of over a hundred
thousand. Every ``full_scan_every`` tracked frames the whole frame is scanned
for a clearly larger face (a tracking caller keeps only the largest, so a
smaller newcomer would change nothing) and the tracked face must pass the
configured settings again; when the tracked face is lost, a full scan follows
in the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgemood.vision.crop import Box

#: OpenCV 4.x ships the cascades; 5.x dropped both them and CascadeClassifier.
CASCADE_DIR = cv2.data.haarcascades
#: The frontal-face cascade (the crop geometry in the model sidecars was measured with it).
FACE_CASCADE = "haarcascade_frontalface_default.xml"
#: A tracked face is searched in a copy of its neighbourhood scaled so the face
#: is this wide. Smaller is cheaper, but below about twice the cascade window
#: the cascade misses faces that a full scan finds, and each miss costs a full
#: scan (measured on the ``scripts/bench.py`` frames: at 40 px the search missed
#: the face in about a quarter of the tracked frames, at 56 px in one in 25).
TRACK_FACE_PX = 56
#: How far the face may move between two samples, in face widths, and still
#: be found by the tracked search.
TRACK_PAD = 0.6
#: Sizes the tracked search accepts, relative to the last face.
TRACK_SIZES = (0.7, 1.4)
#: The size is known to within those bounds, so the tracked search steps
#: through sizes at least this coarsely...
TRACK_SCALE_FACTOR = 1.15
#: ...and, with fewer steps and a sparser window grid at the scaled-down size,
#: asks for this many fewer overlapping hits than ``min_neighbors`` (at least
#: one). A wrong box is unlikely so close to where a face just was, and the
#: periodic re-check holds the tracked face to the full settings again.
TRACK_NEIGHBORS_LESS = 2
#: The periodic re-check scans the whole frame for faces this much larger than
#: the tracked one: few window sizes, so a fraction of a full scan's cost.
RECHECK_LARGER = 1.2
#: CLAHE tiles for the tracked window: about as large, relative to the face,
#: as the full frame's 8x8 tiles on a typical face.
TRACK_TILES = (3, 3)


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
    #: tracked frames between re-checks (see the module docstring)
    full_scan_every: int = 8


class FaceDetector:
    """Find face boxes (full-frame coordinates) in a grayscale frame."""

    def __init__(self, settings: DetectorSettings = DetectorSettings()):
        self.settings = settings
        self._cascade = load_cascade(FACE_CASCADE)
        self._window = int(self._cascade.getOriginalWindowSize()[0])  # no smaller face is found
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self._track_clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=TRACK_TILES)
        self._last: Box | None = None  # full-frame coordinates
        self._since_recheck = 0

    def reset(self) -> None:
        """Forget the tracked face (e.g. when the source restarts)."""
        self._last = None

    def detect(self, gray: np.ndarray, track: bool = True) -> list[Box]:
        """All faces, largest first; with ``track`` a hit near the last face suffices."""
        last = self._last if track else None
        boxes: list[Box] = []
        if last is not None:
            recheck = self._since_recheck >= self.settings.full_scan_every
            if recheck:
                boxes = self._scan_frame(gray, last.w * RECHECK_LARGER)
                self._since_recheck = 0
            if not boxes:
                boxes = self._search_near(gray, last, strict=recheck)
            self._since_recheck += 1
        if not boxes:
            boxes = self._scan_frame(gray, self.settings.min_face_px)
            self._since_recheck = 0
        boxes.sort(key=lambda b: b.w * b.h, reverse=True)
        self._last = boxes[0] if boxes else None
        return boxes

    def _scan_frame(self, gray: np.ndarray, min_face: float) -> list[Box]:
        """Scan the whole frame, downscaled and equalised, for faces of ``min_face`` px and up."""
        factor = min(1.0, self.settings.detect_width / gray.shape[1])
        small = gray if factor == 1.0 else cv2.resize(
            gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA
        )
        min_px = max(self._window, int(round(min_face * factor)))
        if min_px > min(small.shape):
            return []
        found = self._cascade.detectMultiScale(
            self._clahe.apply(small),
            scaleFactor=self.settings.scale_factor,
            minNeighbors=self.settings.min_neighbors,
            minSize=(min_px, min_px),
        )
        return [Box(x / factor, y / factor, w / factor, h / factor) for x, y, w, h in found]

    def _search_near(self, gray: np.ndarray, last: Box, strict: bool) -> list[Box]:
        """Look for the last face within ``TRACK_PAD`` face widths of where it was.

        ``strict`` holds it to the configured step and neighbours, as a full
        scan would, instead of the tracking allowances.
        """
        pad = last.w * TRACK_PAD
        x0, y0 = max(0, int(last.x - pad)), max(0, int(last.y - pad))
        x1 = min(gray.shape[1], int(last.x + last.w + pad))
        y1 = min(gray.shape[0], int(last.y + last.h + pad))
        factor = min(1.0, TRACK_FACE_PX / last.w)
        face_px = last.w * factor  # the last face's width in the scaled window
        width, height = int((x1 - x0) * factor), int((y1 - y0) * factor)
        lo, hi = max(self._window, int(face_px * TRACK_SIZES[0])), int(face_px * TRACK_SIZES[1]) + 1
        if min(width, height) < lo:
            return []
        roi = cv2.resize(gray[y0:y1, x0:x1], (width, height), interpolation=cv2.INTER_AREA)
        step, neighbours = self.settings.scale_factor, self.settings.min_neighbors
        if not strict:
            step, neighbours = max(TRACK_SCALE_FACTOR, step), max(1, neighbours - TRACK_NEIGHBORS_LESS)
        found = self._cascade.detectMultiScale(
            self._track_clahe.apply(roi), scaleFactor=step, minNeighbors=neighbours, minSize=(lo, lo), maxSize=(hi, hi)
        )
        return [Box(x0 + x / factor, y0 + y / factor, w / factor, h / factor) for x, y, w, h in found]
