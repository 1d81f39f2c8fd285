"""``edgemood doctor`` against real servers: OK where things work, a fix where not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.integration


def doctor(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgemood", "doctor", "-c", str(config)], capture_output=True, text=True, timeout=60
    )


def write(tmp_path: Path, mosquitto, mpd, mpd_port: int | None = None, extra: str = "") -> Path:
    frames = tmp_path / "frames"
    frames.mkdir(exist_ok=True)
    cv2.imwrite(str(frames / "0.png"), np.full((240, 320), 128, np.uint8))
    config = tmp_path / "edgemood.toml"
    config.write_text(
        f'[camera]\nsource = "dir:{frames}"\n'
        f'[mpd]\nhost = "{mpd.host}"\nport = {mpd_port or mpd.port}\n'
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\ndevice_id = "doctor"\n{extra}'
    )
    return config


def test_all_ok(tmp_path, mosquitto, mpd):
    result = doctor(write(tmp_path, mosquitto, mpd))
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    assert [line.split()[:2] for line in lines] == [
        ["OK", "config"], ["OK", "model"], ["OK", "camera"], ["OK", "mpd"], ["OK", "broker"],
    ]


def test_unreachable_mpd_and_missing_playlist_get_a_fix(tmp_path, mosquitto, mpd):
    from edgemood.services import free_port

    result = doctor(write(tmp_path, mosquitto, mpd, mpd_port=free_port()))
    assert result.returncode == 1
    assert "FAIL mpd" in result.stdout and "fix: start MPD" in result.stdout
    config = write(tmp_path, mosquitto, mpd, extra='[playlists]\nsad = "no-such-list"\n')
    result = doctor(config)
    assert result.returncode == 1 and "lacks stored playlists: no-such-list" in result.stdout


def test_missing_camera_and_bad_config(tmp_path, mosquitto, mpd):
    config = write(tmp_path, mosquitto, mpd)
    config.write_text(config.read_text().replace(f"dir:{tmp_path / 'frames'}", f"dir:{tmp_path / 'nowhere'}"))
    result = doctor(config)
    assert result.returncode == 1 and "FAIL camera" in result.stdout
    config.write_text("[mood]\nsmoothing = 7\n")
    result = doctor(config)
    assert result.returncode == 2 and "FAIL config" in result.stdout and "smoothing" in result.stdout
