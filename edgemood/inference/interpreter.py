"""Find a TFLite interpreter among the runtimes that may be installed.

``ai-edge-litert`` is the maintained runtime (wheels for Python 3.11-3.13 on
aarch64 and x86_64, numpy 2); ``tflite-runtime`` stopped at 2.14 and breaks
under numpy 2, so it is only a fallback; full TensorFlow works but costs a
second of import time and hundreds of MB, so it comes last.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from edgemood.errors import ModelError

#: (module, attribute holding the Interpreter class, pip package to install).
RUNTIMES: tuple[tuple[str, str, str], ...] = (
    ("ai_edge_litert.interpreter", "Interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "Interpreter", "tflite-runtime"),
    ("tensorflow.lite", "Interpreter", "tensorflow"),
)


@dataclass(frozen=True)
class Runtime:
    """The interpreter class that was found and where it came from."""

    module: str
    interpreter_class: Any


def find_runtime(candidates: tuple[tuple[str, str, str], ...] = RUNTIMES) -> Runtime:
    """Return the first importable runtime, or explain what to install."""
    failures = []
    for module_name, attribute, package in candidates:
        try:
            module = importlib.import_module(module_name)
            return Runtime(module_name, getattr(module, attribute))
        except Exception as exc:  # ImportError, or a broken wheel (numpy ABI)
            failures.append(f"{package}: {type(exc).__name__}: {exc}".splitlines()[0])
    raise ModelError(
        "no TFLite runtime could be imported; install one with "
        "'pip install ai-edge-litert' (" + "; ".join(failures) + ")"
    )
