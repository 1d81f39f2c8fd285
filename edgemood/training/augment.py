"""Training-time augmentation that imitates the daemon's detector and camera.

Every training crop goes through ``edgemood.vision.crop.crop_face``, the
function the daemon uses, with the detector box and roll jittered by as much
as the Haar detector was measured to vary on these images (box width 0.83 to
1.15 of the frame, centre within 0.05 of a box width) plus residual roll
after eye alignment. Lighting jitter stands in for cameras and rooms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemood.inference.sidecar import CropGeometry
from edgemood.vision.crop import Box, crop_face, full_frame_box


@dataclass(frozen=True)
class AugmentSettings:
    """Jitter ranges; the defaults are the recipe in the model card."""

    box_scale: tuple[float, float] = (0.85, 1.17)
    box_shift: float = 0.06
    roll_deg: float = 12.0
    flip: bool = True
    contrast: tuple[float, float] = (0.7, 1.3)
    brightness: float = 25.0


def augment(
    images: np.ndarray, rng: np.random.Generator, geometry: CropGeometry, settings: AugmentSettings = AugmentSettings()
) -> np.ndarray:
    """Return one randomly re-cropped, re-lit copy of each (N, S, S) image."""
    size = images.shape[1]
    nominal = full_frame_box(size, geometry)
    out = np.empty_like(images)
    n = len(images)
    scales = rng.uniform(*settings.box_scale, n)
    shifts = rng.uniform(-settings.box_shift, settings.box_shift, (n, 2))
    rolls = rng.uniform(-settings.roll_deg, settings.roll_deg, n)
    flips = rng.random(n) < 0.5 if settings.flip else np.zeros(n, bool)
    gains = rng.uniform(*settings.contrast, n)
    offsets = rng.uniform(-settings.brightness, settings.brightness, n)
    for i in range(n):
        w = nominal.w * scales[i]
        cx = nominal.x + nominal.w / 2 + shifts[i, 0] * w
        cy = nominal.y + nominal.h / 2 + shifts[i, 1] * w
        crop = crop_face(images[i], Box(cx - w / 2, cy - w / 2, w, w), rolls[i], geometry, size)
        if flips[i]:
            crop = crop[:, ::-1]
        mean = crop.mean()
        lit = (crop.astype(np.float32) - mean) * gains[i] + mean + offsets[i]
        out[i] = np.clip(lit, 0, 255)
    return out
