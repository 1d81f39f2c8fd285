"""``edgemood run`` end to end: replayed photos -> real mosquitto and real MPD."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mpd import MPDClient

from edgemood.config import CameraConfig, Config, MoodConfig, MpdConfig, MqttConfig, config_to_toml
from edgemood.demo.frames import Scene, write_replay

pytestmark = pytest.mark.integration

SCENES = (Scene("astronaut", 12), Scene("nobody", 12), Scene("astronaut", 8))


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("replay")
    write_replay(folder, SCENES)
    return folder


def write_config(path: Path, replay: Path, mosquitto, mpd, device_id: str, loop: bool) -> Path:
    config = Config(
        camera=CameraConfig(source=f"dir:{replay}", interval_s=0.1, loop=loop),
        mood=MoodConfig(min_dwell_s=0.3, absent_after_s=0.5),
        mpd=MpdConfig(host=mpd.host, port=mpd.port, crossfade_s=0, shuffle=False),
        mqtt=MqttConfig(host=mosquitto.host, port=mosquitto.port, device_id=device_id, stats_interval_s=1),
    )
    path.write_text(config_to_toml(config), encoding="utf-8")
    return path


def start(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edgemood", "run", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def stop(process: subprocess.Popen) -> tuple[int, float, str]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=10)
    return process.returncode, time.monotonic() - started, err


def mpd_playing(mpd) -> tuple[str, list[str]]:
    client = MPDClient()
    client.connect(mpd.host, mpd.port)
    try:
        return client.status()["state"], [song["file"] for song in client.playlistinfo()]
    finally:
        client.disconnect()


def test_moods_reach_mqtt_and_mpd_and_stop_leaves_offline(tmp_path, mosquitto, mpd, replay, mqtt_messages):
    base = "edgemood/itest1"
    log = mqtt_messages(f"{base}/#", "homeassistant/device/itest1/config")
    process = start(write_config(tmp_path / "c.toml", replay, mosquitto, mpd, "itest1", loop=False))
    try:
        events = log.wait_for(lambda m: sum(x.topic == f"{base}/event" for x in m) >= 3, timeout=30)
        moods = [json.loads(m.payload)["to"] for m in events if m.topic == f"{base}/event"]
        assert moods[:3] == ["happy", "absent", "happy"]
        first = json.loads(log.on(f"{base}/event")[0].payload)
        assert first["playlist"] == "upbeat" and first["from"] == "uncertain" and first["at"].endswith("Z")
        state, queue = mpd_playing(mpd)
        assert state == "play" and queue and all("upbeat" in f for f in queue)
        assert log.on(f"{base}/availability")[0].payload == b"online"
        discovery = json.loads(log.on("homeassistant/device/itest1/config")[-1].payload)
        assert {c["p"] for c in discovery["cmps"].values()} >= {"sensor", "binary_sensor", "event", "switch", "select"}
    finally:
        code, seconds, err = stop(process)
    assert code == 0 and seconds < 2.0, err
    assert "Traceback" not in err
    retained = mqtt_messages(f"{base}/availability", f"{base}/mood")
    retained.wait_for(lambda m: len(m) >= 2)
    assert retained.on(f"{base}/availability")[0].payload == b"offline"
    assert json.loads(retained.on(f"{base}/mood")[0].payload)["mood"] == "happy"


def test_set_enabled_pauses_and_resumes_detection(tmp_path, mosquitto, mpd, replay, mqtt_messages):
    base = "edgemood/itest2"
    log = mqtt_messages(f"{base}/stats", f"{base}/enabled")
    process = start(write_config(tmp_path / "c.toml", replay, mosquitto, mpd, "itest2", loop=True))
    try:
        log.wait_on(f"{base}/stats", 1, timeout=15)
        log.publish(f"{base}/set/enabled", "OFF")
        log.wait_for(lambda m: any(x.topic == f"{base}/enabled" and x.payload == b"OFF" for x in m))
        time.sleep(1.2)  # let the stats window that was open when we paused close
        paused_at = len(log.on(f"{base}/stats"))
        log.wait_on(f"{base}/stats", paused_at + 2, timeout=5)
        frames = [json.loads(m.payload)["frames"] for m in log.on(f"{base}/stats")[paused_at - 1 :]]
        assert len(set(frames)) == 1, frames  # no frame analysed while paused
        log.publish(f"{base}/set/enabled", "ON")
        log.wait_for(lambda m: json.loads(m[-1].payload).get("frames", 0) > frames[-1] if m[-1].topic.endswith("stats") else False, timeout=5)
    finally:
        code, _, err = stop(process)
    assert code == 0, err


def test_bad_config_is_one_line_and_exit_2(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[mood]\nenter_threshold = 1.5\n")
    result = subprocess.run([sys.executable, "-m", "edgemood", "run", "-c", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "enter_threshold" in lines[0] and "Traceback" not in result.stderr
