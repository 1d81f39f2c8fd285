"""``edgemood export``: checkpoint -> int8 ``.tflite`` + sidecar, with measured metrics."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgemood.commands.train import DATA_HELP
from edgemood.errors import EdgemoodError, UsageError

#: Training crops used to calibrate int8 activation ranges.
REPRESENTATIVE = 500
#: What the logit adjustment may cost in validation accuracy (a fraction).
MAX_ACCURACY_COST = 0.005


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood export``."""
    parser.add_argument(
        "checkpoint",
        type=Path,
        help="a best.keras / last.keras from edgemood train, or an exported .tflite to re-balance (logit adjustment only)",
    )
    parser.add_argument("--data", type=Path, required=True, help=DATA_HELP + " (calibration and validation)")
    parser.add_argument("--out", type=Path, default=Path("models/edgemood-fer8-int8.tflite"))
    parser.add_argument("--no-flip-tta", action="store_true", help="do not average with the mirrored face")
    parser.add_argument("--seed", type=int, default=0)
    balance = parser.add_mutually_exclusive_group()
    balance.add_argument(
        "--max-accuracy-cost",
        type=float,
        default=MAX_ACCURACY_COST,
        metavar="FRACTION",
        help="logit adjustment: the best macro recall that costs at most this much accuracy on the validation split "
        f"(default {MAX_ACCURACY_COST}, 0 keeps the plain model unless an adjustment costs nothing)",
    )
    balance.add_argument(
        "--tau", type=float, default=None, help="logit adjustment of this strength (0 plain, 1 balanced) instead"
    )


def run(args: argparse.Namespace) -> int:
    """Export, then measure float and int8 accuracy on the validation split into the sidecar."""
    if not args.checkpoint.is_file():
        raise UsageError(f"checkpoint {args.checkpoint} does not exist")
    if args.checkpoint.suffix == ".tflite":  # checked first: it needs TensorFlow only to write the file
        return _rebalance(args)
    try:
        from edgemood.training.export import export, pass_probabilities
        from edgemood.training.train import MEASURED_GEOMETRY
    except ImportError as exc:
        raise EdgemoodError(f"export needs the [train] extra: pip install 'edgemood[train]' ({exc})") from None
    from edgemood.classes import CLASSES
    from edgemood.inference.model import MoodModel
    from edgemood.inference.sidecar import Sidecar, load_sidecar, sidecar_path
    from edgemood.training import balance
    from edgemood.training.data import load_split
    from edgemood.training.evaluation import evaluate

    run_dir = args.checkpoint.parent
    recipe = json.loads((run_dir / "recipe.json").read_text()) if (run_dir / "recipe.json").exists() else {}
    if "data" in recipe:  # the dataset's name, not a path on the training machine
        recipe["data"] = Path(recipe["data"]).name
    train_set = load_split(args.data, "train")
    val_set = load_split(args.data, "publictest")
    rng = np.random.default_rng(args.seed)
    count = min(REPRESENTATIVE, len(train_set.images))
    representative = train_set.images[rng.choice(len(train_set.images), count, replace=False)]
    flip_tta = not args.no_flip_tta
    passes = pass_probabilities(args.checkpoint, val_set.images, flip_tta)
    prior = balance.log_prior(train_set.labels, len(CLASSES))
    chosen, points = balance.settle(passes, val_set.labels, prior, args.tau, args.max_accuracy_cost)
    adjustment = balance.record(chosen, points, prior, None if args.tau is not None else args.max_accuracy_cost)
    training = {"recipe": recipe, "checkpoint": args.checkpoint.name, "logit_adjustment": adjustment}
    draft = Sidecar((), train_set.images.shape[1], MEASURED_GEOMETRY, {}, 0, training=training)
    export(args.checkpoint, args.out, representative, draft, flip_tta=flip_tta, logit_shift=-chosen.tau * prior)
    model = MoodModel(args.out)
    report = evaluate(model, val_set.images, val_set.labels)
    sidecar = load_sidecar(sidecar_path(args.out))
    metrics = {
        "split": "ferplus/publictest",
        "int8_accuracy": round(report.accuracy, 4),
        "float_accuracy": round(chosen.accuracy, 4),
        "macro_recall": round(report.macro_recall, 4),
        "float_macro_recall": round(chosen.macro_recall, 4),
        "bytes": args.out.stat().st_size,
    }
    sidecar_path(args.out).write_text(replace(sidecar, metrics=metrics).to_json())
    print(report.table())
    print(
        f"logit adjustment tau {chosen.tau} (plain float: accuracy {points[0].accuracy:.4f}, macro recall {points[0].macro_recall:.4f})"
    )
    print(
        f"float accuracy {chosen.accuracy:.4f}, int8 accuracy {report.accuracy:.4f}, {metrics['bytes']} bytes -> {args.out}"
    )
    return 0


def _rebalance(args: argparse.Namespace) -> int:
    """Logit-adjust an exported int8 file whose float checkpoint is gone, keeping its sidecar's record.

    ``tau`` is chosen from the file's own (flip-averaged) int8 outputs,
    shifted after averaging, an approximation of shifting each pass; the
    file written is then measured as it is.
    """
    from edgemood.classes import CLASSES
    from edgemood.inference.model import MoodModel
    from edgemood.inference.sidecar import sidecar_path
    from edgemood.training import balance
    from edgemood.training.data import load_split
    from edgemood.training.evaluation import evaluate, probabilities

    source = MoodModel(args.checkpoint)
    if (source.sidecar.training.get("logit_adjustment") or {}).get("tau"):
        raise UsageError(f"{args.checkpoint} is already logit-adjusted; start from the file before")
    train_set = load_split(args.data, "train", source.input_size)
    val_set = load_split(args.data, "publictest", source.input_size)
    prior = balance.log_prior(train_set.labels, len(CLASSES))
    chosen, points = balance.settle(
        [probabilities(source, val_set.images)], val_set.labels, prior, args.tau, args.max_accuracy_cost
    )
    try:
        from edgemood.training.export import shift_int8_logits

        tflite = shift_int8_logits(args.checkpoint.read_bytes(), -chosen.tau * prior)
    except ImportError as exc:
        raise EdgemoodError(f"export needs the [train] extra: pip install 'edgemood[train]' ({exc})") from None
    sidecar = source.sidecar
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(tflite)
    sidecar_path(args.out).write_text(sidecar.to_json())
    report = evaluate(MoodModel(args.out), val_set.images, val_set.labels)
    adjustment = {
        **balance.record(chosen, points, prior, None if args.tau is not None else args.max_accuracy_cost),
        "applied_to": "the exported int8 file (its float checkpoint was not kept)",
    }
    metrics = {
        **sidecar.metrics,
        "int8_accuracy": round(report.accuracy, 4),
        "macro_recall": round(report.macro_recall, 4),
        "int8_accuracy_before_adjustment": round(points[0].accuracy, 4),
        "macro_recall_before_adjustment": round(points[0].macro_recall, 4),
        "bytes": args.out.stat().st_size,
    }
    metrics.pop("float_accuracy", None)  # the float model is not the one shifted
    training = {**sidecar.training, "logit_adjustment": adjustment}
    sidecar_path(args.out).write_text(replace(sidecar, metrics=metrics, training=training).to_json())
    print(report.table())
    print(
        f"logit adjustment tau {chosen.tau}: accuracy {points[0].accuracy:.4f} -> {report.accuracy:.4f}, "
        f"macro recall {points[0].macro_recall:.4f} -> {report.macro_recall:.4f} -> {args.out}"
    )
    return 0
