"""``[log] debug_frames_dir``: the face crop behind each mood change, for tuning.

Off unless configured (privacy). A folder that goes away or fills up while
the daemon runs costs one warning and no more saving, never a frame.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("edgemood.daemon")


class DebugCrops:
    """Writes ``<wall ms>-<mood>.png`` into one folder until a write fails."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.failed = False

    def save(self, crop: np.ndarray, mood: str, wall_time: float) -> None:
        """Save one crop; the first failure is logged and ends saving until restarted."""
        if self.failed:
            return
        name = f"{int(wall_time * 1000)}-{mood}.png"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(self.folder / name), crop):
                raise OSError("OpenCV could not write the file")
        except OSError as exc:
            log.warning("debug_frames_dir %s: cannot save a crop (%s); not saving until restarted", self.folder, exc)
            self.failed = True
