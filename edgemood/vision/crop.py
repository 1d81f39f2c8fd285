"""Cut the model's input square out of a frame.

This one function makes both the daemon's crops and the training set's
augmented crops (``edgemood.training.augment`` jitters the box and angle and
calls it), so the model is trained on exactly the framing it is served.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from edgemood.inference.sidecar import CropGeometry


class Box(NamedTuple):
    """A face box in frame pixels (floats survive scaling without drift)."""

    x: float
    y: float
    w: float
    h: float

    def scaled(self, factor: float) -> Box:
        """The same box in an image ``factor`` times as large."""
        return Box(self.x * factor, self.y * factor, self.w * factor, self.h * factor)

    def as_ints(self) -> tuple[int, int, int, int]:
        """Rounded, for reports."""
        return tuple(int(round(v)) for v in self)  # type: ignore[return-value]


def crop_face(
    gray: np.ndarray, box: Box, angle_deg: float, geometry: CropGeometry, size: int
) -> np.ndarray:
    """Return a ``size`` x ``size`` uint8 crop around ``box``, levelled by ``angle_deg``.

    The crop is square, ``geometry.scale`` box widths wide, centred
    ``geometry.shift_y`` box widths below the box centre and rotated
    about that centre. Pixels outside the frame repeat the border, as in the
    training augmentation. A crop much larger than ``size`` is cut at its
    own resolution and then area-averaged down, which avoids aliasing.
    """
    side = box.w * geometry.scale
    centre = (box.x + box.w / 2.0, box.y + box.h / 2.0 + geometry.shift_y * box.w)
    out = int(round(side)) if side > 2 * size else size
    matrix = cv2.getRotationMatrix2D(centre, angle_deg, out / side)
    matrix[0, 2] += out / 2.0 - centre[0]
    matrix[1, 2] += out / 2.0 - centre[1]
    crop = cv2.warpAffine(
        gray, matrix, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if out != size:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return crop


def full_frame_box(size: int, geometry: CropGeometry) -> Box:
    """The detector box whose crop is the whole ``size`` x ``size`` image.

    Training images are already face crops; this is the box that the
    detector would have to report for ``crop_face`` to reproduce them.
    """
    w = size / geometry.scale
    cy = size / 2.0 - geometry.shift_y * w
    return Box(size / 2.0 - w / 2.0, cy - w / 2.0, w, w)
