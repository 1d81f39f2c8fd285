"""Viola-Jones face detection with OpenCV's bundled Haar cascade, made cheap.

A full scan looks for faces from ``max_face_px`` down to ``min_face_px``, one
octave of sizes at a time, largest first, in two passes:

- the *coarse pass* scans an octave ``[s, 2s)`` in a copy of the frame scaled
  so that ``s`` is the cascade's window (made from the fine pass's equalised
  image, and halved for each larger octave). OpenCV moves the window
  two pixels at a time below twice its size and one pixel above, so above the
  finest octave this visits a quarter of the positions that one scan of the
  whole size range does. Its raw hits (OpenCV's ``alt2`` cascade, no
  neighbours asked for) are grouped into candidates, most hits first;
- the *fine pass* scans the frame as a one-pass scan would (at most
  ``detect_width`` wide, equalised with CLAHE, the default cascade, the
  configured ``scale_factor`` and ``min_neighbors``), but only in a small
  window around each of the best few candidates. Only its boxes are faces.

A caller that keeps only the largest face (``track``) stops at the first
octave with a face: the smallest faces, where most of the windows are, are
scanned only when nothing larger is in view.

A face rarely jumps across the frame or changes size much between samples, so
once one is found (``track``) the next frames only search a small window
around it, scaled so the face is ``TRACK_FACE_PX`` wide, with a coarser size
step and fewer neighbours. Every ``full_scan_every`` tracked frames the frame
is scanned for a clearly larger face (a tracking caller keeps only the
largest, so a smaller newcomer would change nothing) and the tracked face must
pass the configured settings again; when the tracked face is lost, a full scan
follows in the same frame, and its fine pass also looks where the face was
if the coarse pass finds no face of that size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edgemood.config import DetectConfig
from edgemood.vision.crop import Box

#: OpenCV 4.x ships the cascades; 5.x dropped both them and CascadeClassifier.
CASCADE_DIR = cv2.data.haarcascades
#: The frontal-face cascade of the fine pass and the tracked search: it makes
#: every box (the crop geometry in the model sidecars was measured with it).
FACE_CASCADE = "haarcascade_frontalface_default.xml"
#: The coarse pass only proposes candidates, so it uses the cascade that did
#: that best on the ``scripts/bench.py`` frames (see docs/benchmarks.md): alt2
#: found as many faces as the default one or more, wrong ones less often, and
#: cost a fifth less where the smallest faces are scanned (an empty room).
COARSE_CASCADE = "haarcascade_frontalface_alt2.xml"
#: A tracked face is searched in a copy of its neighbourhood scaled so the
#: face is this wide. Smaller is cheaper, but below about twice the cascade
#: window the cascade misses faces that a full scan finds (measured on the
#: ``scripts/bench.py`` frames: at 40 px the search missed the face in about a
#: quarter of the tracked frames, at 56 px in one in 25; at 48 px it lost
#: faces of 50-100 px that no full scan could find again).
TRACK_FACE_PX = 56
#: How far the face may move between two samples, in face widths, and still
#: be found by the tracked search. (0.6 cost half as much again and kept no
#: more faces on the bench frames: a face that moved further is found by a full
#: scan, cheap for a near face.)
TRACK_PAD = 0.5
#: Sizes the tracked search accepts, relative to the last face: a face that
#: grew or shrank more between two samples costs a full scan, which is cheap
#: for a near face. (0.7-1.4 cost a fifth more and kept no more faces.)
TRACK_SIZES = (0.8, 1.25)
#: The size is known to within those bounds, so the tracked search steps
#: through sizes at least this coarsely (two window sizes)...
TRACK_SCALE_FACTOR = 1.2
#: ...and, with fewer steps, asks for this many fewer overlapping hits than
#: ``min_neighbors`` (at least one). A wrong box is unlikely so close to where
#: a face just was, and the periodic re-check holds the tracked face to the
#: full settings again.
TRACK_NEIGHBORS_LESS = 3
#: The periodic re-check scans the whole frame for faces this much larger than
#: the tracked one: few octaves, so a fraction of a full scan's cost.
RECHECK_LARGER = 1.2
#: CLAHE tiles for the tracked window: about as large, relative to the face,
#: as the full frame's 8x8 tiles on a typical face.
TRACK_TILES = (3, 3)
#: Candidates of one octave that the fine pass searches, most raw hits first:
#: bounds the cost of a frame full of face-like texture.
COARSE_CANDIDATES = 3
#: Hits closer than this (OpenCV's own grouping tolerance) make one candidate.
GROUP_EPS = 0.2
#: The fine pass's window around a candidate, in candidate widths per side...
FINE_PAD = 0.4
#: ...and the sizes it accepts, relative to the candidate: the coarse pass's
#: sparse hits can be a third off in size.
FINE_SIZES = (0.6, 1.6)


def load_cascade(name: str) -> cv2.CascadeClassifier:
    """Load one of OpenCV's bundled cascades or fail loudly (empty means missing)."""
    cascade = cv2.CascadeClassifier(CASCADE_DIR + name)
    if cascade.empty():
        raise RuntimeError(f"OpenCV cascade {name} not found in {CASCADE_DIR}")
    return cascade


@dataclass(frozen=True)
class DetectorSettings:
    """Tunables of the ``[detect]`` config section, and the scan's resolution limit.

    The defaults are ``DetectConfig``'s, except ``max_face_px`` (see below);
    ``configured_settings`` is the one place a ``[detect]`` section becomes settings.
    """

    scale_factor: float = DetectConfig.scale_factor
    min_neighbors: int = DetectConfig.min_neighbors
    min_face_px: int = DetectConfig.min_face_px
    #: no bound unless given: the daemon passes ``[detect] max_face_px``, while
    #: ``edgemood classify`` and the evaluation see photos of any size
    max_face_px: int = 4096
    #: the finest scan image is at most this wide, which bounds a full scan's
    #: cost on large frames: faces narrower than 24 x frame width / detect_width
    #: px are then not found, whatever ``min_face_px`` says
    detect_width: int = 320
    #: tracked frames between re-checks (see the module docstring)
    full_scan_every: int = 8


def configured_settings(detect: DetectConfig) -> DetectorSettings:
    """The settings ``[detect]`` gives: the daemon, enroll and the benchmark detect alike."""
    return DetectorSettings(detect.scale_factor, detect.min_neighbors, detect.min_face_px, detect.max_face_px)


@dataclass(frozen=True)
class _Octave:
    """One octave of the coarse pass: its image, the image's scale, and face sizes in frame pixels."""

    image: np.ndarray
    factor: float
    low: float
    high: float


class FaceDetector:
    """Find face boxes (full-frame coordinates) in a grayscale frame."""

    def __init__(self, settings: DetectorSettings = DetectorSettings()):
        self.settings = settings
        self._cascade = load_cascade(FACE_CASCADE)
        self._coarse = load_cascade(COARSE_CASCADE)
        self._window = int(self._cascade.getOriginalWindowSize()[0])  # no smaller face is found
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self._track_clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=TRACK_TILES)
        self._last: Box | None = None  # full-frame coordinates
        self._since_recheck = 0

    def reset(self) -> None:
        """Forget the tracked face (e.g. when the source restarts)."""
        self._last = None

    def detect(self, gray: np.ndarray, track: bool = True) -> list[Box]:
        """All faces, largest first.

        ``track`` is for a caller that keeps only the largest face: a hit near
        the last face suffices, and a full scan ends at the largest faces found.
        """
        last = self._last if track else None
        boxes: list[Box] = []
        if last is not None:
            recheck = self._since_recheck >= self.settings.full_scan_every
            if recheck:
                boxes = self._scan_frame(gray, last.w * RECHECK_LARGER, largest_only=True)
                self._since_recheck = 0
            if not boxes:
                boxes = self._search_near(gray, last, strict=recheck)
            self._since_recheck += 1
        if not boxes:
            boxes = self._scan_frame(gray, self.settings.min_face_px, largest_only=track, lost=last)
            self._since_recheck = 0
        boxes.sort(key=lambda b: b.w * b.h, reverse=True)
        self._last = boxes[0] if boxes else None
        return boxes

    def _scan_frame(self, gray: np.ndarray, min_face: float, largest_only: bool, lost: Box | None = None) -> list[Box]:
        """Faces from ``min_face`` px up: the coarse pass octave by octave, largest first, then the fine pass.

        ``lost`` (the face the tracked search just missed) is searched by the
        fine pass too when its octave's candidates are no face: the coarse
        pass's sparse grid misses some faces that a dense search finds.
        """
        fine, octaves = self._pyramid(gray, min_face)
        found: list[Box] = []
        for octave in octaves:
            in_octave: list[Box] = []
            for candidate in self._candidates(octave):
                centre_x, centre_y = candidate.x + candidate.w / 2, candidate.y + candidate.h / 2
                if not any(b.x <= centre_x <= b.x + b.w and b.y <= centre_y <= b.y + b.h for b in found + in_octave):
                    in_octave += self._fine_pass(fine, candidate)
            if not in_octave and lost is not None and octave.low <= lost.w < octave.high:
                in_octave = self._fine_pass(fine, lost)
            found += in_octave
            if found and largest_only:
                break
        return found

    def _pyramid(self, gray: np.ndarray, min_face: float) -> tuple[_Octave, list[_Octave]]:
        """The fine pass's image, and the coarse pass's octaves from ``min_face`` to ``max_face_px``, largest first.

        The fine pass scans the frame at its own resolution or ``detect_width``
        wide, whichever is smaller, equalised with CLAHE; the coarse pass's
        finest octave is that image scaled so a ``min_face_px`` face is the
        cascade window's size, and each larger octave halves the one below.
        Octaves start at ``min_face_px`` and double, so a re-check (which
        starts higher) scans the same images.
        """
        settings = self.settings
        factor = min(1.0, settings.detect_width / gray.shape[1])
        image = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) if factor < 1.0 else gray
        image = self._clahe.apply(image)
        fine = _Octave(image, factor, max(self._window / factor, min_face), settings.max_face_px)
        coarse = min(factor, self._window / settings.min_face_px)
        if coarse < factor:
            size = (max(1, round(image.shape[1] * coarse / factor)), max(1, round(image.shape[0] * coarse / factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            coarse = factor * image.shape[1] / fine.image.shape[1]
        low = self._window / coarse  # the smallest face this image shows at the window's size
        octaves = []
        while low < settings.max_face_px and min(image.shape) >= self._window:
            high = min(2 * low, settings.max_face_px)
            if high > min_face:
                octaves.append(_Octave(image, coarse, max(low, min_face), high))
            half = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
            coarse *= half.shape[1] / image.shape[1]
            image, low = half, 2 * low
        return fine, octaves[::-1]

    def _candidates(self, octave: _Octave) -> list[Box]:
        """Where the octave's image has grouped raw hits, most hits first, at most ``COARSE_CANDIDATES``."""
        low = max(self._window, int(round(octave.low * octave.factor)))
        high = int(octave.high * octave.factor)
        if low > high or low > min(octave.image.shape):
            return []
        hits = self._coarse.detectMultiScale(
            octave.image, scaleFactor=self.settings.scale_factor, minNeighbors=0, minSize=(low, low), maxSize=(high, high)
        )
        if len(hits) == 0:
            return []
        # every hit twice, so that a group of one hit passes groupRectangles' threshold of one
        groups, weights = cv2.groupRectangles([list(map(int, h)) for h in hits] * 2, 1, GROUP_EPS)
        order = np.argsort(-np.asarray(weights).ravel(), kind="stable")[:COARSE_CANDIDATES]
        return [Box(*(float(v) / octave.factor for v in groups[i])) for i in order]

    def _fine_pass(self, fine: _Octave, candidate: Box) -> list[Box]:
        """The configured scan of the fine pass's image, only in a window around ``candidate``.

        The same image, cascade, step and neighbours as a one-pass scan of
        the whole frame, so the boxes (and the crops the model was fitted to)
        are a one-pass scan's; only the window grid starts at the window's
        corner, so a face with barely enough neighbours can come out either
        way. Sizes outside the scan's range (``fine.low`` to ``fine.high``)
        are not looked for.
        """
        factor = fine.factor
        pad = candidate.w * FINE_PAD
        x0, y0 = max(0, int((candidate.x - pad) * factor)), max(0, int((candidate.y - pad) * factor))
        x1 = min(fine.image.shape[1], int((candidate.x + candidate.w + pad) * factor) + 1)
        y1 = min(fine.image.shape[0], int((candidate.y + candidate.h + pad) * factor) + 1)
        lo = max(self._window, int(candidate.w * FINE_SIZES[0] * factor), math.ceil(fine.low * factor))
        hi = min(int(candidate.w * FINE_SIZES[1] * factor) + 1, int(fine.high * factor))
        if lo > hi or min(x1 - x0, y1 - y0) < lo:
            return []
        found = self._cascade.detectMultiScale(
            fine.image[y0:y1, x0:x1], scaleFactor=self.settings.scale_factor,
            minNeighbors=self.settings.min_neighbors, minSize=(lo, lo), maxSize=(hi, hi),
        )
        return [Box((x0 + x) / factor, (y0 + y) / factor, w / factor, h / factor) for x, y, w, h in found]

    def _search_near(self, gray: np.ndarray, last: Box, strict: bool) -> list[Box]:
        """Look for the face ``last`` within ``TRACK_PAD`` face widths of where it was.

        ``strict`` holds it to the configured step and neighbours, as a full
        scan does, instead of the tracking allowances.
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
