"""Level the eyes: find both with the Haar eye cascade and measure the roll.

A tilted head is the commonest difference between a camera frame and the
upright training faces; rotating it back costs one warp that the crop does
anyway.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edgemood.vision.crop import Box
from edgemood.vision.detect import load_cascade

#: Eyes are searched at this face width, where they are 20-28 px: just above
#: the eye cascade's 20 px window, so it finds them and the search stays cheap.
#: Measured on the ``scripts/bench.py`` frames against 110 px: both eyes found
#: on 116 instead of 119 of 292 faces, the same residual roll, half the time.
WORK_WIDTH = 100
#: The band of the face box (fractions of its height, from the top) that holds
#: the eyes of an upright or moderately rolled face; nothing above or below it
#: is searched.
EYE_BAND = (0.15, 0.55)
#: Eye sizes searched, in pixels at ``WORK_WIDTH``.
EYE_PX = (20, 32)
#: Overlapping hits an eye needs. Fewer than OpenCV's default, because the band
#: and sizes are narrow and only the largest hit per side is used.
EYE_NEIGHBORS = 3
#: Each eye is searched in its half of the band, which overlaps the other half
#: by this many pixels (at ``WORK_WIDTH``) so an eye on the middle line is seen.
HALF_OVERLAP = 6
#: Eye centres closer than this (fraction of ``WORK_WIDTH``) are one eye seen
#: from both halves, not a pair: eyes are about 0.4 face widths apart.
MIN_EYE_GAP = 0.25
#: A roll steeper than this is more likely a wrong pair than a tilted head.
MAX_ROLL_DEG = 25.0


class EyeAligner:
    """Measure a face's roll angle from its two eyes, or None when unsure."""

    def __init__(self) -> None:
        self._cascade = load_cascade("haarcascade_eye.xml")
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))

    def roll_degrees(self, gray: np.ndarray, box: Box) -> float | None:
        """Angle that levels the eyes, for ``crop_face``; None when not both found.

        The image's left half is searched first and the right half only when
        the left one has an eye: both eyes are found on fewer than half of
        the faces (glasses, closed eyes, turned heads), so most misses cost a
        half search.
        """
        x0, y0 = max(0, int(box.x)), max(0, int(box.y + box.h * EYE_BAND[0]))
        x1 = min(gray.shape[1], int(box.x + box.w))
        y1 = min(gray.shape[0], int(box.y + box.h * EYE_BAND[1]))
        if x1 - x0 < 24 or y1 - y0 < 12:
            return None
        factor = WORK_WIDTH / (x1 - x0)
        shrink = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
        roi = cv2.resize(gray[y0:y1, x0:x1], None, fx=factor, fy=factor, interpolation=shrink)
        if min(roi.shape) < EYE_PX[0]:
            return None
        roi = self._clahe.apply(roi)
        half = roi.shape[1] // 2
        left = self._largest_eye(roi[:, : half + HALF_OVERLAP])
        if left is None:
            return None
        right = self._largest_eye(roi[:, half - HALF_OVERLAP :])
        if right is None:
            return None
        dx = (right[0] + half - HALF_OVERLAP) - left[0]
        if dx < MIN_EYE_GAP * WORK_WIDTH:
            return None
        angle = math.degrees(math.atan2(right[1] - left[1], dx))
        return angle if abs(angle) <= MAX_ROLL_DEG else None

    def _largest_eye(self, image: np.ndarray) -> tuple[float, float] | None:
        """Centre of the largest eye in ``image``, or None."""
        eyes = self._cascade.detectMultiScale(
            image, 1.1, EYE_NEIGHBORS, minSize=(EYE_PX[0],) * 2, maxSize=(EYE_PX[1],) * 2
        )
        if len(eyes) == 0:
            return None
        x, y, w, h = max(eyes, key=lambda e: e[2])
        return x + w / 2.0, y + h / 2.0
