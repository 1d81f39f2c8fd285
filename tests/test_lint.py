"""The code base passes ``ruff check`` with the rules in pyproject.toml.

A test rather than a separate CI step, so that the one test command of the
README checks style too; without ruff installed (the ``[dev]`` extra) it skips,
and fails under CI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from needs import missing

ROOT = Path(__file__).resolve().parent.parent


def ruff_command() -> list[str]:
    """ruff next to this Python (a venv's bin/), else the one on PATH."""
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("ruff")
    if found is None:
        missing("ruff is not installed (pip install -e '.[dev]')")
    return [found]


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        [*ruff_command(), "check", "--no-cache", "edgemood", "tests", "scripts"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
