"""Build an ``edgemood enroll --replay`` folder from FERPlus publictest faces.

The model card reports what enrollment gains with the shipped model's
embedding on held-out faces; this makes the replay it is measured on:

    python scripts/enroll_replay.py /tmp/replay --moods anger,fear,neutral,sad --per-mood 60
    edgemood enroll --replay /tmp/replay --per-mood 60 --state-dir /tmp/enroll-state

Each mood folder gets the first ``--per-mood`` publictest faces of that mood,
padded and upscaled as ``edgemood eval --via-detector`` frames them, so the
detector finds them as it would a face in a camera frame. They are many
people, not one: the figure is what a head fitted on a few dozen faces does
to faces it did not see, not a personal gain. Frames are written only where
the command says, and never committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from edgemood.classes import CLASSES
from edgemood.training.data import load_split
from edgemood.training.evaluation import detector_frame


def main() -> None:
    """Write ``<out>/<mood>/NNNN.png`` frames."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/datasets/ferplus")
    parser.add_argument("--moods", default="anger,fear,neutral,sad")
    parser.add_argument("--per-mood", type=int, default=60)
    args = parser.parse_args()
    moods = args.moods.split(",")
    unknown = sorted(set(moods) - set(CLASSES))
    if unknown:
        parser.error(f"--moods: not a mood: {', '.join(unknown)}")
    split = load_split(args.data, "publictest")
    for mood in moods:
        folder = args.out / mood
        folder.mkdir(parents=True, exist_ok=True)
        chosen = [i for i, label in enumerate(split.labels) if CLASSES[label] == mood][: args.per_mood]
        for k, i in enumerate(chosen):
            cv2.imwrite(str(folder / f"{k:04d}.png"), detector_frame(split.images[i]))
    print(f"{len(moods)} moods, up to {args.per_mood} frames each, in {args.out}")


if __name__ == "__main__":
    main()
