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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood export``."""
    parser.add_argument("checkpoint", type=Path, help="a best.keras / last.keras from edgemood train")
    parser.add_argument("--data", type=Path, required=True, help=DATA_HELP + " (calibration and validation)")
    parser.add_argument("--out", type=Path, default=Path("models/edgemood-fer8-int8.tflite"))
    parser.add_argument("--no-flip-tta", action="store_true", help="do not average with the mirrored face")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Export, then measure float and int8 accuracy on the validation split into the sidecar."""
    if not args.checkpoint.is_file():
        raise UsageError(f"checkpoint {args.checkpoint} does not exist")
    try:
        from edgemood.training.export import export, float_accuracy
        from edgemood.training.train import MEASURED_GEOMETRY
    except ImportError as exc:
        raise EdgemoodError(f"export needs the [train] extra: pip install 'edgemood[train]' ({exc})") from None
    from edgemood.inference.model import MoodModel
    from edgemood.inference.sidecar import Sidecar, load_sidecar, sidecar_path
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
    draft = Sidecar((), train_set.images.shape[1], MEASURED_GEOMETRY, {}, 0, training={"recipe": recipe, "checkpoint": args.checkpoint.name})
    export(args.checkpoint, args.out, representative, draft, flip_tta=not args.no_flip_tta)
    model = MoodModel(args.out)
    report = evaluate(model, val_set.images, val_set.labels)
    float_acc = float_accuracy(args.checkpoint, val_set.images, val_set.labels, flip_tta=not args.no_flip_tta)
    sidecar = load_sidecar(sidecar_path(args.out))
    metrics = {
        "split": "ferplus/publictest",
        "int8_accuracy": round(report.accuracy, 4),
        "float_accuracy": round(float_acc, 4),
        "macro_recall": round(report.macro_recall, 4),
        "bytes": args.out.stat().st_size,
    }
    sidecar_path(args.out).write_text(replace(sidecar, metrics=metrics).to_json())
    print(report.table())
    print(f"float accuracy {float_acc:.4f}, int8 accuracy {report.accuracy:.4f}, {metrics['bytes']} bytes -> {args.out}")
    return 0
