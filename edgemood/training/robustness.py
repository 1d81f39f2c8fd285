"""How the model holds up to what a home camera does differently from FER photos.

Each condition re-renders every validation image with one fixed transform
from ``edgemood.training.camera`` (the same code the training augmentation
draws from) and scores the model on the result, per class. The framing rows
re-crop the image from a detector box 0.75 or 1.3 times the nominal one, as
a camera at another distance or a looser detector gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgemood.classes import CLASSES
from edgemood.inference.model import MoodModel
from edgemood.inference.sidecar import CropGeometry
from edgemood.training import camera
from edgemood.training.evaluation import Report, evaluate

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Condition:
    """A named, fixed transform of a crop."""

    name: str
    transform: Transform


def conditions(geometry: CropGeometry) -> list[Condition]:
    """The rows of the robustness table, in order; ``geometry`` is the model's crop framing."""
    return [
        Condition("as given", lambda im, rng: im),
        Condition("tighter framing (box x0.75)", lambda im, rng: camera.reframe(im, geometry, 0.75)),
        Condition("looser framing (box x1.3)", lambda im, rng: camera.reframe(im, geometry, 1.3)),
        Condition("mouth covered (lower third)", lambda im, rng: camera.cover(im, *camera.MOUTH_BAND, 0.0, 1.0, 110)),
        Condition("low light (x0.35, noise 6)", lambda im, rng: camera.dim(im, 0.35, rng, 6.0)),
        Condition("dim mid-tones (gamma 2)", lambda im, rng: camera.gamma(im, 2.0)),
        Condition("side light (shadow 0.6)", lambda im, rng: camera.shadow(im, 0.6, 0.0)),
        Condition("sensor noise (sigma 12)", lambda im, rng: camera.noise(im, 12.0, rng)),
        Condition("blur (sigma 1.2)", lambda im, rng: camera.blur(im, 1.2)),
        Condition("glasses (clear)", lambda im, rng: camera.glasses(im, tint=0.0)),
        Condition("sunglasses (tint 0.7)", lambda im, rng: camera.glasses(im, tint=0.7)),
    ]


def robustness(
    model: MoodModel, images: np.ndarray, labels: np.ndarray, seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[str, Report]]:
    """One ``Report`` per condition; noise is drawn from ``seed`` so a rerun gives the same table."""
    rows = []
    table = conditions(model.sidecar.crop)
    for done, condition in enumerate(table):
        rng = np.random.default_rng(seed)
        transformed = np.stack([condition.transform(image, rng) for image in images])
        rows.append((condition.name, evaluate(model, transformed, labels)))
        if progress:
            progress(done + 1, len(table))
    return rows


def markdown(rows: list[tuple[str, Report]]) -> str:
    """The table as Markdown: accuracy, macro recall and each class's recall, in percent."""
    head = "| condition | accuracy | macro recall | " + " | ".join(CLASSES) + " |"
    lines = [head, "| --- |" + " ---: |" * (2 + len(CLASSES))]
    for name, report in rows:
        recalls = " | ".join("n/a" if np.isnan(r) else f"{100 * r:.0f}" for r in report.recall)
        lines.append(f"| {name} | {100 * report.accuracy:.1f} | {100 * report.macro_recall:.1f} | {recalls} |")
    return "\n".join(lines)
