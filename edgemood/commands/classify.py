"""``edgemood classify IMAGE...``: what the daemon would see in still images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgemood.classes import CLASSES
from edgemood.config import FACE_POLICIES, DetectConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood classify``."""
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any OpenCV-readable format)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--model", type=Path, default=None, help="a .tflite with its sidecar (default: the shipped model)")
    parser.add_argument("--faces", choices=FACE_POLICIES, default="all", help="several-faces policy (default all)")
    parser.add_argument(
        "--min-face-px", type=int, default=DetectConfig.min_face_px, help="smallest face side in pixels (default %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    """Classify each image; exit 1 if any could not be read.

    An unreadable image is reported once, on stderr; the table leaves it out,
    and the JSON keeps an entry for it (with ``error``) so every input has one.
    """
    from edgemood.inference.model import DEFAULT_MODEL, MoodModel
    from edgemood.vision.analyze import FaceAnalyzer
    from edgemood.vision.detect import DetectorSettings
    from edgemood.vision.frame import FrameError, read_image

    model = MoodModel(args.model or DEFAULT_MODEL)
    # Still images are not a stream: no downscale cap beyond 640 px, no tracking.
    analyzer = FaceAnalyzer(model, DetectorSettings(min_face_px=args.min_face_px, detect_width=640), args.faces)
    results, unreadable = [], []
    for path in args.images:
        try:
            gray = read_image(path)
        except FrameError as exc:
            print(f"edgemood classify: {exc}", file=sys.stderr)
            unreadable.append({"image": path, "error": str(exc), "faces_seen": 0, "faces": []})
            results.append(unreadable[-1])
            continue
        analyzer.detector.reset()
        analysis = analyzer.analyze(gray)
        results.append(
            {
                "image": path,
                "error": analysis.error,
                "faces_seen": analysis.seen,
                "faces": [
                    {
                        "box": list(face.box.as_ints()),
                        "roll_deg": None if face.roll_deg is None else round(face.roll_deg, 1),
                        "mood": face.mood,
                        "confidence": round(face.confidence, 4),
                        "probabilities": {c: round(float(p), 4) for c, p in zip(CLASSES, face.probabilities)},
                    }
                    for face in analysis.faces
                ],
            }
        )
    if args.json:
        print(json.dumps(results, indent=2))
    elif len(unreadable) < len(results):
        print(table([r for r in results if r not in unreadable]))
    return 1 if unreadable else 0


def table(results: list[dict]) -> str:
    """One row per face (or per image without one), a column per class under its full name."""
    header = f"{'image':30} {'box (x,y,w,h)':20} {'mood':9} {'conf':>5}  " + " ".join(f"{c:>{_width(c)}}" for c in CLASSES)
    lines = [header]
    for result in results:
        name = Path(result["image"]).name[:30]
        if result["error"]:
            lines.append(f"{name:30} error: {result['error']}")
        elif not result["faces"]:
            lines.append(f"{name:30} no face" + (f" ({result['faces_seen']} skipped)" if result["faces_seen"] else ""))
        for face in result["faces"]:
            box = ",".join(str(v) for v in face["box"])
            probs = " ".join(f"{face['probabilities'][c]:{_width(c)}.2f}" for c in CLASSES)
            lines.append(f"{name:30} {box:20} {face['mood']:9} {face['confidence']:5.2f}  {probs}")
    return "\n".join(lines)


def _width(name: str) -> int:
    """A probability column is as wide as its class name, and never narrower than 0.00."""
    return max(len(name), 4)
