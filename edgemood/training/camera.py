"""What a home camera does to a face crop, as pure functions of a uint8 image.

One home for these transforms: training draws them at random
(``edgemood.training.augment``) and the robustness table applies them at fixed
strengths (``edgemood.training.robustness``), so the conditions the model is
taught and the conditions it is scored on are the same code.

Positions are fractions of the crop side in the framing the sidecar's crop
geometry gives (eyes levelled near 0.38 of the height, mouth near 0.75).
"""

from __future__ import annotations

import cv2
import numpy as np

from edgemood.inference.sidecar import CropGeometry
from edgemood.vision.crop import Box, crop_face, full_frame_box

#: Eye row and eye centres (fractions of the side) in a levelled crop.
EYE_Y, EYE_X = 0.38, (0.31, 0.69)
#: The band from under the nose to the chin: where a hand or a closed mouth changes things.
MOUTH_BAND = (0.62, 0.95)


def reframe(
    image: np.ndarray, geometry: CropGeometry, scale: float, roll_deg: float = 0.0, shift: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Crop ``image`` as the daemon would from a detector box ``scale`` times the nominal one.

    ``scale`` < 1 frames the face tighter (a camera closer, a detector box
    that hugs the face), > 1 looser; ``shift`` moves the box by fractions of
    its width and ``roll_deg`` is the roll left after eye alignment.
    """
    size = image.shape[0]
    nominal = full_frame_box(size, geometry)
    w = nominal.w * scale
    cx = nominal.x + nominal.w / 2 + shift[0] * w
    cy = nominal.y + nominal.h / 2 + shift[1] * w
    return crop_face(image, Box(cx - w / 2, cy - w / 2, w, w), roll_deg, geometry, size)


def _clip(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).astype(np.uint8)


def relight(image: np.ndarray, gain: float, offset: float) -> np.ndarray:
    """Contrast ``gain`` about the crop's mean, then ``offset`` grey levels."""
    mean = float(image.mean())
    return _clip((image.astype(np.float32) - mean) * gain + mean + offset)


def gamma(image: np.ndarray, value: float) -> np.ndarray:
    """Gamma curve: ``value`` > 1 darkens the mid-tones as a dim room does."""
    return _clip(255.0 * (image.astype(np.float32) / 255.0) ** value)


def dim(image: np.ndarray, factor: float, rng: np.random.Generator, noise_sigma: float) -> np.ndarray:
    """Low light: scale by ``factor`` and add the sensor noise a raised gain brings."""
    return noise(_clip(image.astype(np.float32) * factor), noise_sigma, rng)


def noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian sensor noise of ``sigma`` grey levels."""
    if sigma <= 0:
        return image
    return _clip(image.astype(np.float32) + rng.normal(0.0, sigma, image.shape))


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (focus, motion, a small face upscaled)."""
    if sigma <= 0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigma)


def shadow(image: np.ndarray, strength: float, angle_deg: float) -> np.ndarray:
    """Side light: brightness falls off linearly across the face by up to ``strength``."""
    size = image.shape[0]
    t = np.radians(angle_deg)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1) - 0.5
    ramp = (xs * np.cos(t) + ys * np.sin(t)) + 0.5  # 0..1 across the crop
    return _clip(image.astype(np.float32) * (1.0 - strength * np.clip(ramp, 0, 1)))


def glasses(image: np.ndarray, tint: float, rim: int = 1, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """Draw a pair of glasses: dark rims and a bridge, lenses darkened by ``tint`` (0 clear, 1 black)."""
    size = image.shape[0]
    out = image.astype(np.float32)
    axes = (max(2, int(round(0.15 * size))), max(2, int(round(0.10 * size))))
    centres = [(int(round((x + dx) * size)), int(round((EYE_Y + dy) * size))) for x in EYE_X]
    if tint > 0:
        lenses = np.zeros(image.shape, np.uint8)
        for centre in centres:
            cv2.ellipse(lenses, centre, axes, 0, 0, 360, 1, -1)
        out = np.where(lenses > 0, out * (1.0 - tint), out)
    frame = np.zeros(image.shape, np.uint8)
    for centre in centres:
        cv2.ellipse(frame, centre, axes, 0, 0, 360, 1, rim)
    cv2.line(frame, (centres[0][0] + axes[0], centres[0][1]), (centres[1][0] - axes[0], centres[1][1]), 1, rim)
    out = np.where(frame > 0, 20.0, out)
    return _clip(out)


def cover(image: np.ndarray, top: float, bottom: float, left: float, right: float, fill: float) -> np.ndarray:
    """Cover a rectangle (fractions of the side) with a flat ``fill``: a hand, a mug, a scarf."""
    size = image.shape[0]
    out = image.copy()
    y0, y1 = int(round(top * size)), int(round(bottom * size))
    x0, x1 = int(round(left * size)), int(round(right * size))
    out[y0:y1, x0:x1] = np.uint8(np.clip(fill, 0, 255))
    return out
