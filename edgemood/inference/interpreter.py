"""Find a TFLite interpreter among the runtimes that may be installed.

``ai-edge-litert`` is the maintained runtime (wheels for Python 3.11-3.13 on
aarch64 and x86_64, numpy 2); ``tflite-runtime`` stopped at 2.14 and breaks
under numpy 2, so it is only a fallback; full TensorFlow works but costs a
second of import time and hundreds of MB, so it comes last.

The runtimes' C++ core announces ``INFO: Created TensorFlow Lite XNNPACK
delegate for CPU.`` on stderr whenever an interpreter is built, and no
environment variable silences it (``TF_CPP_MIN_LOG_LEVEL`` does not reach
LiteRT's logger). ``create_interpreter`` therefore catches what file
descriptor 2 receives while it builds one and passes every other line on:
a real error from the runtime still reaches the user.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from edgemood.errors import ModelError

#: (module, attribute holding the Interpreter class, pip package to install).
RUNTIMES: tuple[tuple[str, str, str], ...] = (
    ("ai_edge_litert.interpreter", "Interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "Interpreter", "tflite-runtime"),
    ("tensorflow.lite", "Interpreter", "tensorflow"),
)

#: The runtime's own notice that it uses its default CPU delegate: not news to a user.
RUNTIME_NOTICE = re.compile(r"INFO: Created TensorFlow Lite (XNNPACK )?delegate for CPU\.")


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


def without_runtime_notice(text: str) -> str:
    """``text`` less the lines that are the runtime's delegate notice."""
    return "".join(line for line in text.splitlines(keepends=True) if not RUNTIME_NOTICE.fullmatch(line.rstrip("\r\n")))


@contextmanager
def _runtime_notice_filtered() -> Iterator[None]:
    """Catch file descriptor 2 for the duration; re-emit all of it but the notice.

    Other threads' stderr output in that window is delayed, not lost. Where
    descriptor 2 is not open there is nothing to filter.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            rest = without_runtime_notice(caught.read().decode(errors="replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


def create_interpreter(runtime: Runtime, model_path: str, threads: int) -> Any:
    """An interpreter with its tensors allocated (which is when the runtime applies its delegate)."""
    with _runtime_notice_filtered():
        interpreter = runtime.interpreter_class(model_path=model_path, num_threads=threads)
        interpreter.allocate_tensors()
    return interpreter
