"""``edgemood train``: reproduce the shipped model's training run."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from edgemood.errors import EdgemoodError, UsageError

#: ``--data`` of train, eval and export: required, as no dataset comes with edgemood.
DATA_HELP = "dataset root with <split>/<class>/*.png (the shipped model used FERPlus: models/MODEL_CARD.md)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood train`` (defaults are the shipped model's recipe)."""
    parser.add_argument("--data", type=Path, required=True, help=DATA_HELP)
    parser.add_argument("--out", type=Path, default=Path("runs/fer8"), help="run folder: checkpoints, log.jsonl, recipe.json")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (cosine schedule)")
    parser.add_argument("--width", type=int, default=32, help="channels of the first layer; the net doubles them per stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-per-class", type=int, default=None, help="use at most N images per class (smoke tests)")
    parser.add_argument(
        "--teacher", type=Path, default=None, metavar="MODEL.tflite",
        help="distil: mix this model's probabilities into the targets (the shipped model, or a bigger one)",
    )
    parser.add_argument("--teacher-weight", type=float, default=0.5, help="share of the teacher in the targets, 0..1")
    parser.add_argument(
        "--augment", choices=("detector", "camera"), default="detector",
        help="detector: the shipped model's jitter (default); camera: v2's, with light, blur, noise, glasses and a covered mouth",
    )
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow threads (1 runs two seeds side by side on two cores)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last.keras with the run's stored recipe")
    parser.add_argument(
        "--anneal-epochs", type=int, default=None, metavar="K",
        help="with --resume: decay the learning rate from where it stands to 0 over K more epochs (finish a run early)",
    )


def run(args: argparse.Namespace) -> int:
    """Train and print the best validation accuracy."""
    if args.epochs < 1 or args.batch < 1:
        raise UsageError("--epochs and --batch must be at least 1")
    if not 0.0 <= args.teacher_weight <= 1.0:
        raise UsageError("--teacher-weight must be between 0 and 1")
    if args.teacher is not None and not args.teacher.is_file():
        raise UsageError(f"--teacher {args.teacher}: no such file")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be at least 1")
    if args.anneal_epochs is not None and (not args.resume or args.anneal_epochs < 1):
        raise UsageError("--anneal-epochs needs --resume and a value of at least 1")
    try:
        from edgemood.training.augment import PRESETS
        from edgemood.training.train import Recipe, train
    except ImportError as exc:
        raise EdgemoodError(f"training needs the [train] extra: pip install 'edgemood[train]' ({exc})") from None
    recipe = Recipe(
        data=str(args.data), epochs=args.epochs, batch=args.batch, lr=args.lr, width=args.width,
        seed=args.seed, limit_per_class=args.limit_per_class,
        teacher=str(args.teacher) if args.teacher else None, teacher_weight=args.teacher_weight,
        augment=asdict(PRESETS[args.augment]),
    )
    try:
        result = train(recipe, args.out, resume=args.resume, anneal_epochs=args.anneal_epochs, threads=args.threads)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    print(f"best validation accuracy {result['best_val_acc']:.4f}; checkpoints in {result['out']}")
    return 0
