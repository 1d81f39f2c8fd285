"""``edgemood classify IMAGE...``: what the daemon would see in still images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgemood.classes import CLASSES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood classify``."""
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any OpenCV-readable format)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--model", type=Path, default=None, help="a .tflite with its sidecar (default: the shipped model)")
    parser.add_argument("--faces", choices=["all", "largest", "skip"], default="all", help="several-faces policy (default all)")
    parser.add_argument("--min-face-px", type=int, default=48, help="smallest face side in pixels (default 48)")


def run(args: argparse.Namespace) -> int:
    """Classify each image; exit 1 if any could not be read."""
    from edgemood.inference.model import DEFAULT_MODEL, MoodModel
    from edgemood.vision.analyze import FaceAnalyzer
    from edgemood.vision.detect import DetectorSettings
    from edgemood.vision.frame import FrameError, read_image

    model = MoodModel(args.model or DEFAULT_MODEL)
    # Still images are not a stream: no downscale cap beyond 640 px, no tracking.
    analyzer = FaceAnalyzer(model, DetectorSettings(min_face_px=args.min_face_px, detect_width=640), args.faces)
    results, failed = [], 0
    for path in args.images:
        try:
            gray = read_image(path)
        except FrameError as exc:
            print(f"edgemood classify: {exc}", file=sys.stderr)
            failed += 1
            results.append({"image": path, "error": str(exc), "faces": []})
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
    print(json.dumps(results, indent=2) if args.json else _table(results))
    return 1 if failed else 0


def _table(results: list[dict]) -> str:
    header = f"{'image':30} {'box (x,y,w,h)':20} {'mood':9} {'conf':>5}  " + " ".join(f"{c[:5]:>5}" for c in CLASSES)
    lines = [header]
    for result in results:
        name = Path(result["image"]).name[:30]
        if result["error"]:
            lines.append(f"{name:30} error: {result['error']}")
        elif not result["faces"]:
            lines.append(f"{name:30} no face" + (f" ({result['faces_seen']} skipped)" if result.get("faces_seen") else ""))
        for face in result["faces"]:
            box = ",".join(str(v) for v in face["box"])
            probs = " ".join(f"{face['probabilities'][c]:5.2f}" for c in CLASSES)
            lines.append(f"{name:30} {box:20} {face['mood']:9} {face['confidence']:5.2f}  {probs}")
    return "\n".join(lines)
