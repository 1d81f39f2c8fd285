"""Accept whatever a frame source hands over and make it one grayscale image."""

from __future__ import annotations

import cv2
import numpy as np

from edgemood import MAX_IMAGE_PIXELS

#: Larger frames are refused: 8K is far beyond any camera the daemon samples.
MAX_SIDE = 8192


class FrameError(ValueError):
    """The frame cannot be analysed (empty, wrong type or shape, too large)."""


def to_gray(frame: object) -> np.ndarray:
    """Return a contiguous uint8 grayscale view of a gray, BGR or BGRA frame."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame is {type(frame).__name__}, not an image array")
    if frame.size == 0:
        raise FrameError("frame is empty")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise FrameError(f"frame shape {frame.shape} is not gray, BGR or BGRA")
    height, width = frame.shape[:2]
    if min(height, width) < 16 or max(height, width) > MAX_SIDE:
        raise FrameError(f"frame size {width}x{height} is outside 16..{MAX_SIDE} px")
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        elif np.issubdtype(frame.dtype, np.floating) and np.isfinite(frame).all():
            frame = np.clip(frame * (255.0 if frame.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        else:
            raise FrameError(f"frame dtype {frame.dtype} is not supported")
    if frame.ndim == 3:
        code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        frame = cv2.cvtColor(frame, code)
    return np.ascontiguousarray(frame)


def read_image(path: str) -> np.ndarray:
    """Load an image file as grayscale, with a clear error when it is not one."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise FrameError(f"{path}: {exc.strerror or exc}") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    except cv2.error:  # refused from its header: more pixels than MAX_IMAGE_PIXELS
        raise FrameError(f"{path}: declares more than {MAX_IMAGE_PIXELS} pixels; not decoded") from None
    if image is None:
        raise FrameError(f"{path}: not a readable image")
    return to_gray(image)
