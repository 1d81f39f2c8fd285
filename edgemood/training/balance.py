"""Post-hoc logit adjustment: trade a little accuracy for the rare moods.

A network trained on FERPlus learns its class frequencies (neutral is 73
times as common as contempt) and, when unsure, answers with the common
class. Subtracting ``tau * log(prior)`` from the logits (Menon et al., 2021,
"Long-tail learning via logit adjustment") moves the decision boundaries
toward the rare classes; ``tau`` = 0 is the plain model, 1 the
balanced-error optimum. It costs nothing at run time: export folds it into
the last layer's bias. ``tau`` is chosen on the validation split under a
stated ceiling on what it may cost in accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The tau values tried, 0 (plain) to 1 (balanced) in steps of 0.05.
TAUS = tuple(round(0.05 * i, 2) for i in range(21))


@dataclass(frozen=True)
class Point:
    """Accuracy and macro recall of the adjusted model at one ``tau``."""

    tau: float
    accuracy: float
    macro_recall: float
    recall: tuple[float, ...]


def log_prior(labels: np.ndarray, classes: int) -> np.ndarray:
    """Log of the training class frequencies (a class with no images counts as one)."""
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    return np.log(np.maximum(counts, 1.0) / counts.sum())


def adjusted(pass_probabilities: list[np.ndarray], shift: np.ndarray) -> np.ndarray:
    """Average of the passes' (N, C) softmax outputs after adding ``shift`` to their logits.

    Each pass (the face and its mirror image) is adjusted before averaging,
    as the exported model does with the shift in its bias.
    """
    total = np.zeros_like(pass_probabilities[0], dtype=np.float64)
    for probs in pass_probabilities:
        scaled = np.maximum(probs, 1e-12) * np.exp(shift)
        total += scaled / scaled.sum(1, keepdims=True)
    return total / len(pass_probabilities)


def curve(
    pass_probabilities: list[np.ndarray], labels: np.ndarray, prior: np.ndarray, taus: tuple[float, ...] = TAUS
) -> list[Point]:
    """Accuracy and macro recall for every ``tau`` in ``taus`` (the first is the reference of ``choose``)."""
    classes = pass_probabilities[0].shape[1]
    points = []
    for tau in taus:
        predicted = adjusted(pass_probabilities, -tau * prior).argmax(1)
        recall = tuple(
            float((predicted[labels == c] == c).mean()) if (labels == c).any() else float("nan") for c in range(classes)
        )
        points.append(Point(tau, float((predicted == labels).mean()), float(np.nanmean(recall)), recall))
    return points


def choose(points: list[Point], max_accuracy_cost: float) -> Point:
    """The ``tau`` with the best macro recall whose accuracy is within ``max_accuracy_cost`` of the plain model's."""
    plain = points[0]
    allowed = [p for p in points if p.accuracy >= plain.accuracy - max_accuracy_cost]
    return max(allowed, key=lambda p: (round(p.macro_recall, 6), p.accuracy))


def settle(
    pass_probabilities: list[np.ndarray], labels: np.ndarray, prior: np.ndarray, tau: float | None, max_accuracy_cost: float
) -> tuple[Point, list[Point]]:
    """The adjustment to apply (``tau`` if given, else ``choose``'s) and the whole curve, for the record."""
    points = curve(pass_probabilities, labels, prior)
    chosen = choose(points, max_accuracy_cost) if tau is None else curve(pass_probabilities, labels, prior, (tau,))[0]
    return chosen, points


def record(chosen: Point, points: list[Point], prior: np.ndarray, max_accuracy_cost: float | None) -> dict:
    """The sidecar's ``training.logit_adjustment``: what was applied, why, and the trade at every tau."""
    return {
        "tau": chosen.tau,
        "log_prior": [round(float(v), 5) for v in prior],
        "max_accuracy_cost": max_accuracy_cost,
        "curve": [[p.tau, round(p.accuracy, 4), round(p.macro_recall, 4)] for p in points],
    }
