"""``edgemood train``: seeded, resumable training with per-epoch checkpoints.

Each epoch's crops are drawn (``augment``) in a background thread while the
previous epoch trains, every epoch is scored on the validation split, the
best weights are kept, and a JSON-lines log records the recipe and results so
a run can be compared with the next one.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edgemood.inference.model import MoodModel
from edgemood.inference.sidecar import CropGeometry
from edgemood.training.augment import AugmentSettings, augment
from edgemood.training.data import load_split
from edgemood.training.distill import mix_targets
from edgemood.training.evaluation import probabilities

#: Crop framing measured with the Haar detector on FERPlus train (median
#: box width 1.02 of the image, centred): see models/MODEL_CARD.md.
MEASURED_GEOMETRY = CropGeometry(scale=0.98, shift_y=0.0, align_eyes=True)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a training run; written to ``recipe.json``."""

    data: str
    train_split: str = "train"
    val_split: str = "publictest"
    size: int = 48
    width: int = 32
    dropout: float = 0.3
    epochs: int = 35
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    seed: int = 0
    limit_per_class: int | None = None
    #: Set by ``--resume --anneal-epochs K``: (epoch resumed from, K).
    anneal: tuple[int, int] | None = None
    #: A ``.tflite`` teacher whose probabilities are mixed into the targets (distillation).
    teacher: str | None = None
    teacher_weight: float = 0.5
    #: ``AugmentSettings`` fields; the defaults unless a run says otherwise.
    augment: dict = field(default_factory=lambda: asdict(AugmentSettings()))

    @classmethod
    def from_json(cls, stored: dict) -> Recipe:
        """A run's stored recipe; runs from before a field existed get its default."""
        anneal = tuple(stored["anneal"]) if stored.get("anneal") else None
        return cls(**{**stored, "anneal": anneal})

    def augment_settings(self) -> AugmentSettings:
        """The stored ``augment`` fields as settings (JSON turns tuples into lists)."""
        return AugmentSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.augment.items()})


def _accuracy(model, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    x = images[..., None].astype("float32")
    probs = model.predict(x, batch_size=256, verbose=0)
    flipped = model.predict(x[:, :, ::-1], batch_size=256, verbose=0)
    return {
        "acc": float((probs.argmax(1) == labels).mean()),
        "acc_flip_tta": float(((probs + flipped).argmax(1) == labels).mean()),
    }


def _optimizer(keras, peak_lr: float, weight_decay: float, warmup_steps: int, decay_steps: int):
    """AdamW with a linear warm-up to ``peak_lr`` and a cosine decay to 0."""
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, decay_steps), warmup_target=peak_lr, warmup_steps=warmup_steps
    )
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)


def _targets(recipe: Recipe, out: Path, images: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """The vote distributions, mixed with the teacher's if the recipe has one.

    The teacher runs once per run folder; its outputs are kept in
    ``teacher.npy`` so a resumed run trains on the same targets.
    """
    if not recipe.teacher:
        return votes
    cached = out / "teacher.npy"
    if cached.exists():
        teacher = np.load(cached)
    else:
        started = time.monotonic()
        teacher = probabilities(MoodModel(Path(recipe.teacher)), images)
        np.save(cached, teacher)
        print(f"teacher {recipe.teacher}: {len(images)} images in {time.monotonic() - started:.0f} s", flush=True)
    return mix_targets(votes, teacher, recipe.teacher_weight)


def train(
    recipe: Recipe, out: Path, resume: bool = False, verbose: int = 1, anneal_epochs: int | None = None,
    threads: int | None = None,
) -> dict:
    """Train, keeping ``best.keras`` (by validation accuracy) and ``last.keras`` in ``out``.

    ``anneal_epochs`` (with ``resume``) ends a run early but properly: the
    learning rate restarts from where the schedule stood and decays to zero
    over that many more epochs, instead of following the original schedule.
    ``threads`` caps TensorFlow's threads, so two seeds can share two cores.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    import keras
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    from edgemood.training.net import build_model

    out.mkdir(parents=True, exist_ok=True)
    resume = resume and (out / "last.keras").exists()
    if resume:  # the run's own recipe, not the command line's defaults
        recipe = Recipe.from_json(json.loads((out / "recipe.json").read_text()))
    keras.utils.set_random_seed(recipe.seed)
    train_set = load_split(Path(recipe.data), recipe.train_split, recipe.size, recipe.limit_per_class)
    val_set = load_split(Path(recipe.data), recipe.val_split, recipe.size, recipe.limit_per_class)
    targets = _targets(recipe, out, train_set.images, train_set.targets)
    steps = -(-len(train_set.images) // recipe.batch)
    log_path = out / "log.jsonl"
    start_epoch, best = 0, -1.0
    if resume:
        model = keras.models.load_model(out / "last.keras")
        history = [json.loads(line) for line in log_path.read_text().splitlines() if line]
        start_epoch = len(history)
        best = max((h["val"]["acc"] for h in history), default=-1.0)
        if anneal_epochs:
            current_lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
            recipe = replace(recipe, epochs=start_epoch + anneal_epochs, anneal=(start_epoch, anneal_epochs))
            # a fresh AdamW (moments rebuild during a short warm-up) on a schedule
            # that starts at the current rate and reaches zero at the new last epoch
            model.compile(
                optimizer=_optimizer(keras, current_lr, recipe.weight_decay, 100, steps * anneal_epochs - 100),
                loss="categorical_crossentropy",
                jit_compile=False,
            )
            (out / "recipe.json").write_text(json.dumps(asdict(recipe), indent=2) + "\n")
            print(f"annealing from epoch {start_epoch} at lr {current_lr:.2e} to 0 over {anneal_epochs} epochs", flush=True)
    else:
        full = build_model(recipe.size, width=recipe.width, dropout=recipe.dropout)
        model = keras.Model(full.input, full.outputs[0])
        model.compile(
            optimizer=_optimizer(
                keras, recipe.lr, recipe.weight_decay,
                warmup_steps=steps * min(recipe.warmup_epochs, recipe.epochs - 1),
                decay_steps=steps * (recipe.epochs - recipe.warmup_epochs),
            ),
            loss="categorical_crossentropy",
            jit_compile=False,  # XLA on CPU was 7x slower for this model
        )
        (out / "recipe.json").write_text(json.dumps(asdict(recipe), indent=2) + "\n")
        log_path.write_text("")
    geometry, settings = MEASURED_GEOMETRY, recipe.augment_settings()
    rng = np.random.default_rng(recipe.seed + start_epoch)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(augment, train_set.images, rng, geometry, settings)
        for epoch in range(start_epoch, recipe.epochs):
            started = time.monotonic()
            crops = pending.result()
            if epoch + 1 < recipe.epochs:
                pending = pool.submit(augment, train_set.images, rng, geometry, settings)
            fit = model.fit(
                crops[..., None].astype("float32"),
                targets,
                batch_size=recipe.batch,
                initial_epoch=epoch,
                epochs=epoch + 1,
                shuffle=True,
                verbose=verbose,
            )
            val = _accuracy(model, val_set.images, val_set.labels)
            record = {"epoch": epoch + 1, "loss": float(fit.history["loss"][-1]), "val": val, "seconds": round(time.monotonic() - started, 1)}
            with log_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            print(f"epoch {epoch + 1}/{recipe.epochs}: loss {record['loss']:.4f} val acc {val['acc']:.4f} (flip-TTA {val['acc_flip_tta']:.4f}) {record['seconds']} s", flush=True)
            model.save(out / "last.keras")
            if val["acc"] > best:
                best = val["acc"]
                model.save(out / "best.keras")
    return {"best_val_acc": best, "out": str(out)}
