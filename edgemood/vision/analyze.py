"""One frame in, the classified faces out: detect -> align -> crop -> classify."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edgemood.classes import CLASSES
from edgemood.config import FACE_POLICIES, FacePolicy
from edgemood.inference.model import MoodModel
from edgemood.vision.align import EyeAligner
from edgemood.vision.crop import Box, crop_face
from edgemood.vision.detect import DetectorSettings, FaceDetector
from edgemood.vision.frame import FrameError, to_gray

#: With "all", at most this many faces are classified, largest first: a frame
#: full of false detections (a patterned curtain) must not cost a classification
#: each. ``Analysis.seen`` still counts every face found.
MAX_FACES = 6


@dataclass(frozen=True)
class Face:
    """One classified face: its box in frame pixels, roll, probabilities, embedding."""

    box: Box
    roll_deg: float | None
    probabilities: np.ndarray
    embedding: np.ndarray
    crop: np.ndarray = field(repr=False)

    @property
    def mood(self) -> str:
        """The most probable class."""
        return CLASSES[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        """Probability of the most probable class."""
        return float(np.max(self.probabilities))


@dataclass(frozen=True)
class Analysis:
    """Result for one frame: classified faces, faces seen, an error, stage timings (s)."""

    faces: list[Face]
    seen: int = 0
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


class FaceAnalyzer:
    """The vision pipeline; one instance per frame source (it tracks the last face)."""

    def __init__(
        self,
        model: MoodModel,
        settings: DetectorSettings = DetectorSettings(),
        policy: FacePolicy = "largest",
    ):
        if policy not in FACE_POLICIES:
            raise ValueError(f"policy must be one of {FACE_POLICIES}, got {policy!r}")
        self.model = model
        self.policy = policy
        self.detector = FaceDetector(settings)
        self.aligner = EyeAligner() if model.sidecar.crop.align_eyes else None

    def crops(self, gray: np.ndarray, boxes: list[Box]) -> list[tuple[Box, float | None, np.ndarray]]:
        """Align and crop each box exactly as the model was trained to see it."""
        out = []
        for box in boxes:
            roll = self.aligner.roll_degrees(gray, box) if self.aligner else None
            crop = crop_face(gray, box, roll or 0.0, self.model.sidecar.crop, self.model.input_size)
            out.append((box, roll, crop))
        return out

    def analyze(self, frame: object) -> Analysis:
        """Classify the faces the policy selects; a bad frame is an error value."""
        try:
            gray = to_gray(frame)
        except FrameError as exc:
            return Analysis([], error=str(exc))
        t0 = time.perf_counter()
        boxes = self.detector.detect(gray, track=self.policy == "largest")
        t1 = time.perf_counter()
        seen = len(boxes)
        if self.policy == "largest":
            boxes = boxes[:1]
        elif self.policy == "skip" and seen > 1:
            boxes = []
        else:
            boxes = boxes[:MAX_FACES]
        aligned = self.crops(gray, boxes)
        t2 = time.perf_counter()
        faces = []
        for box, roll, crop in aligned:
            prediction = self.model.predict(crop)
            faces.append(Face(box, roll, prediction.probabilities, prediction.embedding, crop))
        t3 = time.perf_counter()
        return Analysis(faces, seen, None, {"detect": t1 - t0, "align": t2 - t1, "classify": t3 - t2})
