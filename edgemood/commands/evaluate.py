"""``edgemood eval``: per-class accuracy, a confusion-matrix PNG, and the robustness table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgemood.commands.train import DATA_HELP
from edgemood.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood eval``."""
    parser.add_argument("--data", type=Path, required=True, help=DATA_HELP)
    parser.add_argument("--split", default="publictest")
    parser.add_argument("--model", type=Path, default=None, help="a .tflite with its sidecar (default: the shipped model)")
    parser.add_argument("--png", type=Path, default=None, help="write the confusion matrix here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--via-detector", action="store_true", help="crop each image with the daemon's detector first")
    how.add_argument(
        "--robustness", action="store_true",
        help="score under each home-camera condition (framing, covered mouth, light, noise, blur, glasses): a Markdown table",
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate and report."""
    from edgemood.inference.model import DEFAULT_MODEL, MoodModel
    from edgemood.training.data import load_split
    from edgemood.training.evaluation import confusion_png, evaluate
    from edgemood.training.progress import progress_bar

    model = MoodModel(args.model or DEFAULT_MODEL)
    try:
        split = load_split(args.data, args.split, model.input_size)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if args.robustness:
        from edgemood.training.robustness import markdown, robustness

        rows = robustness(model, split.images, split.labels, progress=progress_bar("conditions"))
        print(json.dumps({name: report.as_dict() for name, report in rows}, indent=2) if args.json else markdown(rows))
        return 0
    report = evaluate(model, split.images, split.labels, args.via_detector, progress_bar("eval"))
    if args.png:
        confusion_png(report, str(args.png))
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.table())
    return 0
