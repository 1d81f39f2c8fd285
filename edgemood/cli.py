"""``edgemood`` command line: one sub-command per module in ``edgemood.commands``.

Each command module offers ``add_arguments(parser)`` and ``run(args) -> int``
and is imported only when chosen, so ``edgemood classify`` never pays for
TensorFlow and ``edgemood run`` never for the training code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from edgemood import __version__
from edgemood.errors import EdgemoodError
from edgemood.platform.logsetup import setup_logging

#: name -> one-line help; the module is edgemood.commands.<name>.
COMMANDS: dict[str, str] = {
    "run": "the daemon: camera -> mood -> MPD and MQTT (what the systemd unit starts)",
    "demo": "the whole pipeline on replayed photos with a throw-away MPD and MQTT broker",
    "doctor": "check config, camera, model, MPD and broker one by one",
    "classify": "face boxes, class probabilities and the mood of image files",
    "train": "train the mood CNN on an image-folder dataset (extra [train])",
    "eval": "per-class accuracy and confusion matrix of a .tflite model",
    "export": "convert a training checkpoint to a full-integer int8 .tflite (extra [train])",
    "enroll": "capture your own faces per mood and fit a personal head (--rollback, --list)",
    "playlists": "the mood -> playlist mapping on MPD; --create builds missing playlists from genre tags",
}
MODULES = {"eval": "evaluate"}


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (its default), never a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The full parser; command modules are imported to add their options."""
    parser = _Parser(prog="edgemood", description="Plays music to fit the mood on the face in front of the camera.")
    parser.add_argument("--version", action="version", version=f"edgemood {__version__}")
    parser.add_argument(
        "--log-level", default=None, choices=["debug", "info", "warning", "error"], help="override [log] level"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        module = importlib.import_module(f"edgemood.commands.{MODULES.get(name, name)}")
        command = sub.add_parser(name, help=summary, description=summary)
        module.add_arguments(command)
        command.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn known failures into one line."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level or "info")  # `run` re-applies [log] level once the config is read
    try:
        return int(args._module.run(args) or 0)
    except EdgemoodError as exc:
        print(f"edgemood {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
