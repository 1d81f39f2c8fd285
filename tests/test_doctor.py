"""``edgemood doctor`` against real servers: OK where things work, a fix where not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgemood.cli import main
from edgemood.commands.doctor import camera_fix
from edgemood.config import DEFAULT_PLAYLISTS, CameraConfig, Config, MpdConfig, MqttConfig, config_to_toml


def doctor(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgemood", "doctor", "-c", str(config)], capture_output=True, text=True, timeout=60
    )


def write(
    tmp_path: Path, mosquitto, mpd, mpd_port: int | None = None, playlists: dict[str, str] | None = None
) -> Path:
    frames = tmp_path / "frames"
    frames.mkdir(exist_ok=True)
    cv2.imwrite(str(frames / "0.png"), np.full((240, 320), 128, np.uint8))
    config = Config(
        camera=CameraConfig(source=f"dir:{frames}"),
        playlists={**DEFAULT_PLAYLISTS, **(playlists or {})},
        mpd=MpdConfig(host=mpd.host, port=mpd_port or mpd.port),
        mqtt=MqttConfig(host=mosquitto.host, port=mosquitto.port, device_id="doctor"),
    )
    path = tmp_path / "edgemood.toml"
    path.write_text(config_to_toml(config), encoding="utf-8")
    return path


@pytest.mark.integration
def test_all_ok(tmp_path, mosquitto, mpd):
    result = doctor(write(tmp_path, mosquitto, mpd))
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    assert [line.split()[:2] for line in lines] == [
        ["OK", "config"], ["OK", "model"], ["OK", "camera"], ["OK", "mpd"], ["OK", "broker"],
    ]


@pytest.mark.integration
def test_unreachable_mpd_and_missing_playlist_get_a_fix(tmp_path, mosquitto, mpd):
    from edgemood.demo.services import free_port

    result = doctor(write(tmp_path, mosquitto, mpd, mpd_port=free_port()))
    assert result.returncode == 1
    assert "FAIL mpd" in result.stdout and "fix: start MPD" in result.stdout
    config = write(tmp_path, mosquitto, mpd, playlists={"sad": "no-such-list"})
    result = doctor(config)
    assert result.returncode == 1 and "lacks stored playlists: no-such-list" in result.stdout


@pytest.mark.integration
def test_missing_camera_and_bad_config(tmp_path, mosquitto, mpd):
    config = write(tmp_path, mosquitto, mpd)
    config.write_text(config.read_text().replace(f"dir:{tmp_path / 'frames'}", f"dir:{tmp_path / 'nowhere'}"))
    result = doctor(config)
    assert result.returncode == 1 and "FAIL camera" in result.stdout
    config.write_text("[mood]\nsmoothing = 7\n")
    result = doctor(config)
    assert result.returncode == 2 and "FAIL config" in result.stdout and "smoothing" in result.stdout


@pytest.mark.integration
def test_a_closed_broker_port_is_refused_like_mpd(tmp_path, mosquitto, mpd):
    from edgemood.demo.services import free_port

    port = free_port()
    config = write(tmp_path, mosquitto, mpd)
    config.write_text(config.read_text().replace(f"port = {mosquitto.port}", f"port = {port}"))
    result = doctor(config)
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if line.startswith("FAIL broker")]
    assert line.endswith(f"{mosquitto.host}:{port}: [Errno 111] Connection refused"), result.stdout
    assert "fix: start mosquitto" in result.stdout


def test_without_a_config_file_it_says_the_defaults_apply(tmp_path, monkeypatch, capsys):
    """As on a machine where install.sh never ran: no file at the default path."""
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), np.full((240, 320), 128, np.uint8))
    default = tmp_path / "etc" / "edgemood.toml"
    monkeypatch.setattr("edgemood.config.DEFAULT_CONFIG_PATH", default)
    for key, value in {"CAMERA__SOURCE": f"dir:{frames}", "MPD__ENABLED": "false", "MQTT__ENABLED": "false"}.items():
        monkeypatch.setenv(f"EDGEMOOD_{key}", value)
    assert main(["doctor"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"OK   config  built-in defaults: {default} does not exist (every key is optional)"
    default.parent.mkdir()
    default.write_text("[mood]\nsmoothing = 0.4\n")
    assert main(["doctor"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"OK   config  {default}"


def test_the_camera_fix_fits_the_machine():
    on_pi = camera_fix("picamera2", True, [])
    assert "apt install python3-picamera2" in on_pi and "v4l2" not in on_pi
    elsewhere = camera_fix("picamera2", False, ["/dev/video0", "/dev/video1"])
    assert elsewhere.startswith('set [camera] source = "v4l2:/dev/video0" (found: /dev/video0 /dev/video1)')
    assert "picamera2" not in elsewhere
    assert camera_fix("picamera2", False, []).startswith('set [camera] source = "v4l2:/dev/video0" (no /dev/video* here')
    assert camera_fix("v4l2", True, ["/dev/video2"]).startswith('set [camera] source = "v4l2:/dev/video2" (found: /dev/video2)')
    assert camera_fix("file", False, []) == "check [camera] source"
