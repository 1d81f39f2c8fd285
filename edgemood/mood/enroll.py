"""Enrollment: collect the user's faces per mood, fit a personal head, keep it if better.

Faces come from the camera (a countdown per mood, then one sample per camera
interval) or from a replay folder with one subfolder per mood, and go
through the daemon's own vision code, so the head learns from crops exactly
like those it will see. Only frames with exactly one face count: with two
people in view nobody knows whose mood it is.

The crops stay in memory; only ``keep_images`` writes them (under the state
directory, for the user to inspect), so nothing of the user's face is left
on disk after fitting otherwise.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from edgemood.classes import CLASSES
from edgemood.errors import EdgemoodError, UsageError
from edgemood.mood.fit import Enrollment, FitReport, fit_personal
from edgemood.mood.head import ModelIdentity, PersonalHead, stamp
from edgemood.mood.store import HeadStore
from edgemood.sources.devices import IMAGE_SUFFIXES, FrameSource
from edgemood.vision.analyze import FaceAnalyzer
from edgemood.vision.frame import FrameError, read_image

#: A live capture gives up on a mood after this many frames per wanted face.
MAX_FRAMES_PER_FACE = 5
#: Seconds of "in 3.. 2.. 1.." before each mood.
COUNTDOWN_S = 3


@dataclass(frozen=True)
class Capture:
    """One enrolled face: its mood, what the model made of it, and the crop."""

    mood: str
    embedding: np.ndarray
    probabilities: np.ndarray
    crop: np.ndarray


@dataclass(frozen=True)
class Outcome:
    """An enrollment's result: the report, and where the head went (None: not kept)."""

    report: FitReport
    saved: Path | None
    images: Path | None


def _collect(mood: str, frames: Iterable[np.ndarray], wanted: int, analyzer: FaceAnalyzer, out: TextIO) -> list[Capture]:
    """Analyse frames until ``wanted`` single-face captures (or the frames end)."""
    captures: list[Capture] = []
    looked = 0
    live = out.isatty()
    for frame in frames:
        looked += 1
        analysis = analyzer.analyze(frame)
        if analysis.seen == 1 and analysis.faces:
            face = analysis.faces[0]
            captures.append(Capture(mood, face.embedding, face.probabilities, face.crop))
        if live:
            out.write(f"\r  {mood}: {len(captures)}/{wanted} faces")
            out.flush()
        if len(captures) >= wanted:
            break
    skipped = looked - len(captures)
    note = f" ({skipped} frame(s) without exactly one face skipped)" if skipped else ""
    out.write(f"\r  {mood}: {len(captures)}/{wanted} faces{note}\n")
    return captures


def replay_folders(folder: Path, moods: Sequence[str] | None) -> dict[str, Path]:
    """``<folder>/<mood>/`` per mood; without ``moods``, every subfolder, each a class name."""
    if not folder.is_dir():
        raise UsageError(f"replay folder {folder} does not exist")
    if moods:
        missing = [m for m in moods if not (folder / m).is_dir()]
        if missing:
            raise UsageError(f"replay folder {folder} has no subfolder for {', '.join(missing)}")
        return {m: folder / m for m in moods}
    found = {p.name: p for p in folder.iterdir() if p.is_dir()}
    unknown = sorted(set(found) - set(CLASSES))
    if unknown:
        raise UsageError(f"replay folder {folder}: subfolder(s) {', '.join(unknown)} are not moods ({', '.join(CLASSES)})")
    if not found:
        raise UsageError(f"replay folder {folder} has no <mood>/ subfolders")
    return {m: found[m] for m in CLASSES if m in found}


def _images(folder: Path, out: TextIO) -> Iterator[np.ndarray]:
    """The folder's images in name order; an unreadable one is reported and skipped."""
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            yield read_image(str(path))
        except FrameError as exc:
            out.write(f"  skipping {exc}\n")


def capture_replay(folders: dict[str, Path], per_mood: int, analyzer: FaceAnalyzer, out: TextIO) -> list[Capture]:
    """Up to ``per_mood`` faces from each mood's folder of frames."""
    captures: list[Capture] = []
    for mood, folder in folders.items():
        captures += _collect(mood, _images(folder, out), per_mood, analyzer, out)
    return captures


def capture_live(
    source: FrameSource,
    moods: Sequence[str],
    per_mood: int,
    analyzer: FaceAnalyzer,
    interval_s: float,
    out: TextIO,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Capture]:
    """Prompt for each mood with a countdown, then sample at the camera interval."""

    def frames() -> Iterator[np.ndarray]:
        for i in range(per_mood * MAX_FRAMES_PER_FACE):
            if i:
                sleep(interval_s)
            yield source.read()

    captures: list[Capture] = []
    for mood in moods:
        out.write(f"Show: {mood} \u2014 in ")
        for second in range(COUNTDOWN_S, 0, -1):
            out.write(f"{second}.. ")
            out.flush()
            sleep(1.0)
        out.write("\n")
        captures += _collect(mood, frames(), per_mood, analyzer, out)
    return captures


def save_crops(captures: Sequence[Capture], folder: Path) -> None:
    """Only on request: the crops as ``<folder>/<mood>/NNNN.png``."""
    counters: Counter[str] = Counter()
    for capture in captures:
        target = folder / capture.mood
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EdgemoodError(f"cannot write enrollment images to {target}: {exc.strerror or exc}") from None
        if not cv2.imwrite(str(target / f"{counters[capture.mood]:04d}.png"), capture.crop):
            raise EdgemoodError(f"cannot write enrollment images to {target}")
        counters[capture.mood] += 1


def enroll(
    captures: Sequence[Capture], model: ModelIdentity, store: HeadStore, created: datetime, keep_images: bool
) -> Outcome:
    """Fit on the captures; store the head only if it beats the base model."""
    images = None
    if keep_images and captures:
        images = store.folder / f"images-{stamp(created)}"
        save_crops(captures, images)
    enrollment = Enrollment(
        np.array([c.embedding for c in captures], np.float32).reshape(len(captures), model.embedding_size),
        np.array([c.probabilities for c in captures], np.float32).reshape(len(captures), len(CLASSES)),
        tuple(c.mood for c in captures),
    )
    report = fit_personal(enrollment, model, created)
    saved = store.save(report.head) if report.better else None
    return Outcome(report, saved, images)


def format_outcome(outcome: Outcome) -> str:
    """What the user reads after enrolling: per-mood and overall held-out accuracy, and the decision."""
    report = outcome.report
    lines = [f"{'mood':9} {'train':>5} {'held-out':>8} {'base':>6} {'personal':>8}"]
    for mood, row in report.per_mood.items():
        n = row["heldout"]
        lines.append(
            f"{mood:9} {row['train']:5d} {n:8d} {row['base_correct'] / n:6.0%} {row['personal_correct'] / n:8.0%}"
        )
    for mood, faces in report.dropped.items():
        lines.append(f"{mood:9} left out: only {faces} face(s)")
    heldout = sum(row["heldout"] for row in report.per_mood.values())
    lines.append(
        f"held-out accuracy on {heldout} faces: base model {report.base_accuracy:.0%}, "
        f"personal {report.personal_accuracy:.0%} (blend weight {report.head.blend})"
    )
    if outcome.saved:
        lines.append(f"kept: personal head from {report.head.when} saved as {outcome.saved}")
    else:
        lines.append("not kept: the personal head is not better than the base model; nothing changed")
    if outcome.images:
        lines.append(f"enrollment images kept in {outcome.images}")
    return "\n".join(lines)


def format_versions(versions: Sequence[tuple[Path, PersonalHead | None, bool]], folder: Path) -> str:
    """``--list``: one line per stored head, ``*`` marking the one in use."""
    if not versions:
        return f"no personal heads in {folder}"
    lines = []
    for path, head, current in versions:
        mark = "*" if current else " "
        if head is None:
            lines.append(f"{mark} {path.name}  unreadable")
            continue
        m = head.metrics
        accuracy = (
            f"held-out {m['base_accuracy']:.0%} -> {m['personal_accuracy']:.0%}" if "personal_accuracy" in m else ""
        )
        lines.append(f"{mark} {path.name}  {head.when}  {len(head.classes)} moods  {accuracy}  model {head.model.name}")
    return "\n".join(lines)
