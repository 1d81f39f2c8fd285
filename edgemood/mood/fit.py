"""Fitting a personal head from an enrollment, and judging it against the base model.

**Fit.** The head (``edgemood.mood.head``) is L2-regularised (bias excluded)
and fitted by full-batch Nesterov-accelerated gradient descent with the step
size from the loss's Lipschitz bound, so it needs no tuning; a few hundred
faces take about a second on a PC, a few on a Pi.

**Choosing and keeping.** Each mood's last ``HELDOUT_FRACTION`` of faces
(at least one) is held out; they are captured last, so they are the least
like the training frames next to them in time. ``w`` is chosen among
``BLEND_WEIGHTS`` by cross-validated log-loss on the training part only
(contiguous folds per mood; ties pick the smaller ``w``, nearer the base),
so the held-out accuracy is an honest estimate. The head is kept only if its
held-out accuracy beats the base model's (a tie keeps the base), and the head
kept is the one that was judged (fitted without the held-out faces).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from edgemood.classes import CLASSES
from edgemood.errors import EdgemoodError
from edgemood.mood.head import PROBABILITY_FLOOR, ModelIdentity, PersonalHead, Softmax, blend, softmax

#: Share of each mood's faces (its last ones) kept out of fitting to judge the head.
HELDOUT_FRACTION = 0.25
#: Fewer faces than this for a mood (training + held-out) and it is left out.
MIN_FACES_PER_MOOD = 4
#: Candidate head weights in the blend; 0 would be the base model itself.
BLEND_WEIGHTS = (0.25, 0.5, 0.75, 1.0)
#: Folds of the cross-validation that picks the blend weight.
CV_FOLDS = 3
#: L2 penalty on the standardised-feature weights: strong enough that a few
#: dozen faces in 512 dimensions do not just get memorised.
L2 = 1e-2
#: Gradient steps; accelerated descent on this small problem has settled by then.
ITERATIONS = 300
#: Features varying less than this are constant for the head (dead ReLUs).
MIN_STD = 1e-6


class NotEnoughFaces(EdgemoodError):
    """Enrollment captured too little to fit and judge a head."""


def fit_softmax(
    embeddings: np.ndarray, labels: np.ndarray, classes: int, l2: float = L2, iterations: int = ITERATIONS
) -> Softmax:
    """Minimise mean cross-entropy + ``l2/2 * |W|^2`` by accelerated gradient descent.

    The step is ``1/L`` with ``L = |X|_2^2 / (2n) + l2`` (the softmax Hessian's
    bound), which always converges, so no learning rate needs tuning.
    """
    x = np.asarray(embeddings, np.float64)
    y = np.asarray(labels, np.int64)
    if x.ndim != 2 or y.shape != (len(x),) or len(x) == 0:
        raise ValueError(f"need (n, E) embeddings and n labels, got {x.shape} and {y.shape}")
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    scale = np.where(std > MIN_STD, std, 1.0)
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])  # last column: the bias
    n, dims = z.shape
    targets = np.eye(classes)[y]
    penalty = np.ones((dims, 1))
    penalty[-1] = 0.0  # the bias is not regularised
    step = 1.0 / (np.linalg.norm(z, 2) ** 2 / (2 * n) + l2)
    theta = previous = np.zeros((dims, classes))
    for t in range(1, iterations + 1):
        look = theta + (t - 1) / (t + 2) * (theta - previous)
        gradient = z.T @ (softmax(z @ look) - targets) / n + l2 * penalty * look
        previous, theta = theta, look - step * gradient
    return Softmax(theta[:-1], theta[-1], mean, scale)


def _log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, PROBABILITY_FLOOR))))


@dataclass(frozen=True)
class Enrollment:
    """The user's faces: per face its embedding, base probabilities and mood, in capture order."""

    embeddings: np.ndarray  # (n, E)
    probabilities: np.ndarray  # (n, 8)
    moods: tuple[str, ...]  # (n,)


@dataclass(frozen=True)
class FitReport:
    """What enrollment found out; ``head`` is worth keeping only if ``better``."""

    head: PersonalHead
    base_accuracy: float
    personal_accuracy: float
    per_mood: dict[str, dict[str, int]]  # mood -> train, heldout, base_correct, personal_correct
    dropped: dict[str, int]  # mood -> faces, for moods with too few faces

    @property
    def better(self) -> bool:
        """Strictly better on the held-out faces (a tie keeps the base model)."""
        return self.personal_accuracy > self.base_accuracy


def split_heldout(labels: Sequence[int], fraction: float = HELDOUT_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: each label's last ``fraction`` (at least one) is held out."""
    labels = np.asarray(labels)
    train, heldout = [], []
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        count = max(1, int(len(where) * fraction + 0.5))
        train.extend(where[:-count])
        heldout.extend(where[-count:])
    return np.sort(np.array(train, np.int64)), np.sort(np.array(heldout, np.int64))


def _folds(labels: np.ndarray, folds: int) -> np.ndarray:
    """Fold number per sample: each label's samples in ``folds`` contiguous blocks."""
    fold = np.zeros(len(labels), np.int64)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        fold[where] = np.arange(len(where)) * folds // len(where)
    return fold


def choose_blend(
    embeddings: np.ndarray, base: np.ndarray, labels: np.ndarray, enrolled: Sequence[int], folds: int = CV_FOLDS
) -> float:
    """The ``BLEND_WEIGHTS`` entry with the lowest cross-validated log-loss.

    ``labels`` index ``enrolled``; every label needs at least ``folds`` samples
    so that every training fold holds every class.
    """
    fold = _folds(labels, folds)
    head = np.zeros((len(labels), len(enrolled)))
    for f in range(folds):
        part = fold == f
        classifier = fit_softmax(embeddings[~part], labels[~part], len(enrolled))
        head[part] = classifier.probabilities(embeddings[part])
    targets = np.asarray(enrolled)[labels]
    losses = [_log_loss(blend(base, head, enrolled, w), targets) for w in BLEND_WEIGHTS]
    return BLEND_WEIGHTS[int(np.argmin(losses))]  # argmin takes the first, i.e. smallest, of equal losses


def fit_personal(enrollment: Enrollment, model: ModelIdentity, created: datetime) -> FitReport:
    """Split, choose the blend, fit, and score base vs personal on the held-out faces.

    Moods with fewer than ``MIN_FACES_PER_MOOD`` faces are left out (listed in
    ``dropped``); fewer than two moods left is ``NotEnoughFaces``.
    """
    embeddings = np.asarray(enrollment.embeddings, np.float64)
    base = np.asarray(enrollment.probabilities, np.float64)
    if embeddings.ndim != 2 or embeddings.shape[1] != model.embedding_size:
        raise ValueError(f"embeddings {embeddings.shape} do not match the model's {model.embedding_size} features")
    counts = Counter(enrollment.moods)
    dropped = {mood: n for mood, n in counts.items() if n < MIN_FACES_PER_MOOD}
    classes = tuple(c for c in CLASSES if counts[c] >= MIN_FACES_PER_MOOD)
    if len(classes) < 2:
        have = ", ".join(f"{mood} {n}" for mood, n in sorted(counts.items(), key=lambda kv: CLASSES.index(kv[0])))
        raise NotEnoughFaces(
            f"need at least 2 moods with at least {MIN_FACES_PER_MOOD} faces each, got: {have or 'no faces'}"
        )
    keep = np.array([mood in classes for mood in enrollment.moods])
    embeddings, base = embeddings[keep], base[keep]
    labels = np.array([classes.index(m) for m in enrollment.moods if m in classes])
    enrolled = [CLASSES.index(c) for c in classes]
    train, heldout = split_heldout(labels)
    weight = choose_blend(embeddings[train], base[train], labels[train], enrolled)
    classifier = fit_softmax(embeddings[train], labels[train], len(classes))
    targets = np.asarray(enrolled)[labels]
    personal = blend(base, classifier.probabilities(embeddings), enrolled, weight)
    base_hits = np.argmax(base, axis=1) == targets
    personal_hits = np.argmax(personal, axis=1) == targets
    per_mood = {
        mood: {
            "train": int(np.sum(labels[train] == i)),
            "heldout": int(np.sum(labels[heldout] == i)),
            "base_correct": int(np.sum(base_hits[heldout] & (labels[heldout] == i))),
            "personal_correct": int(np.sum(personal_hits[heldout] & (labels[heldout] == i))),
        }
        for i, mood in enumerate(classes)
    }
    base_accuracy = float(np.mean(base_hits[heldout]))
    personal_accuracy = float(np.mean(personal_hits[heldout]))
    metrics = {
        "base_accuracy": base_accuracy,
        "personal_accuracy": personal_accuracy,
        "train": len(train),
        "heldout": len(heldout),
        "per_mood": per_mood,
    }
    head = PersonalHead(classifier, classes, weight, model, created.astimezone(UTC), metrics)
    return FitReport(head, base_accuracy, personal_accuracy, per_mood, dropped)
