"""``edgemood doctor``: check each part a running daemon needs, one line each.

Every check is read-only towards the user's services: the broker check
connects under its own client id without a last will, so a daemon that is
running keeps its session and its ``online``.
"""

from __future__ import annotations

import argparse
import glob
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 5.0
#: Where the kernel names the board; a Raspberry Pi's says so.
BOARD_MODEL = Path("/proc/device-tree/model")


@dataclass(frozen=True)
class Check:
    """One line of the report: OK with a detail, or FAIL with the fix."""

    name: str
    ok: bool | None  # None: skipped (disabled in the config)
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``OK   name  detail`` / ``FAIL name  detail -> fix``."""
        mark = {True: "OK  ", False: "FAIL", None: "SKIP"}[self.ok]
        return f"{mark} {self.name:7} {self.detail}" + (f"\n     {'':7} fix: {self.fix}" if self.fix else "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood doctor``."""
    parser.add_argument("-c", "--config", type=Path, default=None, help="TOML config (default /etc/edgemood/edgemood.toml if present)")


def check_model(config) -> Check:
    """The model and sidecar load and classify a blank crop."""
    import numpy as np

    from edgemood.inference.model import MoodModel, configured_model_path

    path = configured_model_path(config.model.path)
    try:
        model = MoodModel(path, config.model.threads)
        started = time.perf_counter()
        model.predict(np.full((model.input_size, model.input_size), 128, np.uint8))
        ms = (time.perf_counter() - started) * 1000
    except Exception as exc:
        return Check("model", False, str(exc), "reinstall edgemood, or point [model] path at a .tflite with its .json sidecar")
    return Check("model", True, f"{path.name} on {model.runtime.module}, {ms:.1f} ms per face")


def check_camera(config) -> Check:
    """The frame source opens and delivers one frame."""
    from edgemood.sources.devices import open_camera

    spec = config.camera.source
    source = None
    try:
        source = open_camera(config.camera)
        source.open()
        frame = source.read()
    except Exception as exc:
        kind, on_pi = spec.split(":", 1)[0], on_raspberry_pi()
        problem = str(exc)
        if kind == "picamera2" and not on_pi:  # the source's own advice (apt install) does not apply here
            problem = f"this is not a Raspberry Pi ({problem.split(':', 1)[0]})"
        return Check("camera", False, f"{spec}: {problem}", camera_fix(kind, on_pi, sorted(glob.glob("/dev/video*"))))
    finally:
        if source is not None:
            source.close()
    return Check("camera", True, f"{spec}: frame {frame.shape[1]}x{frame.shape[0]}")


def on_raspberry_pi() -> bool:
    """Whether this board is a Raspberry Pi (only there does picamera2 make sense)."""
    try:
        return "Raspberry Pi" in BOARD_MODEL.read_text(errors="replace")
    except OSError:
        return False


def camera_fix(kind: str, on_pi: bool, video_devices: list[str]) -> str:
    """What to do about a camera that failed, given the board and the V4L2 devices present."""
    if kind == "picamera2" and on_pi:
        return "sudo apt install python3-picamera2, use a venv made with --system-site-packages, check `rpicam-hello --list-cameras`"
    if kind in ("picamera2", "v4l2"):
        device = video_devices[0] if video_devices else "/dev/video0"
        found = f"found: {' '.join(video_devices)}" if video_devices else "no /dev/video* here: plug in a USB camera"
        advice = f'set [camera] source = "v4l2:{device}" ({found})'
        if kind == "picamera2":
            return f"{advice}, or replay a file: or dir: source"
        return f"{advice}, and check that the service user is in the video group"
    return "check [camera] source"


def check_mpd(config) -> Check:
    """MPD answers, and every mapped playlist exists on it."""
    from edgemood.sinks.mpd_session import open_client

    cfg = config.mpd
    if not cfg.enabled:
        return Check("mpd", None, "disabled in [mpd]")
    try:
        client = open_client(cfg)
        stored = {entry["playlist"] for entry in client.listplaylists()}
        version = client.mpd_version
        client.disconnect()
    except Exception as exc:
        return Check("mpd", False, f"{cfg.host}:{cfg.port}: {exc}", "start MPD (`systemctl status mpd`) or fix [mpd] host/port/password_file")
    missing = sorted(set(config.playlists.values()) - stored)
    if missing:
        return Check(
            "mpd", False, f"MPD {version} lacks stored playlists: {', '.join(missing)}",
            "create them (e.g. `mpc add <music>; mpc save NAME`) or map [playlists] to existing ones",
        )
    return Check("mpd", True, f"MPD {version} at {cfg.host}:{cfg.port}, playlists {', '.join(sorted(set(config.playlists.values())))} present")


def check_broker(config) -> Check:
    """The broker accepts our credentials (and TLS) within the timeout."""
    from edgemood.sinks.mqtt_connection import configured_client

    cfg = config.mqtt
    if not cfg.enabled:
        return Check("broker", None, "disabled in [mqtt]")
    done = threading.Event()
    result: dict[str, object] = {}

    def on_connect(client, userdata, flags, reason, properties) -> None:
        result["reason"] = reason
        done.set()

    try:
        client = configured_client(cfg, f"edgemood-doctor-{cfg.device_id}")
    except Exception as exc:
        return Check("broker", False, str(exc), "fix [mqtt] tls_ca / password_file")
    client.on_connect = on_connect
    client.connect_timeout = TIMEOUT_S
    try:
        # A blocking connect, as for MPD: a closed port is "Connection refused" at once,
        # a failed TLS handshake names its reason.
        client.connect(cfg.host, cfg.port, keepalive=10)
    except Exception as exc:
        return Check("broker", False, f"{cfg.host}:{cfg.port}: {exc}", "start mosquitto (`systemctl status mosquitto`) or fix [mqtt] host/port/tls_ca")
    client.loop_start()
    try:
        if not done.wait(TIMEOUT_S):
            return Check("broker", False, f"{cfg.host}:{cfg.port}: no MQTT answer in {TIMEOUT_S:.0f} s", "is that port a broker? (a TLS listener needs [mqtt] tls_ca)")
        reason = result["reason"]
        if getattr(reason, "is_failure", False):
            return Check("broker", False, f"{cfg.host}:{cfg.port}: refused: {reason}", "check [mqtt] username and password_file")
    finally:
        client.disconnect()
        client.loop_stop()
    return Check("broker", True, f"{cfg.host}:{cfg.port} accepted the connection")


CHECKS: tuple[Callable, ...] = (check_model, check_camera, check_mpd, check_broker)


def run(args: argparse.Namespace) -> int:
    """Print each check; exit 1 if any failed (2 if the config itself is bad)."""
    from edgemood.config import DEFAULT_CONFIG_PATH, config_file, load_config
    from edgemood.errors import UsageError

    try:
        config = load_config(args.config)
    except UsageError as exc:
        print(Check("config", False, str(exc), "edit the named key (see deploy/edgemood.example.toml)").line())
        return 2
    path = config_file(args.config)
    detail = str(path) if path else f"built-in defaults: {DEFAULT_CONFIG_PATH} does not exist (every key is optional)"
    print(Check("config", True, detail).line())
    results = [check(config) for check in CHECKS]
    for result in results:
        print(result.line())
    return 1 if any(r.ok is False for r in results) else 0
