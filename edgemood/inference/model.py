"""The shipped mood classifier: a face crop in, eight probabilities out."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from edgemood.errors import ModelError
from edgemood.inference.interpreter import Runtime, create_interpreter, find_runtime
from edgemood.inference.sidecar import Sidecar, load_sidecar, sidecar_path

#: The model shipped with the package (``models/`` in the source tree,
#: installed as ``edgemood.models``), used when the config names none.
DEFAULT_MODEL = Path(str(resources.files("edgemood.models") / "edgemood-fer8-int8.tflite"))


def configured_model_path(configured: str) -> Path:
    """The model ``[model] path`` means: that file, or the shipped model when it is ``""``."""
    return Path(configured) if configured else DEFAULT_MODEL


@dataclass(frozen=True)
class Prediction:
    """Class probabilities (sidecar order) and the penultimate embedding."""

    probabilities: np.ndarray
    embedding: np.ndarray


@dataclass(frozen=True)
class _Quant:
    scale: float
    zero_point: int


def _quant(detail: dict) -> _Quant:
    scale, zero_point = detail["quantization"]
    return _Quant(float(scale) or 1.0, int(zero_point))


class MoodModel:
    """A full-int8 TFLite model plus its sidecar.

    Quantisation happens here so callers deal in uint8 pixels and float
    probabilities only.
    """

    def __init__(self, path: Path = DEFAULT_MODEL, threads: int = 1, runtime: Runtime | None = None):
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        self.path = path
        self.sidecar: Sidecar = load_sidecar(sidecar_path(path))
        self.runtime = runtime or find_runtime()
        try:
            self._interpreter = create_interpreter(self.runtime, str(path), threads)
        except Exception as exc:  # the runtimes raise ValueError/RuntimeError variously
            raise ModelError(f"model file {path} could not be loaded: {exc}") from None
        self._check_shapes()

    def _check_shapes(self) -> None:
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        size = self.sidecar.input_size
        if len(inputs) != 1 or tuple(inputs[0]["shape"]) != (1, size, size, 1):
            raise ModelError(
                f"{self.path}: input shape {' and '.join('x'.join(map(str, d['shape'])) for d in inputs)} "
                f"does not match the sidecar's {size}x{size}x1"
            )
        if inputs[0]["dtype"] != np.int8:
            raise ModelError(f"{self.path}: input must be int8, got {inputs[0]['dtype']}")
        expected = {
            "probabilities": len(self.sidecar.classes),
            "embedding": self.sidecar.embedding_size,
        }
        for name, index in self.sidecar.outputs.items():
            if not 0 <= index < len(outputs) or outputs[index]["shape"][-1] != expected[name]:
                raise ModelError(f"{self.path}: output '{name}' does not match the sidecar")
        self._input = inputs[0]
        self._input_quant = _quant(inputs[0])
        self._outputs = {name: outputs[i] for name, i in self.sidecar.outputs.items()}

    @property
    def input_size(self) -> int:
        """Side of the square grayscale crop the model takes."""
        return self.sidecar.input_size

    def quantize_input(self, crop: np.ndarray) -> np.ndarray:
        """uint8 pixels -> the int8 tensor, resizing if the crop is another size."""
        size = self.input_size
        if crop.shape[:2] != (size, size):
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        q = np.round(crop.astype(np.float32) / self._input_quant.scale) + self._input_quant.zero_point
        return np.clip(q, -128, 127).astype(np.int8).reshape(1, size, size, 1)

    def _output(self, name: str) -> np.ndarray:
        detail = self._outputs[name]
        q = _quant(detail)
        raw = self._interpreter.get_tensor(detail["index"])[0]
        return (raw.astype(np.float32) - q.zero_point) * q.scale

    def predict(self, crop: np.ndarray) -> Prediction:
        """Classify one grayscale uint8 crop (any size; resized to the input)."""
        self._interpreter.set_tensor(self._input["index"], self.quantize_input(crop))
        self._interpreter.invoke()
        probs = self._output("probabilities")
        total = float(probs.sum())
        if total > 0:  # int8 softmax rounding leaves the sum a little off 1
            probs = probs / total
        return Prediction(probs, self._output("embedding"))
