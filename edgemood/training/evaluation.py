"""Accuracy of a ``.tflite`` mood model on a labelled image folder.

Runs with the runtime only (no TensorFlow), so the shipped int8 file is what
is measured. ``via_detector`` feeds each image through the daemon's own
detect -> align -> crop path instead of using it as the crop, which is how
the train/serve skew is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edgemood.classes import CLASSES
from edgemood.inference.model import MoodModel
from edgemood.vision.analyze import FaceAnalyzer
from edgemood.vision.detect import DetectorSettings

#: Border added around a training-size image before detection: Haar needs
#: context around a tight crop, and 3x upscaling brings 48 px faces to the
#: sizes a camera frame shows.
DETECTOR_PAD = 0.5
DETECTOR_UPSCALE = 3


@dataclass
class Report:
    """Confusion matrix (rows true, columns predicted) and what follows from it."""

    confusion: np.ndarray
    detected: int | None = None

    @property
    def total(self) -> int:
        """Images scored."""
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        """Share of images whose top class is the label."""
        return float(np.trace(self.confusion) / max(1, self.total))

    @property
    def recall(self) -> np.ndarray:
        """Per-class recall (NaN where a class has no images)."""
        support = self.confusion.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion) / support

    @property
    def precision(self) -> np.ndarray:
        """Per-class precision (NaN where a class is never predicted)."""
        predicted = self.confusion.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion) / predicted

    @property
    def macro_recall(self) -> float:
        """Mean recall over the classes present: weighs contempt like neutral."""
        return float(np.nanmean(self.recall))

    def as_dict(self) -> dict:
        """JSON-ready summary."""
        data = {
            "images": self.total,
            "accuracy": round(self.accuracy, 4),
            "macro_recall": round(self.macro_recall, 4),
            "per_class": {
                c: {
                    "support": int(self.confusion[i].sum()),
                    "recall": None if np.isnan(self.recall[i]) else round(float(self.recall[i]), 4),
                    "precision": None if np.isnan(self.precision[i]) else round(float(self.precision[i]), 4),
                }
                for i, c in enumerate(CLASSES)
            },
            "confusion": self.confusion.tolist(),
        }
        if self.detected is not None:
            data["detected"] = self.detected
        return data

    def table(self) -> str:
        """Per-class table for a terminal."""
        lines = [f"{'class':10} {'support':>7} {'recall':>7} {'precision':>9}"]
        for i, c in enumerate(CLASSES):
            r, p = self.recall[i], self.precision[i]
            lines.append(f"{c:10} {int(self.confusion[i].sum()):7d} {r:7.3f} {p:9.3f}")
        lines.append(f"{'overall':10} {self.total:7d} accuracy {self.accuracy:.4f}  macro recall {self.macro_recall:.4f}")
        if self.detected is not None:
            lines.append(f"faces found by the detector: {self.detected}")
        return "\n".join(lines)


def detector_frame(image: np.ndarray) -> np.ndarray:
    """A training-size face crop as a camera frame: a replicated border, then 3x upscaling."""
    pad = int(image.shape[0] * DETECTOR_PAD)
    framed = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return cv2.resize(framed, None, fx=DETECTOR_UPSCALE, fy=DETECTOR_UPSCALE, interpolation=cv2.INTER_CUBIC)


def probabilities(model: MoodModel, images: np.ndarray) -> np.ndarray:
    """The model's (N, classes) probabilities for (N, S, S) uint8 crops as they are."""
    return np.stack([model.predict(image).probabilities for image in images]).astype(np.float32)


def evaluate(
    model: MoodModel,
    images: np.ndarray,
    labels: np.ndarray,
    via_detector: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Score ``model`` on (N, S, S) uint8 images with integer labels.

    With ``via_detector`` an image whose face is not found is left out of
    the confusion matrix and counted in ``detected``.
    """
    confusion = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    analyzer = FaceAnalyzer(model, DetectorSettings(min_face_px=48, detect_width=640), "largest") if via_detector else None
    detected = 0
    for i, (image, label) in enumerate(zip(images, labels)):
        if analyzer is None:
            probabilities = model.predict(image).probabilities
        else:
            analyzer.detector.reset()
            faces = analyzer.analyze(detector_frame(image)).faces
            if not faces:
                continue
            detected += 1
            probabilities = faces[0].probabilities
        confusion[label, int(np.argmax(probabilities))] += 1
        if progress:
            progress(i + 1, len(images))
    return Report(confusion, detected if via_detector else None)


def confusion_png(report: Report, path: str) -> None:
    """Draw the row-normalised confusion matrix with counts, using OpenCV only."""
    cell, margin = 64, 110
    n = len(CLASSES)
    canvas = np.full((margin + n * cell + 20, margin + n * cell + 20, 3), 255, np.uint8)
    rows = report.confusion / np.maximum(1, report.confusion.sum(1, keepdims=True))
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(n):
        for j in range(n):
            shade = int(255 * (1 - rows[i, j]))
            x, y = margin + j * cell, margin + i * cell
            cv2.rectangle(canvas, (x, y), (x + cell, y + cell), (255, shade, shade), -1)
            colour = (255, 255, 255) if rows[i, j] > 0.5 else (0, 0, 0)
            cv2.putText(canvas, str(report.confusion[i, j]), (x + 8, y + 38), font, 0.5, colour, 1, cv2.LINE_AA)
        cv2.putText(canvas, CLASSES[i], (5, margin + i * cell + 38), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, CLASSES[i][:7], (margin + i * cell + 4, margin - 10), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(canvas, f"true (rows) vs predicted; accuracy {report.accuracy:.3f}", (5, 25), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(path, canvas):
        raise OSError(f"could not write {path}")
