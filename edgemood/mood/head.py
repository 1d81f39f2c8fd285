"""The personal head: a small classifier fitted on one user's own faces, and how it is applied.

Expressions differ from person to person, and the shipped CNN learnt an
average face. ``edgemood enroll`` records the user showing each mood and fits
a light head on the CNN's penultimate features (the embedding the model
already outputs), on the Pi, in numpy: no TensorFlow, no retraining of the CNN.
How it is fitted and judged is ``edgemood.mood.fit``; where it is kept,
``edgemood.mood.store``; what the daemon uses, ``edgemood.mood.active``.

**Head.** Multinomial logistic regression (softmax) over the enrolled moods,
on embeddings standardised with the training mean and standard deviation.

**Blend.** The head only knows the moods the user enrolled, so it may only
speak about those. With ``S`` the enrolled classes, ``m = sum(base[S])`` the
base model's mass on them and ``w`` the blend weight::

    p[c] = base[c]                                    for c not in S
    p[S] = m * normalise(base[S] ** (1 - w) * head ** w)

A class the user did not enroll keeps exactly the base model's probability;
the head redistributes the enrolled classes' share among them (geometric
blend: where both agree the result is sharp, where they disagree ``w``
decides). The price: a face the base model confidently puts in an
unenrolled mood stays there, so enrolling all eight moods (the default)
hands the whole distribution to the blend.

**File format.** A ``.npz`` of the weights and standardisation plus a JSON
header: enrolled classes, blend weight, embedding size, model file name and
SHA-256 (a head fitted on another model is refused), the enrollment time and
its held-out figures. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgemood.classes import CLASSES
from edgemood.errors import ModelError

FORMAT = "edgemood-personal/1"
#: Probabilities are floored here before logarithms (int8 softmax outputs exact zeros).
PROBABILITY_FLOOR = 1e-6
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class PersonalHeadError(ModelError):
    """A stored personal head is unreadable, malformed or fitted on another model."""


@dataclass(frozen=True)
class ModelIdentity:
    """Which CNN produced the embeddings: a head is only valid on that model."""

    name: str
    sha256: str
    embedding_size: int


def model_identity(path: Path, embedding_size: int) -> ModelIdentity:
    """Hash the ``.tflite`` file: the same name may hold another model after an update."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return ModelIdentity(Path(path).name, digest, embedding_size)


def stamp(moment: datetime) -> str:
    """``YYYYmmddTHHMMSSZ`` in UTC: sorts by time and is safe in file names."""
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so large logits do not overflow."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Softmax:
    """Multinomial logistic regression on standardised features."""

    weights: np.ndarray  # (E, K)
    bias: np.ndarray  # (K,)
    mean: np.ndarray  # (E,)
    scale: np.ndarray  # (E,)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, E) or (E,) embeddings -> (n, K) or (K,) class probabilities."""
        z = (np.asarray(embeddings, np.float64) - self.mean) / self.scale
        return softmax(z @ self.weights + self.bias)


def blend(base: np.ndarray, head: np.ndarray, enrolled: Sequence[int], weight: float) -> np.ndarray:
    """Mix head probabilities (over ``enrolled`` class indices) into the base ones.

    See the module docstring: unenrolled classes keep their base probability,
    the enrolled ones share their base mass by ``base**(1-w) * head**w``.
    Works on one face ((8,), (K,)) or a batch ((n, 8), (n, K)).
    """
    base = np.maximum(np.asarray(base, np.float64), PROBABILITY_FLOOR)
    base = base / base.sum(axis=-1, keepdims=True)
    index = list(enrolled)
    share = base[..., index]
    mass = share.sum(axis=-1, keepdims=True)
    logits = (1 - weight) * np.log(share / mass) + weight * np.log(np.maximum(head, PROBABILITY_FLOOR))
    out = base.copy()
    out[..., index] = mass * softmax(logits)
    return out


@dataclass(frozen=True)
class PersonalHead:
    """A fitted head plus what it needs to be applied safely and explained."""

    classifier: Softmax
    classes: tuple[str, ...]
    blend: float
    model: ModelIdentity
    created: datetime
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def stamp(self) -> str:
        """The enrollment time as used in file names."""
        return stamp(self.created)

    @property
    def when(self) -> str:
        """The enrollment time for people."""
        return self.created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def apply(self, probabilities: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        """Base probabilities of one face (or a batch) and its embedding -> blended ones."""
        enrolled = [CLASSES.index(c) for c in self.classes]
        return blend(probabilities, self.classifier.probabilities(embedding), enrolled, self.blend)

    def check_model(self, model: ModelIdentity) -> None:
        """Refuse to run on a model other than the one the head was fitted on."""
        if model.sha256 != self.model.sha256 or model.embedding_size != self.model.embedding_size:
            raise PersonalHeadError(
                f"the personal head from {self.when} was fitted on model {self.model.name} "
                f"(sha256 {self.model.sha256[:12]}), not on {model.name} (sha256 {model.sha256[:12]}) "
                "now in use: run `edgemood enroll` again (or `edgemood enroll --rollback`)"
            )

    def to_bytes(self) -> bytes:
        """The ``.npz`` file's content: arrays plus a JSON header, nothing pickled."""
        meta = {
            "format": FORMAT,
            "classes": list(self.classes),
            "blend": self.blend,
            "embedding_size": self.model.embedding_size,
            "model_name": self.model.name,
            "model_sha256": self.model.sha256,
            "created": self.created.astimezone(UTC).isoformat(),
            "metrics": self.metrics,
        }
        buffer = io.BytesIO()
        c = self.classifier
        np.savez(buffer, meta=np.array(json.dumps(meta)), weights=c.weights, bias=c.bias, mean=c.mean, scale=c.scale)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> PersonalHead:
        """Parse and check a stored head; every fault is a PersonalHeadError naming ``source``."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"])) if "meta" in npz.files else None
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    raise PersonalHeadError(f"personal head {source}: not an {FORMAT} file")
                arrays = {key: np.asarray(npz[key]) for key in ("weights", "bias", "mean", "scale")}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise PersonalHeadError(f"personal head {source} is unreadable: {exc}") from None
        try:
            classes = tuple(meta["classes"])
            size = int(meta["embedding_size"])
            head = cls(
                Softmax(**{key: value.astype(np.float64) for key, value in arrays.items()}),
                classes,
                float(meta["blend"]),
                ModelIdentity(str(meta["model_name"]), str(meta["model_sha256"]), size),
                datetime.fromisoformat(meta["created"]),
                dict(meta.get("metrics", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PersonalHeadError(f"personal head {source} is malformed: {exc}") from None
        head._validate(source)
        return head

    def _validate(self, source: str) -> None:
        c, size, k = self.classifier, self.model.embedding_size, len(self.classes)
        problems = []
        if k < 2 or any(name not in CLASSES for name in self.classes) or list(self.classes) != sorted(
            self.classes, key=CLASSES.index
        ):
            problems.append(f"classes {list(self.classes)} are not two or more of {list(CLASSES)} in that order")
        if c.weights.shape != (size, k) or c.bias.shape != (k,) or c.mean.shape != (size,) or c.scale.shape != (size,):
            problems.append(f"array shapes do not match {size} features x {k} classes")
        elif not all(np.all(np.isfinite(a)) for a in (c.weights, c.bias, c.mean, c.scale)) or np.any(c.scale <= 0):
            problems.append("arrays hold non-finite values or non-positive scales")
        if not 0.0 < self.blend <= 1.0:
            problems.append(f"blend {self.blend} is not in (0, 1]")
        if self.created.tzinfo is None:
            problems.append("created has no time zone")
        if problems:
            raise PersonalHeadError(f"personal head {source} is malformed: {'; '.join(problems)}")
