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
    parser.add_argument("checkpoint", type=Path, help="a best.keras / last.keras from edgemood train")
    parser.add_argument("--data", type=Path, required=True, help=DATA_HELP + " (calibration and validation)")
    parser.add_argument("--out", type=Path, default=Path("models/edgemood-fer8-int8.tflite"))
    parser.add_argument("--no-flip-tta", action="store_true", help="do not average with the mirrored face")
    parser.add_argument("--seed", type=int, default=0)
    balance = parser.add_mutually_exclusive_group()
    balance.add_argument(
        "--max-accuracy-cost", type=float, default=MAX_ACCURACY_COST, metavar="FRACTION",
        help="logit adjustment: the best macro recall that costs at most this much accuracy on the validation split "
        f"(default {MAX_ACCURACY_COST}, 0 keeps the plain model unless an adjustment costs nothing)",
    )
    balance.add_argument("--tau", type=float, default=None, help="logit adjustment of this strength (0 plain, 1 balanced) instead")


def run(args: argparse.Namespace) -> int:
    """Export, then measure float and int8 accuracy on the validation split into the sidecar."""
    if not args.checkpoint.is_file():
        raise UsageError(f"checkpoint {args.checkpoint} does not exist")
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
    points = balance.curve(passes, val_set.labels, prior)
    if args.tau is None:
        chosen = balance.choose(points, args.max_accuracy_cost)
    else:
        chosen = balance.curve(passes, val_set.labels, prior, taus=(args.tau,))[0]
    adjustment = {
        "tau": chosen.tau,
        "log_prior": [round(float(v), 5) for v in prior],
        "max_accuracy_cost": None if args.tau is not None else args.max_accuracy_cost,
        "curve": [[p.tau, round(p.accuracy, 4), round(p.macro_recall, 4)] for p in points],
    }
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
    print(f"logit adjustment tau {chosen.tau} (plain float: accuracy {points[0].accuracy:.4f}, macro recall {points[0].macro_recall:.4f})")
    print(f"float accuracy {chosen.accuracy:.4f}, int8 accuracy {report.accuracy:.4f}, {metrics['bytes']} bytes -> {args.out}")
    return 0
