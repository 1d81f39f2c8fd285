"""The daemon as systemd drives it: signals, reloads, and a network camera that never answers."""

from __future__ import annotations

import dataclasses
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import ALTERNATING, DaemonProcess, NotifySocket, daemon_config

from edgemood.config import CameraConfig, config_to_toml
from edgemood.demo.frames import write_replay
from edgemood.demo.services import LocalService
from edgemood.sinks.mqtt_topics import Topics

pytestmark = pytest.mark.integration

WATCHDOG_S = 1.0



@pytest.mark.parametrize("gap_s", [0.0, 0.01, 0.03, 0.1])
def test_a_second_sigterm_while_stopping_still_ends_cleanly(
    tmp_path: Path, replay: Path, mosquitto: LocalService, mpd: LocalService, gap_s: float
) -> None:
    with DaemonProcess(daemon_config(replay, mqtt=mosquitto, mpd=mpd, device_id="twice"), tmp_path) as daemon:
        daemon.wait_for(lambda log: "mood " in log and "MPD: playing" in log, "a first mood on the music")
        daemon.process.send_signal(signal.SIGTERM)
        time.sleep(gap_s)
        if daemon.alive():
            daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(10) == 0, daemon.log()[-2000:]
        assert daemon.log().rstrip().endswith("edgemood.daemon: stopped on SIGTERM")


def test_sighup_reloads_the_config_and_a_broken_one_is_refused(tmp_path: Path, replay: Path) -> None:
    other = tmp_path / "other-replay"
    write_replay(other, ALTERNATING)
    config = daemon_config(replay)
    with DaemonProcess(config, tmp_path / "run") as daemon:
        daemon.wait_for(lambda log: f"source dir:{replay}" in log, "the first source")
        daemon.config_path.write_text(
            config_to_toml(dataclasses.replace(config, camera=CameraConfig(source=f"dir:{other}", interval_s=0.1)))
        )
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda log: f"source dir:{other}" in log, "the reloaded source")
        daemon.wait_for(lambda log: log.count("mood ") >= 2, "moods from the reloaded pipeline")

        daemon.config_path.write_text("[mood]\nsmoothing = 7\n")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda log: "reload refused, the running configuration stays" in log, "the refusal")
        assert "[mood] smoothing = 7" in daemon.log()
        time.sleep(0.5)
        assert daemon.alive()
        assert daemon.stop() == 0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port whose server accepts connections (the kernel completes them) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_a_stream_that_never_answers_keeps_the_loop_on_time(
    tmp_path: Path, silent_server: int, mosquitto: LocalService, mqtt_messages: Callable[..., Any], scheme: str
) -> None:
    """Watchdog fed, commands answered at once and SIGTERM obeyed within 2 s, while OpenCV waits ~10 s."""
    config = daemon_config(Path("unused"), mqtt=mosquitto, device_id=f"stalled-{scheme}", interval_s=1.0)
    config = dataclasses.replace(config, camera=CameraConfig(source=f"{scheme}://127.0.0.1:{silent_server}/live"))
    topics = Topics(config.mqtt.base_topic, config.mqtt.device_id)
    watcher = mqtt_messages(topics.enabled, topics.availability)
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))}
    with NotifySocket(tmp_path / "notify.sock") as notify, DaemonProcess(config, tmp_path / "run", env=env) as daemon:
        ready = time.monotonic() + 30
        while not notify.messages("READY=1"):
            assert time.monotonic() < ready and daemon.alive(), daemon.log()
            time.sleep(0.05)
        watcher.wait_for(lambda ms: any(m.topic == topics.availability and m.payload == b"online" for m in ms))
        start = time.monotonic()
        time.sleep(6)
        sent = time.monotonic()
        watcher.publish(topics.set_enabled, "OFF")
        watcher.wait_for(lambda ms: any(m.topic == topics.enabled and m.payload == b"OFF" for m in ms), timeout=10)
        echoed_after = time.monotonic() - sent
        time.sleep(4)
        end = time.monotonic()
        pings = [start, *notify.pings_between(start, end), end]
        longest_gap = max(b - a for a, b in zip(pings, pings[1:]))
        stop_started = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        code = daemon.process.wait(10)
        stopped_after = time.monotonic() - stop_started
    assert longest_gap < 1.5 * WATCHDOG_S, f"watchdog silent for {longest_gap:.1f} s"
    assert echoed_after < 1.5, f"command echoed {echoed_after:.1f} s late"
    assert code == 0 and stopped_after < 2.0, f"SIGTERM took {stopped_after:.1f} s (exit {code})"
