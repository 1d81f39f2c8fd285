"""The TFLite runtime's own "INFO: Created ... XNNPACK delegate" line never reaches the user; its errors do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgemood.inference.interpreter import Runtime, create_interpreter, without_runtime_notice

NOTICE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"


def test_only_the_notice_is_dropped() -> None:
    text = "ERROR: Didn't find op for builtin opcode 'CONV_2D'\n" + NOTICE + "INFO: something else\nno newline"
    assert without_runtime_notice(text) == "ERROR: Didn't find op for builtin opcode 'CONV_2D'\nINFO: something else\nno newline"
    assert without_runtime_notice(NOTICE + NOTICE) == ""


class Noisy:
    """Stands in for a runtime's Interpreter: writes to descriptor 2 as the C++ core does."""

    def __init__(self, model_path: str, num_threads: int) -> None:
        os.write(2, NOTICE.encode())
        os.write(2, f"ERROR: {model_path} is not a model\n".encode())

    def allocate_tensors(self) -> None:
        print("a Python warning on sys.stderr", file=sys.stderr)
        raise RuntimeError("allocation failed")


def test_errors_written_to_descriptor_2_while_building_still_arrive(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError, match="allocation failed"):
        create_interpreter(Runtime("noisy", Noisy), "x.tflite", 1)
    out, err = capfd.readouterr()
    # (under capfd, sys.stderr is pytest's buffer, not descriptor 2: the order of the two may differ)
    assert out == "" and sorted(err.splitlines()) == ["ERROR: x.tflite is not a model", "a Python warning on sys.stderr"]
    print("descriptor 2 is back", file=sys.stderr)
    assert capfd.readouterr().err == "descriptor 2 is back\n"


def test_loading_the_model_prints_nothing_on_stderr(tmp_path: Path) -> None:
    """A real command in its own process: the runtime writes to the process's descriptor 2."""
    image = tmp_path / "wall.png"
    assert cv2.imwrite(str(image), np.full((120, 160), 90, np.uint8))
    result = subprocess.run(
        [sys.executable, "-m", "edgemood", "classify", "--json", str(image)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert '"faces": []' in result.stdout
