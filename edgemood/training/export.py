"""``edgemood export``: a trained checkpoint -> full-integer int8 ``.tflite`` + sidecar.

Everything is int8 (weights, activations, input and output) so the Pi runs
integer kernels only; a representative set of training crops calibrates the
activation ranges. The input quantisation is pinned to scale 1, zero point
-128 by the 0..255 representative range, so a consumer only shifts pixels.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgemood.classes import CLASSES
from edgemood.inference.sidecar import Sidecar, sidecar_path
from edgemood.training.net import EMBEDDING_LAYER, PROBABILITIES_LAYER


def inference_model(checkpoint: Path, flip_tta: bool, logit_shift: np.ndarray | None = None) -> Any:
    """Rebuild the two-output (probabilities, embedding) model from a training checkpoint.

    With ``flip_tta`` the model also sees the mirrored face and averages both
    passes: faces are near-symmetric, and averaging halves the variance for
    twice the (small) compute. ``logit_shift`` is added to the last layer's
    bias (``edgemood.training.balance``): the adjustment costs nothing per face.
    """
    import keras

    trained = keras.models.load_model(checkpoint, compile=False)
    if logit_shift is not None:
        dense = trained.get_layer(PROBABILITIES_LAYER)
        dense.bias.assign(keras.ops.convert_to_numpy(dense.bias) + np.asarray(logit_shift, np.float32))
    base = keras.Model(trained.input, [trained.output, trained.get_layer(EMBEDDING_LAYER).output])
    if not flip_tta:
        return base
    inputs = keras.Input(trained.input.shape[1:], name="pixels")
    probs, emb = base(inputs)
    probs_f, emb_f = base(keras.layers.Lambda(lambda t: keras.ops.flip(t, axis=2))(inputs))
    return keras.Model(
        inputs,
        [keras.layers.Average(name="probabilities")([probs, probs_f]), keras.layers.Average(name="embedding")([emb, emb_f])],
    )


def convert_int8(model: Any, representative: np.ndarray) -> bytes:
    """Full-integer quantisation with ``representative`` (N, S, S) uint8 crops."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved:
        # A SavedModel freezes the variables; converting a live tf.function
        # leaves READ_VARIABLE ops that int8 calibration cannot run.
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        return _quantize(converter, representative)


def _quantize(converter: Any, representative: np.ndarray) -> bytes:
    import tensorflow as tf

    size = representative.shape[1]

    def samples():
        for image in representative:
            yield [image[None, :, :, None].astype(np.float32)]
        # pin the input range to the full 0..255 so input scale is exactly 1
        yield [np.zeros((1, size, size, 1), np.float32)]
        yield [np.full((1, size, size, 1), 255.0, np.float32)]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def shift_int8_logits(tflite: bytes, shift: np.ndarray) -> bytes:
    """Add ``shift`` to the logits of an exported int8 model, in the bias of each 8-wide fully connected layer.

    For a file whose float checkpoint is gone (a model already shipped):
    the int32 bias has a scale per output channel, so adding
    ``round(shift / scale)`` is the float adjustment to within one part in
    tens of thousands. With the flip average inside the model, both passes'
    last layers are shifted.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite))
    shifted = 0
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) != schema.BuiltinOperator.FULLY_CONNECTED:
                continue
            bias = graph.tensors[op.inputs[2]]
            if list(bias.shape) != [len(shift)]:
                continue
            buffer = model.buffers[bias.buffer]
            values = np.frombuffer(bytes(buffer.data), np.int32).astype(np.int64)
            steps = np.round(np.asarray(shift, np.float64) / np.asarray(bias.quantization.scale, np.float64))
            buffer.data = np.clip(values + steps, -(2**31), 2**31 - 1).astype(np.int32).tobytes()
            shifted += 1
    if not shifted:
        raise RuntimeError(f"no fully connected layer with {len(shift)} outputs to shift")
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def output_indices(tflite: bytes, embedding_size: int) -> dict[str, int]:
    """Which output tensor is which, told apart by their widths."""
    from edgemood.inference.interpreter import find_runtime

    interpreter = find_runtime().interpreter_class(model_content=tflite)
    found = {}
    for i, detail in enumerate(interpreter.get_output_details()):
        width = int(detail["shape"][-1])
        found["probabilities" if width == len(CLASSES) else "embedding"] = i
    if set(found) != {"probabilities", "embedding"} or embedding_size == len(CLASSES):
        raise RuntimeError(f"cannot tell the outputs apart: {found}")
    return found


def export(
    checkpoint: Path,
    out: Path,
    representative: np.ndarray,
    sidecar: Sidecar,
    flip_tta: bool = True,
    logit_shift: np.ndarray | None = None,
) -> Sidecar:
    """Write ``out`` (.tflite) and its sidecar; return the sidecar written."""
    model = inference_model(checkpoint, flip_tta, logit_shift)
    embedding_size = int(model.outputs[1].shape[-1])
    tflite = convert_int8(model, representative)
    sidecar = replace(
        sidecar,
        classes=CLASSES,
        input_size=representative.shape[1],
        embedding_size=embedding_size,
        outputs=output_indices(tflite, embedding_size),
        training={**sidecar.training, "flip_tta": flip_tta},
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(tflite)
    sidecar_path(out).write_text(sidecar.to_json())
    return sidecar


def pass_probabilities(checkpoint: Path, images: np.ndarray, flip_tta: bool) -> list[np.ndarray]:
    """The float model's (N, C) probabilities per pass: the face, and its mirror image with ``flip_tta``.

    What quantisation costs and what a logit shift would do are both read
    from these (``edgemood.training.balance.adjusted`` averages the passes).
    """
    model = inference_model(checkpoint, flip_tta=False)
    x = images[..., None].astype(np.float32)
    passes = [model.predict(x, batch_size=256, verbose=0)[0]]
    if flip_tta:
        passes.append(model.predict(x[:, :, ::-1], batch_size=256, verbose=0)[0])
    return passes
