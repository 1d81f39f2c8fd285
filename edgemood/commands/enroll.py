"""``edgemood enroll``: teach the daemon your own faces (the personal head)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edgemood.classes import CLASSES

if TYPE_CHECKING:
    from edgemood.config import Config
    from edgemood.mood.store import HeadStore

EPILOG = """\
For each mood you are asked to show it ("Show: happy \u2014 in 3.. 2.. 1..") and
--per-mood frames with exactly one face are taken at the [camera] interval.
The last quarter of each mood's faces is held out; a head on the model's
features is fitted on the rest and kept only if it classifies the held-out
faces better than the model alone. Moods you do not enroll keep the model's
own probabilities, so enroll every mood the model mistakes yours for (the
default is all eight). Captured faces stay in memory unless --keep-images.

Heads are stored, versioned, in <state dir>/personal/: the state dir is
$STATE_DIRECTORY (what systemd's StateDirectory=edgemood sets for the
service), else /var/lib/edgemood when writable, else ~/.local/state/edgemood.
To enroll for the installed service run it as a user that may write the
service's directory, e.g. sudo -u edgemood edgemood enroll --state-dir
/var/lib/edgemood, then restart the service. [model] personal = false makes
the daemon ignore the head.
"""


def _moods(text: str) -> list[str]:
    moods = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    unknown = [m for m in moods if m not in CLASSES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown mood(s) {', '.join(unknown)}; choose from {','.join(CLASSES)}")
    if len(moods) < 2:
        raise argparse.ArgumentTypeError("name at least two moods, e.g. happy,neutral")
    return moods


def _per_mood(text: str) -> int:
    from edgemood.mood.fit import MIN_FACES_PER_MOOD

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not MIN_FACES_PER_MOOD <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be a whole number from {MIN_FACES_PER_MOOD} to 1000, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood enroll``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("-c", "--config", type=Path, default=None, help="TOML config: [camera], [detect], [model] as for run")
    parser.add_argument("--per-mood", type=_per_mood, default=20, metavar="N", help="faces to capture per mood (default 20)")
    parser.add_argument(
        "--moods", type=_moods, default=None, metavar="LIST",
        help="comma-separated moods to enroll (default all eight, or the replay folder's)",
    )
    parser.add_argument(
        "--replay", type=Path, default=None, metavar="DIR",
        help="use frames from DIR/<mood>/ instead of the camera",
    )
    parser.add_argument("--keep-images", action="store_true", help="also save the face crops under the state dir")
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR", help="where heads are stored (see below)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--rollback", action="store_true", help="go back to the previous personal head")
    action.add_argument("--list", action="store_true", help="list the stored personal heads (* = in use)")


def run(args: argparse.Namespace) -> int:
    """Enroll, roll back or list; exit 0 also when the new head is not kept."""
    from edgemood.config import load_config

    config = load_config(args.config)
    from edgemood.mood.store import HeadStore, default_state_dir

    store = HeadStore(args.state_dir or default_state_dir())
    if args.list:
        from edgemood.mood.enroll import format_versions

        print(format_versions(store.versions(), store.folder))
        return 0
    if args.rollback:
        restored, replaced = store.rollback()
        was = f" instead of the one from {replaced.when}" if replaced else ""
        print(f"personal head from {restored.when} is in use again{was}; restart the daemon to apply it")
        return 0
    return _enroll(args, config, store)


def _enroll(args: argparse.Namespace, config: Config, store: HeadStore) -> int:
    """Capture (camera or replay), fit, report; the head is saved only if better."""
    from edgemood.inference.model import MoodModel, configured_model_path
    from edgemood.mood.enroll import capture_live, capture_replay, enroll, format_outcome, replay_folders
    from edgemood.mood.head import model_identity
    from edgemood.sources.devices import open_camera
    from edgemood.vision.analyze import FaceAnalyzer
    from edgemood.vision.detect import configured_settings

    folders = replay_folders(args.replay, args.moods) if args.replay else None
    model = MoodModel(configured_model_path(config.model.path), config.model.threads)
    analyzer = FaceAnalyzer(model, configured_settings(config.detect), "skip")  # frames with several faces do not count
    if folders:
        captures = capture_replay(folders, args.per_mood, analyzer, sys.stdout)
    else:
        source = open_camera(config.camera)
        try:
            captures = capture_live(
                source, args.moods or CLASSES, args.per_mood, analyzer, config.camera.interval_s, sys.stdout
            )
        finally:
            source.close()
    identity = model_identity(model.path, model.sidecar.embedding_size)
    outcome = enroll(captures, identity, store, datetime.now(UTC), args.keep_images)
    print(format_outcome(outcome))
    if outcome.saved:
        print("restart the daemon to use it" + ("" if config.model.personal else " and set [model] personal = true"))
    return 0
