"""The personal head: a small classifier fitted on one user's own faces.

Expressions differ from person to person, and the shipped CNN learnt an
average face. ``edgemood enroll`` records the user showing each mood and fits
a light head on the CNN's penultimate features (the embedding the model
already outputs), on the Pi, in numpy: no TensorFlow, no retraining of the CNN.

**Head.** Multinomial logistic regression (softmax) over the enrolled moods,
on embeddings standardised with the training mean and standard deviation,
L2-regularised (bias excluded) and fitted by full-batch Nesterov-accelerated
gradient descent with the step size from the loss's Lipschitz bound, so it
needs no tuning; a few hundred faces take about a second on a PC, a few on a Pi.

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

**Choosing and keeping.** Each mood's last ``HELDOUT_FRACTION`` of faces
(at least one) is held out; they are captured last, so they are the least
like the training frames next to them in time. ``w`` is chosen among
``BLEND_WEIGHTS`` by cross-validated log-loss on the training part only
(contiguous folds per mood; ties pick the smaller ``w``, nearer the base),
so the held-out accuracy is an honest estimate. The head is kept only if its
held-out accuracy beats the base model's (a tie keeps the base), and the head
kept is the one that was judged (fitted without the held-out faces).

**Storage.** ``<state_dir>/personal/head-<YYYYmmddTHHMMSSZ>.npz`` holds the
weights, standardisation, enrolled classes, blend weight, embedding size,
model file name and SHA-256 (a head fitted on another model is refused), the
enrollment time and its held-out figures. ``current.json`` names the head in
use and the ones before it (``history``, oldest first) for ``--rollback``.
The state directory is ``$STATE_DIRECTORY`` (set by systemd's
``StateDirectory=edgemood``), else ``/var/lib/edgemood`` when writable, else
``$XDG_STATE_HOME/edgemood`` (``~/.local/state/edgemood``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgemood.classes import CLASSES
from edgemood.errors import EdgemoodError, ModelError

FORMAT = "edgemood-personal/1"
POINTER_FORMAT = "edgemood-personal-pointer/1"
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
#: Probabilities are floored here before logarithms (int8 softmax outputs exact zeros).
PROBABILITY_FLOOR = 1e-6
#: Features varying less than this are constant for the head (dead ReLUs).
MIN_STD = 1e-6
SYSTEM_STATE_DIR = Path("/var/lib/edgemood")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


class PersonalHeadError(ModelError):
    """A stored personal head is unreadable, malformed or fitted on another model."""


class NotEnoughFaces(EdgemoodError):
    """Enrollment captured too little to fit and judge a head."""


# -- the classifier ------------------------------------------------------------------


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
    return moment.astimezone(timezone.utc).strftime(STAMP_FORMAT)


def _softmax(logits: np.ndarray) -> np.ndarray:
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
        return _softmax(z @ self.weights + self.bias)


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
        gradient = z.T @ (_softmax(z @ look) - targets) / n + l2 * penalty * look
        previous, theta = theta, look - step * gradient
    return Softmax(theta[:-1], theta[-1], mean, scale)


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
    out[..., index] = mass * _softmax(logits)
    return out


def _log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, PROBABILITY_FLOOR))))


# -- the head as stored and applied --------------------------------------------------


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
        return self.created.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

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
            "created": self.created.astimezone(timezone.utc).isoformat(),
            "metrics": self.metrics,
        }
        buffer = io.BytesIO()
        c = self.classifier
        np.savez(buffer, meta=np.array(json.dumps(meta)), weights=c.weights, bias=c.bias, mean=c.mean, scale=c.scale)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> "PersonalHead":
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


# -- fitting from an enrollment ------------------------------------------------------


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
    head = PersonalHead(classifier, classes, weight, model, created.astimezone(timezone.utc), metrics)
    return FitReport(head, base_accuracy, personal_accuracy, per_mood, dropped)


# -- storage (the I/O edge) ----------------------------------------------------------


def default_state_dir(
    environ: Mapping[str, str] = os.environ, system_dir: Path = SYSTEM_STATE_DIR, home: Path | None = None
) -> Path:
    """Where enrollments live: systemd's StateDirectory, the system dir, or the user's.

    ``$STATE_DIRECTORY`` may list several directories (colon-separated); the
    first is ours. ``system_dir`` counts when it (or, if missing, its parent)
    is writable, i.e. for root or the service user.
    """
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    probe = system_dir if system_dir.exists() else system_dir.parent
    if os.access(probe, os.W_OK):
        return system_dir
    xdg = environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else (home or Path.home()) / ".local" / "state") / "edgemood"


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader (the daemon starting) never sees half a file, and a saved file survives
    a power cut: a Pi is often switched off at the plug, so the data and the rename are
    flushed to the card (the file, then its folder) before this returns."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as exc:
        raise EdgemoodError(f"cannot write {path}: {exc.strerror or exc} (choose the state directory with --state-dir)") from None


def _version_key(path: Path) -> tuple[str, int]:
    """Order ``head-<stamp>.npz`` before ``head-<stamp>-2.npz`` (saved in the same second)."""
    stamp_part, _, suffix = path.stem.removeprefix("head-").partition("-")
    return stamp_part, int(suffix) if suffix.isdigit() else 1


class HeadStore:
    """Versioned heads under ``<state_dir>/personal`` with a ``current.json`` pointer."""

    def __init__(self, state_dir: Path):
        self.folder = Path(state_dir) / "personal"
        self.pointer = self.folder / "current.json"

    def _read_pointer(self) -> tuple[str | None, list[str]]:
        """(current file name, earlier ones oldest first); (None, []) before the first save."""
        try:
            data = json.loads(self.pointer.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PersonalHeadError(f"{self.pointer} is unreadable: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != POINTER_FORMAT:
            raise PersonalHeadError(f"{self.pointer} is malformed: expected an {POINTER_FORMAT} JSON object")
        current, history = data.get("current"), data.get("history")
        if not isinstance(current, str) or not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            raise PersonalHeadError(f"{self.pointer} is malformed: 'current' must be a file name, 'history' a list of them")
        return current, history

    def _write_pointer(self, current: str, history: list[str]) -> None:
        data = {"format": POINTER_FORMAT, "current": current, "history": history}
        _write_atomically(self.pointer, (json.dumps(data, indent=2) + "\n").encode())

    def _load(self, name: str) -> PersonalHead:
        path = self.folder / Path(name).name  # the pointer may only name files in this folder
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PersonalHeadError(f"personal head {path} cannot be read: {exc.strerror or exc}") from None
        return PersonalHead.from_bytes(data, str(path))

    def current(self) -> PersonalHead | None:
        """The head in use, or None when none was ever kept."""
        name, _ = self._read_pointer()
        return self._load(name) if name else None

    def save(self, head: PersonalHead) -> Path:
        """Store ``head`` as a new version and make it current (the old one goes to history)."""
        current, history = self._read_pointer()
        path = self.folder / f"head-{head.stamp}.npz"
        suffix = 1
        while path.exists():  # two enrollments within one second
            suffix += 1
            path = self.folder / f"head-{head.stamp}-{suffix}.npz"
        _write_atomically(path, head.to_bytes())
        self._write_pointer(path.name, history + [current] if current else history)
        return path

    def rollback(self) -> tuple[PersonalHead, PersonalHead | None]:
        """Make the previous head current again; returns (restored, replaced).

        The replaced head's file stays (``--list`` shows it), it just is no
        longer in the history.
        """
        current, history = self._read_pointer()
        if not history:
            raise EdgemoodError(f"no earlier personal head to roll back to in {self.folder}")
        restored = self._load(history[-1])
        replaced = self._load(current) if current else None
        self._write_pointer(history[-1], history[:-1])
        return restored, replaced

    def versions(self) -> list[tuple[Path, PersonalHead | None, bool]]:
        """Every stored head file, oldest first: (path, head or None if unreadable, is current)."""
        current, _ = self._read_pointer()
        out = []
        for path in sorted(self.folder.glob("head-*.npz"), key=_version_key):
            try:
                head: PersonalHead | None = PersonalHead.from_bytes(path.read_bytes(), str(path))
            except (OSError, PersonalHeadError):
                head = None
            out.append((path, head, path.name == current))
        return out


@dataclass(frozen=True)
class ActiveHead:
    """What the daemon uses: a head or none, and the sentence that says which and why."""

    head: PersonalHead | None
    note: str
    problem: bool = False

    def apply(self, probabilities: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        """The blended probabilities, or the base ones unchanged without a head."""
        return probabilities if self.head is None else self.head.apply(probabilities, embedding)

    def stats(self) -> dict[str, Any]:
        """For the MQTT stats message."""
        if self.head is None:
            return {"active": False, "note": self.note}
        metrics = self.head.metrics
        return {
            "active": True,
            "enrolled": self.head.created.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
            "moods": list(self.head.classes),
            "blend": self.head.blend,
            "heldout_accuracy": {"base": metrics.get("base_accuracy"), "personal": metrics.get("personal_accuracy")},
        }


def load_active_head(enabled: bool, model: ModelIdentity, state_dir: Path | None = None) -> ActiveHead:
    """The head to use for ``model``; never raises: a broken or foreign head is a note."""
    if not enabled:
        return ActiveHead(None, "no personal head ([model] personal = false)")
    store = HeadStore(state_dir or default_state_dir())
    try:
        head = store.current()
        if head is None:
            return ActiveHead(None, f"no personal head (none enrolled in {store.folder})")
        head.check_model(model)
    except PersonalHeadError as exc:
        return ActiveHead(None, f"no personal head: {exc}", problem=True)
    accuracy_note = ""
    if "base_accuracy" in head.metrics and "personal_accuracy" in head.metrics:
        accuracy_note = (
            f", held-out accuracy {head.metrics['base_accuracy']:.0%} -> {head.metrics['personal_accuracy']:.0%}"
        )
    return ActiveHead(head, f"personal head from {head.when} in use (moods {', '.join(head.classes)}{accuracy_note})")
