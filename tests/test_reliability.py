"""Months on a Pi: the daemon against broker and MPD outages, camera faults and bad input.

Real mosquitto and MPD processes on localhost ports, started and stopped by
the tests; the daemon runs as ``edgemood run`` in a child process (in-process
only where a broken camera has to be injected). What was tried and the
figures measured are in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from daemon_harness import (
    DaemonProcess,
    NotifySocket,
    cpu_share,
    daemon_config,
)
from mpd import MPDClient, MPDError
from needs import missing
from polling import wait_until
from test_config import BROKEN_FILES

from edgemood import cli
from edgemood.demo.services import LocalService, ServiceError
from edgemood.inference.model import DEFAULT_MODEL
from edgemood.inference.sidecar import sidecar_path
from edgemood.sinks.mqtt_topics import Topics

pytestmark = pytest.mark.integration



def private(start: Callable[..., LocalService], *args: Any, **kwargs: Any) -> LocalService:
    """A server of the test's own, which it may stop and restart."""
    try:
        return start(*args, **kwargs)
    except ServiceError as exc:
        missing(f"needs a local server: {exc}")


# -- broker outage -----------------------------------------------------------------------

OUTAGE_S = 30.0
#: paho's reconnect backoff doubles up to 30 s ([mqtt] reconnects with reconnect_delay_set(1, 30)),
#: so after a 30 s outage the next attempt may be up to 30 s away.
RECONNECT_WITHIN_S = 45.0


def event_pairs(messages: list[Any], topic: str) -> list[tuple[str, str]]:
    documents = [json.loads(m.payload) for m in messages if m.topic == topic and not m.dup]
    return [(d["from"], d["to"]) for d in documents]


@pytest.mark.timeout(180)
def test_broker_outage_loses_no_event(tmp_path: Path, replay: Path, mqtt_messages: Callable[..., Any]) -> None:
    from edgemood.demo.services.mosquitto import start_mosquitto

    # Persistence keeps the test subscriber's session (and what is queued for it) across
    # the restart, so anything missing afterwards was lost by the daemon, not by the test.
    workdir = tmp_path / "broker"
    broker = private(start_mosquitto, workdir, extra_conf=f"persistence true\npersistence_location {workdir}/")
    config = daemon_config(replay, mqtt=broker, device_id="outage")
    topics = Topics(config.mqtt.base_topic, config.mqtt.device_id)
    watcher = mqtt_messages(topics.event, topics.availability, topics.enabled, broker=broker, session="outage-watcher")
    with broker, DaemonProcess(config, tmp_path / "run") as daemon:
        watcher.wait_for(lambda ms: len(event_pairs(ms, topics.event)) >= 2, timeout=30)

        broker.stop()
        down_at = time.monotonic()
        before = len(daemon.mood_changes())
        daemon.wait_for(lambda log: "MQTT: lost the broker" in log, "disconnect noticed")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        made_while_away = len(daemon.mood_changes()) - before
        assert made_while_away >= 10, f"only {made_while_away} mood changes during the outage"
        received_before = len(watcher.messages)
        broker.restart()
        back_at = time.monotonic()

        daemon.wait_for(lambda log: log.count("MQTT: connected to") >= 2, "reconnect", timeout=RECONNECT_WITHIN_S)
        reconnected_after = time.monotonic() - back_at
        # ``online`` is back (and the watcher, which gets it, is connected again too).
        watcher.wait_for(
            lambda ms: any(m.topic == topics.availability and m.payload == b"online" for m in ms[received_before:])
        )
        # Commands work again (the daemon re-subscribed): pause detection, which also
        # freezes the mood so the daemon's log and the broker's account can be compared.
        watcher.publish(topics.set_enabled, "OFF")
        watcher.wait_for(
            lambda ms: any(m.topic == topics.enabled and m.payload == b"OFF" for m in ms[received_before:]), timeout=10
        )
        logged = daemon.mood_changes()
        received = watcher.wait_for(lambda ms: len(event_pairs(ms, topics.event)) >= len(logged), timeout=10)

        # Every change the daemon made arrived, once and in order: nothing lost.
        arrived = event_pairs(received, topics.event)
        lost = len(logged) - len(arrived)
        assert lost == 0 and arrived == logged, f"lost {lost}; logged {logged}, arrived {arrived}"
        events = [json.loads(m.payload) for m in received if m.topic == topics.event and not m.dup]
        assert [e["at"] for e in events] == sorted(e["at"] for e in events)

        # A fresh subscriber sees the current retained state, not the one from before the outage.
        fresh = mqtt_messages(topics.availability, topics.mood, topics.stats, broker=broker)
        fresh.wait_for(lambda ms: {m.topic for m in ms} >= {topics.availability, topics.mood, topics.stats})
        assert fresh.on(topics.availability)[-1].payload == b"online"
        assert json.loads(fresh.on(topics.mood)[-1].payload)["since"] == events[-1]["at"]
        stats = json.loads(fresh.wait_on(topics.stats, 2)[-1].payload)["mqtt"]
        assert (stats["dropped"], stats["queued"], stats["reconnects"]) == (0, 0, 1), stats
        assert daemon.stop() == 0
    print(
        f"broker outage {OUTAGE_S:.0f} s: {made_while_away} changes made while away, {len(logged)} in all, "
        f"lost {lost}; reconnected {reconnected_after:.1f} s after the broker was back"
    )


# -- MPD outage --------------------------------------------------------------------------


def playing(server: LocalService) -> tuple[str, list[str]]:
    """MPD's player state and queue, or ("down", []) while it does not answer."""
    client = MPDClient()
    client.timeout = 2
    try:
        client.connect(server.host, server.port)
        try:
            return client.status()["state"], [song["file"] for song in client.playlistinfo()]
        finally:
            client.disconnect()
    except (OSError, MPDError):  # refused, or cut off while it stops or starts
        return "down", []


def plays(server: LocalService, playlist: str) -> bool:
    state, queue = playing(server)
    return state == "play" and bool(queue) and all(f.startswith(f"{playlist}-") for f in queue)


#: Most CPU the daemon may use while it waits for MPD with detection paused (of one core).
IDLE_CPU_LIMIT = 0.05


@pytest.mark.timeout(120)
def test_mpd_outage_reconnects_and_plays_again_without_busy_waiting(
    tmp_path: Path, replay: Path, mosquitto: LocalService, mqtt_messages: Callable[..., Any]
) -> None:
    from edgemood.demo.services.mpd import start_mpd

    server = private(start_mpd, tmp_path / "mpd")
    config = daemon_config(replay, mqtt=mosquitto, mpd=server, device_id="mpdoutage")
    topics = Topics(config.mqtt.base_topic, config.mqtt.device_id)
    commands = mqtt_messages(topics.enabled)
    watchdog = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"}
    with server, NotifySocket(tmp_path / "notify.sock") as notify, DaemonProcess(config, tmp_path / "run", watchdog) as daemon:
        wait_until(lambda: plays(server, "upbeat"), "MPD playing the happy playlist", timeout=30)
        commands.wait_for(lambda ms: any(m.payload == b"ON" for m in ms))  # connected and subscribed
        # Detection paused: what is left is the daemon waiting, which is what we measure.
        commands.publish(topics.set_enabled, "OFF")
        commands.wait_for(lambda ms: any(m.payload == b"OFF" for m in ms))
        with_mpd = cpu_share(daemon.pid, 5.0)

        server.process.kill()  # no goodbye: as when MPD crashes
        server.process.wait()
        daemon.wait_for(lambda log: "lost the connection to MPD" in log, "MPD loss noticed")
        down_from = time.monotonic()
        without_mpd = cpu_share(daemon.pid, 8.0)
        pings = notify.pings_between(down_from, time.monotonic())

        server.restart()  # same port; the queue is gone, as after a crash
        back_at = time.monotonic()
        wait_until(lambda: plays(server, "upbeat"), "the happy playlist playing again after MPD came back", timeout=40)
        playing_after = time.monotonic() - back_at
        assert daemon.alive()
        log = daemon.log()
        assert daemon.stop() == 0
    assert without_mpd < IDLE_CPU_LIMIT, f"{without_mpd:.1%} of a core while MPD was down (with it: {with_mpd:.1%})"
    assert len(pings) >= 4, f"watchdog pings while MPD was down: {pings}"
    # One line per kind of failure, not one per retry.
    failures = [line.partition(": ")[2] for line in log.splitlines() if "WARNING edgemood.sinks.mpd:" in line]
    assert failures and len(failures) == len(set(failures)) and "Traceback" not in log, log
    print(
        f"CPU with MPD {with_mpd:.2%}, without {without_mpd:.2%}; {len(pings)} watchdog pings in 8 s of outage; "
        f"playing again {playing_after:.1f} s after MPD was back"
    )


# -- camera faults and the watchdog (in-process: the broken camera is injected) ------------

#: WATCHDOG_USEC for these tests: systemd would kill a daemon silent for longer than this.
WATCHDOG_S = 1.0


class ScriptedCamera:
    """A frame source whose reads do what the test says: return a frame, raise, or block."""

    name = "scripted"

    def __init__(self, read: Callable[[], np.ndarray]) -> None:
        self._read = read

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        return self._read()

    def close(self) -> None:
        pass


@pytest.fixture
def run_in_process(
    tmp_path: Path, replay: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Callable[[], np.ndarray]], tuple[Any, NotifySocket]]]:
    """Start ``Daemon.run`` on a thread with a scripted camera and a systemd notify socket."""
    from edgemood.daemon import Daemon

    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", str(int(WATCHDOG_S * 1e6)))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    started: list[tuple[Any, threading.Thread, NotifySocket]] = []

    def start(read: Callable[[], np.ndarray]) -> tuple[Any, NotifySocket]:
        notify = NotifySocket(tmp_path / "notify.sock")
        daemon = Daemon(daemon_config(replay), source_factory=lambda: ScriptedCamera(read))
        thread = threading.Thread(target=daemon.run, name="daemon-under-test", daemon=True)
        started.append((daemon, thread, notify))
        thread.start()
        wait_until(lambda: bool(notify.messages("READY=1")), "READY=1", timeout=30, every=0.05)
        return daemon, notify

    yield start
    for daemon, thread, notify in started:
        daemon.request_stop()
        thread.join(5)
        notify.close()
        assert not thread.is_alive(), "the daemon loop did not stop"


def longest_silence(pings: list[float], start: float, end: float) -> float:
    """Longest stretch of [start, end] without a watchdog ping."""
    times = [start, *pings, end]
    return max(b - a for a, b in zip(times, times[1:]))


def raise_io_error() -> np.ndarray:
    raise OSError("camera unplugged")


@pytest.mark.parametrize(
    ("read", "reported"),
    [
        (raise_io_error, "camera unplugged"),
        (lambda: np.empty((0, 0), np.uint8), "empty frame"),
    ],
    ids=["raises", "empty"],
)
def test_a_failing_camera_is_reported_and_the_watchdog_stays_fed(
    run_in_process: Callable[..., Any], read: Callable[[], np.ndarray], reported: str
) -> None:
    daemon, notify = run_in_process(read)
    start = time.monotonic()
    time.sleep(3 * WATCHDOG_S)
    end = time.monotonic()
    assert longest_silence(notify.pings_between(start, end), start, end) < WATCHDOG_S
    source = daemon.health()["source"]
    assert not source["ok"] and source["failures"] >= 1 and reported in source["last_error"]
    assert any("camera unavailable" in m for _, m in notify.messages("STATUS="))


def test_garbage_frames_are_rejected_and_the_loop_goes_on(run_in_process: Callable[..., Any]) -> None:
    daemon, notify = run_in_process(lambda: np.zeros((240, 320, 7), np.uint8))
    start = time.monotonic()
    time.sleep(2 * WATCHDOG_S)
    end = time.monotonic()
    assert longest_silence(notify.pings_between(start, end), start, end) < WATCHDOG_S
    health = daemon.health()
    assert health["frames"] == 0  # none was mistaken for a picture
    assert health["rejected_frames"] >= 2  # counted for the stats, though logged once a minute


def test_a_camera_that_comes_back_is_used_again(run_in_process: Callable[..., Any], replay: Path) -> None:
    import cv2

    smile = cv2.imread(str(sorted(replay.iterdir())[0]), cv2.IMREAD_GRAYSCALE)
    reads = iter(range(1_000_000))

    def flaky() -> np.ndarray:
        if next(reads) < 2:
            raise OSError("camera not ready")
        return smile

    daemon, _ = run_in_process(flaky)
    # The retry backoff doubles from 1 s (with jitter): two failures cost under 3 s.
    wait_until(lambda: daemon.debouncer.state.mood == "happy", "the mood from the returned camera", timeout=15)
    assert daemon.health()["source"]["ok"]


def test_a_hung_camera_starves_the_watchdog(run_in_process: Callable[..., Any], replay: Path) -> None:
    import cv2

    smile = cv2.imread(str(sorted(replay.iterdir())[0]), cv2.IMREAD_GRAYSCALE)
    hang, release = threading.Event(), threading.Event()
    stuck_at: list[float] = []

    def read() -> np.ndarray:
        if hang.is_set():
            stuck_at.append(time.monotonic())
            release.wait(30)  # a driver call that never returns
        return smile

    _, notify = run_in_process(read)
    try:
        time.sleep(WATCHDOG_S)
        assert notify.pings_between(0, time.monotonic()), "no watchdog ping before the hang"
        hang.set()
        wait_until(lambda: bool(stuck_at), "the loop reaching the hung read", every=0.05)
        time.sleep(2 * WATCHDOG_S)
        # A ping sent just before the read may be timestamped a moment after it.
        late = notify.pings_between(stuck_at[0] + 0.2, time.monotonic())
        assert late == [], "watchdog pings although the loop is stuck: systemd would not restart it"
    finally:
        release.set()


# -- bad input on the command line -------------------------------------------------------


@pytest.fixture
def cli_in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., int]]:
    """``edgemood.cli.main`` in this process, leaving logging and signal handlers as they were."""
    import logging
    import signal

    for name in [k for k in os.environ if k.upper().startswith("EDGEMOOD_")]:
        monkeypatch.delenv(name)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    signals = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield cli.main
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    for sig, handler in signals.items():
        signal.signal(sig, handler)


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert not out and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(("text", "expected"), BROKEN_FILES)
def test_run_refuses_a_broken_config_with_one_line(
    tmp_path: Path, cli_in_process: Callable[..., int], capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = tmp_path / "edgemood.toml"
    path.write_text(text, encoding="utf-8")
    assert cli_in_process(["run", "-c", str(path)]) == 2
    line = one_line(capsys)
    assert line.startswith("edgemood run: config ") and expected in line


def write_bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


NOT_UTF8 = b"\xff\xfe"
NEWLINE = b"\n"
SECRET = b"secret\n"
NOT_A_CERTIFICATE = b"-----BEGIN CERTIFICATE-----\nnope\n"

#: Broken inputs the config table does not reach: files that exist but hold the wrong thing.
#: (name, makes the config text in a folder, expected)
BROKEN_FILES_BEYOND_TYPES: list[tuple[str, Callable[[Path], str], str]] = [
    (
        "password not UTF-8",
        lambda d: f'[mqtt]\nusername = "u"\npassword_file = "{write_bytes(d / "pw", NOT_UTF8)}"\n',
        "[mqtt] password_file",
    ),
    ("MPD password a folder", lambda d: f'[mpd]\npassword_file = "{d}"\n', "[mpd] password_file"),
    (
        "CA file not a certificate",
        lambda d: f'[mqtt]\ntls_ca = "{write_bytes(d / "ca.pem", NOT_A_CERTIFICATE)}"\n',
        "[mqtt] tls_ca",
    ),
    ("model path a folder", lambda d: f'[model]\npath = "{d}"\n', "[model] path"),
    (
        "empty password file",
        lambda d: f'[mqtt]\nusername = "u"\npassword_file = "{write_bytes(d / "pw", NEWLINE)}"\n',
        "[mqtt] password_file",
    ),
    (
        "password without user name",
        lambda d: f'[mqtt]\npassword_file = "{write_bytes(d / "pw", SECRET)}"\n',
        "[mqtt] password_file",
    ),
    ("debug frames into a file", lambda d: f'[log]\ndebug_frames_dir = "{write_bytes(d / "f", b"")}"\n', "[log] debug_frames_dir"),
]


@pytest.mark.parametrize(
    ("make", "expected"), [case[1:] for case in BROKEN_FILES_BEYOND_TYPES], ids=[c[0] for c in BROKEN_FILES_BEYOND_TYPES]
)
def test_run_refuses_files_with_the_wrong_content_with_one_line(
    tmp_path: Path,
    cli_in_process: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], str],
    expected: str,
) -> None:
    path = tmp_path / "edgemood.toml"
    path.write_text(make(tmp_path) + "[camera]\nsource = \"dir:.\"\n", encoding="utf-8")
    assert cli_in_process(["run", "-c", str(path)]) == 2
    assert expected in one_line(capsys)


@pytest.mark.parametrize("target", ["missing.toml", "."], ids=["missing", "a folder"])
def test_run_refuses_a_config_path_that_is_no_file(
    tmp_path: Path, cli_in_process: Callable[..., int], capsys: pytest.CaptureFixture[str], target: str
) -> None:
    assert cli_in_process(["run", "-c", str(tmp_path / target)]) == 2
    assert str(tmp_path) in one_line(capsys)


def model_with(folder: Path, model: bytes | None = None, sidecar: Callable[[dict], str] | None = None) -> Path:
    """A copy of the shipped model next to its sidecar, one of them damaged."""
    target = folder / "damaged.tflite"
    shutil.copy(DEFAULT_MODEL, target)
    shutil.copy(sidecar_path(DEFAULT_MODEL), sidecar_path(target))
    if model is not None:
        target.write_bytes(model)
    if sidecar is not None:
        sidecar_path(target).write_text(sidecar(json.loads(sidecar_path(target).read_text())))
    return target


def swap_outputs(sidecar: dict) -> str:
    outputs = sidecar["outputs"]
    return json.dumps({**sidecar, "outputs": {"probabilities": outputs["embedding"], "embedding": outputs["probabilities"]}})


#: (name, damage, what the error line says)
DAMAGED_MODELS: list[tuple[str, dict[str, Any], str]] = [
    ("random bytes", {"model": os.urandom(4096)}, "could not be loaded"),
    ("truncated", {"model": DEFAULT_MODEL.read_bytes()[:3000]}, "could not be loaded"),
    ("wrong input shape", {"sidecar": lambda d: json.dumps({**d, "input_size": 64})}, "input shape 1x48x48x1 does not match"),
    ("outputs swapped", {"sidecar": swap_outputs}, "does not match the sidecar"),
    ("sidecar not JSON", {"sidecar": lambda d: json.dumps(d)[:-5]}, "sidecar"),
    ("sidecar of another class order", {"sidecar": lambda d: json.dumps({**d, "classes": d["classes"][::-1]})}, "'classes'"),
    ("sidecar crop scale a word", {"sidecar": lambda d: json.dumps({**d, "crop": {**d["crop"], "scale": "big"}})}, "'crop.scale'"),
    ("sidecar of nulls", {"sidecar": lambda d: json.dumps({**d, "crop": {"scale": None, "shift_y": None}})}, "'crop.scale'"),
    ("sidecar metrics not a table", {"sidecar": lambda d: json.dumps({**d, "metrics": None})}, "'metrics'"),
    ("sidecar nested deeply", {"sidecar": lambda d: '{"crop": ' + "[" * 100000 + "]" * 100000 + "}"}, "nested too deeply"),
]


def test_run_with_a_damaged_model_fails_with_one_clear_line(tmp_path: Path, replay: Path) -> None:
    """As ``systemctl start`` would run it: exit 1 (a runtime failure, so systemd retries), no traceback."""
    for name, damage, expected in DAMAGED_MODELS:
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        config = daemon_config(replay)
        config = replace(config, model=replace(config.model, path=str(model_with(folder, **damage))))
        with DaemonProcess(config, folder / "run") as daemon:
            code = daemon.process.wait(60)
        # The TFLite runtime prints its own "INFO: Created ... delegate" banner on stderr
        # once the interpreter exists; everything else must be the one error line.
        lines = [line for line in daemon.log().splitlines() if not line.startswith("INFO: ")]
        assert code == 1 and len(lines) == 1 and lines[0].startswith("edgemood run: "), (name, daemon.log())
        assert expected in lines[0] and "Traceback" not in daemon.log(), (name, lines)
