"""The README's "run it" command works on this machine, end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_narrates_moods_mqtt_and_mpd(mosquitto, mpd):  # fixtures: skip where the servers are missing
    result = subprocess.run(
        [sys.executable, "-m", "edgemood", "demo", "--interval", "0.1"], capture_output=True, text=True, timeout=120
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "uncertain -> happy" in out and "MQTT edgemood/demo/event" in out
    assert "MPD: [playing]" in out and "upbeat" in out
    assert "-> absent" in out
    assert "availability: offline" in out and "daemon exited with 0" in out
    assert "Traceback" not in result.stderr
