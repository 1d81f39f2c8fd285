"""Training-time augmentation that imitates the daemon's detector and a home camera.

Every training crop goes through ``edgemood.vision.crop.crop_face``, the
function the daemon uses, with the detector box and roll jittered. Two
presets (``PRESETS``): ``detector``, the shipped model's recipe, jitters as
much as the Haar detector was measured to vary on these images (box width
0.85-1.17 of the frame, centre within 0.06 of a box width) plus residual
roll after eye alignment, and relights; ``camera``, v2's recipe, frames
tighter and looser (0.75-1.3, as a camera at another distance gives) and
adds, each with its own probability, what a room does to a face
(``edgemood.training.camera``): a gamma curve, side light, blur, sensor
noise, glasses, and a covered lower face (a hand, or a mouth that gives
nothing away, so the brows and eyes have to carry the expression).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemood.inference.sidecar import CropGeometry
from edgemood.training import camera


@dataclass(frozen=True)
class AugmentSettings:
    """Jitter ranges and the probability of each camera effect; the defaults are the shipped model's recipe."""

    box_scale: tuple[float, float] = (0.85, 1.17)
    box_shift: float = 0.06
    roll_deg: float = 12.0
    flip: bool = True
    contrast: tuple[float, float] = (0.7, 1.3)
    brightness: float = 25.0
    p_gamma: float = 0.0
    gamma: tuple[float, float] = (0.6, 2.2)
    p_shadow: float = 0.0
    shadow: tuple[float, float] = (0.2, 0.6)
    p_blur: float = 0.0
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    p_noise: float = 0.0
    noise_sigma: tuple[float, float] = (2.0, 12.0)
    p_glasses: float = 0.0
    p_cover_mouth: float = 0.0


#: ``edgemood train --augment NAME``: the shipped model's recipe, and v2's (models/MODEL_CARD.md).
PRESETS = {
    "detector": AugmentSettings(),
    "camera": AugmentSettings(
        box_scale=(0.75, 1.3), box_shift=0.08, contrast=(0.6, 1.4), brightness=30.0,
        p_gamma=0.3, p_shadow=0.2, p_blur=0.2, p_noise=0.3, p_glasses=0.12, p_cover_mouth=0.12,
    ),
}


def augment_one(image: np.ndarray, rng: np.random.Generator, geometry: CropGeometry, s: AugmentSettings) -> np.ndarray:
    """One random re-crop of one (S, S) image, with this draw's camera effects."""
    scale = rng.uniform(*s.box_scale)
    shift = rng.uniform(-s.box_shift, s.box_shift, 2)
    crop = camera.reframe(image, geometry, scale, rng.uniform(-s.roll_deg, s.roll_deg), (shift[0], shift[1]))
    if s.flip and rng.random() < 0.5:
        crop = np.ascontiguousarray(crop[:, ::-1])
    crop = camera.relight(crop, rng.uniform(*s.contrast), rng.uniform(-s.brightness, s.brightness))
    if rng.random() < s.p_gamma:
        crop = camera.gamma(crop, rng.uniform(*s.gamma))
    if rng.random() < s.p_shadow:
        crop = camera.shadow(crop, rng.uniform(*s.shadow), rng.uniform(0, 360))
    if rng.random() < s.p_glasses:
        crop = camera.glasses(crop, tint=rng.choice([0.0, 0.3, 0.7]), rim=int(rng.integers(1, 3)),
                              dx=rng.uniform(-0.03, 0.03), dy=rng.uniform(-0.04, 0.04))
    if rng.random() < s.p_cover_mouth:
        top = rng.uniform(0.6, 0.75)
        left = rng.uniform(0.0, 0.3)
        crop = camera.cover(crop, top, 1.0, left, left + rng.uniform(0.5, 1.0), rng.uniform(30, 200))
    if rng.random() < s.p_blur:
        crop = camera.blur(crop, rng.uniform(*s.blur_sigma))
    if rng.random() < s.p_noise:
        crop = camera.noise(crop, rng.uniform(*s.noise_sigma), rng)
    return crop


def augment(
    images: np.ndarray, rng: np.random.Generator, geometry: CropGeometry, settings: AugmentSettings = AugmentSettings()
) -> np.ndarray:
    """Return one randomly re-cropped, re-lit copy of each (N, S, S) image."""
    out = np.empty_like(images)
    for i, image in enumerate(images):
        out[i] = augment_one(image, rng, geometry, settings)
    return out
