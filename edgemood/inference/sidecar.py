"""The JSON file beside every ``.tflite``: what the model expects and returns.

Keeping class order, input size and crop geometry next to the weights means a
consumer needs nothing but the two files, and a mismatched pair is caught on
load instead of producing plausible nonsense.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgemood.classes import CLASSES
from edgemood.errors import ModelError

FORMAT = "edgemood-model/1"


@dataclass(frozen=True)
class CropGeometry:
    """How a detector box becomes the model's input square.

    ``scale`` is the crop side over the detector box side and ``shift_y`` moves
    the crop centre down by that many box sides. Both were measured by running
    the Haar detector on the training images, so daemon crops frame a face the
    way the training images do.
    """

    scale: float = 1.0
    shift_y: float = 0.0
    align_eyes: bool = True


@dataclass(frozen=True)
class Sidecar:
    """Validated contents of ``<model>.json``."""

    classes: tuple[str, ...]
    input_size: int
    crop: CropGeometry
    outputs: dict[str, int]
    embedding_size: int
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise with the format tag first, for humans reading the file."""
        data = {"format": FORMAT, **asdict(self)}
        data["classes"] = list(self.classes)
        data["preprocessing"] = (
            "grayscale face crop, raw pixels 0..255 (no CLAHE, no normalisation: "
            "the model rescales inside); int8 input = pixel + input zero_point "
            "(scale 1.0)"
        )
        return json.dumps(data, indent=2) + "\n"


def sidecar_path(model_path: Path) -> Path:
    """The sidecar lives next to the model with a ``.json`` suffix."""
    return model_path.with_suffix(".json")


def _require(data: dict[str, Any], key: str, kind: type, path: Path, default: Any = None) -> Any:
    """``data[key]`` if it is a ``kind``; ``default`` stands in for a missing key (None: required)."""
    value = data.get(key, default)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ModelError(f"{path}: '{key}' must be {kind.__name__}, got {value!r}")
    return value


def load_sidecar(path: Path) -> Sidecar:
    """Read and check a sidecar; any problem is a ModelError naming the key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model sidecar {path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model sidecar {path} is unreadable: {exc}") from None
    except RecursionError:
        raise ModelError(f"model sidecar {path} is unreadable: values nested too deeply") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{path}: 'format' must be {FORMAT!r}")
    classes = tuple(_require(data, "classes", list, path))
    if classes != CLASSES:
        raise ModelError(f"{path}: 'classes' must be {list(CLASSES)}, got {list(classes)}")
    size = _require(data, "input_size", int, path)
    if not 16 <= size <= 256:
        raise ModelError(f"{path}: 'input_size' must be 16..256, got {size}")
    crop = _crop(_require(data, "crop", dict, path), path)
    if not 0.5 <= crop.scale <= 2.0 or not -0.5 <= crop.shift_y <= 0.5:
        raise ModelError(f"{path}: 'crop' scale must be 0.5..2 and shift_y -0.5..0.5")
    outputs = _require(data, "outputs", dict, path)
    if set(outputs) != {"probabilities", "embedding"} or not all(
        isinstance(v, int) for v in outputs.values()
    ):
        raise ModelError(f"{path}: 'outputs' must map probabilities and embedding to indices")
    return Sidecar(
        classes=classes,
        input_size=size,
        crop=crop,
        outputs=outputs,
        embedding_size=_require(data, "embedding_size", int, path),
        metrics=_require(data, "metrics", dict, path, default={}),
        training=_require(data, "training", dict, path, default={}),
    )


def _crop(data: dict[str, Any], path: Path) -> CropGeometry:
    """The crop geometry with each field's type checked (a string or null is a damaged file)."""
    unknown = set(data) - set(CropGeometry.__dataclass_fields__)
    if unknown:
        raise ModelError(f"{path}: 'crop' has unknown keys {sorted(unknown)}")
    values: dict[str, Any] = {}
    for key, kind in (("scale", (int, float)), ("shift_y", (int, float)), ("align_eyes", bool)):
        if key not in data:
            continue
        value = data[key]
        wrong_number = kind is not bool and (isinstance(value, bool) or not isinstance(value, kind))
        if wrong_number or (kind is bool and not isinstance(value, bool)):
            raise ModelError(f"{path}: 'crop.{key}' must be {'true or false' if kind is bool else 'a number'}, got {value!r}")
        values[key] = value
    return CropGeometry(**values)
