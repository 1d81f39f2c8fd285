"""What the tests do when a server or tool they need is not installed.

On a developer's machine the test is skipped with the reason. Under CI
(``CI`` set, as every CI service does) it fails: there, a missing server means
the install step broke, and a run of skips must not turn green.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    """True where a CI service runs the tests (``CI=true``, ``CI=1``, ...)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Skip for ``reason``, or fail under CI."""
    if under_ci():
        pytest.fail(f"{reason} (CI is set: a missing server or tool means a broken install)", pytrace=False)
    pytest.skip(reason)
