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

#: Eyes are searched at this face width, where they are 22-30 px: just above
#: the eye cascade's 20 px window, so it finds them and the search stays cheap
#: (at 100 px it starts to miss the eyes of a rolled head).
WORK_WIDTH = 110
#: The band of the face box (fractions of its height, from the top) that holds
#: the eyes of an upright or moderately rolled face; nothing above or below it
#: is searched.
EYE_BAND = (0.15, 0.55)
#: Eye sizes searched, in pixels at ``WORK_WIDTH``.
EYE_PX = (20, 44)
#: Overlapping hits an eye needs. Fewer than OpenCV's default, because the band
#: and sizes are narrow and only the largest hit per side is used.
EYE_NEIGHBORS = 3
#: A roll steeper than this is more likely a wrong pair than a tilted head.
MAX_ROLL_DEG = 25.0


class EyeAligner:
    """Measure a face's roll angle from its two eyes, or None when unsure."""

    def __init__(self) -> None:
        self._cascade = load_cascade("haarcascade_eye.xml")
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))

    def roll_degrees(self, gray: np.ndarray, box: Box) -> float | None:
        """Angle that levels the eyes, for ``crop_face``; None when not both found."""
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
        eyes = self._cascade.detectMultiScale(
            roi, 1.1, EYE_NEIGHBORS, minSize=(EYE_PX[0],) * 2, maxSize=(EYE_PX[1],) * 2
        )
        half = WORK_WIDTH / 2.0
        left = [e for e in eyes if e[0] + e[2] / 2.0 < half]
        right = [e for e in eyes if e[0] + e[2] / 2.0 >= half]
        if not left or not right:
            return None
        lx, ly, lw, lh = max(left, key=lambda e: e[2])
        rx, ry, rw, rh = max(right, key=lambda e: e[2])
        dx = (rx + rw / 2.0) - (lx + lw / 2.0)
        dy = (ry + rh / 2.0) - (ly + lh / 2.0)
        angle = math.degrees(math.atan2(dy, dx))
        return angle if abs(angle) <= MAX_ROLL_DEG else None
