"""A missing server fails the run under CI and skips elsewhere (see tests/needs.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed"), ("", "1 skipped")], ids=["CI", "developer"])
def test_a_missing_server_fails_under_ci_and_skips_elsewhere(tmp_path: Path, ci: str, outcome: str) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text("from needs import missing\n\ndef test_needs_a_server():\n    missing('needs a local frobd')\n")
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(TESTS)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(probe)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
