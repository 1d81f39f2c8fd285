"""``edgemood demo``: the whole product on this machine, in about 30 seconds.

Starts a throw-away mosquitto and MPD (null audio output, generated tracks,
one stored playlist per mood's mapping) on free localhost ports, runs the real
daemon (``edgemood run`` in a child process) on replayed photos, and prints
each mood change as MQTT delivered it with what MPD now plays.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEVICE_ID = "demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood demo``."""
    parser.add_argument("--source", default=None, help="your own camera/video/folder instead of the replay (e.g. v4l2:0, dir:frames/)")
    parser.add_argument("--seconds", type=float, default=None, help="how long to run (default: one pass of the replay; with --source until Ctrl-C)")
    parser.add_argument("--interval", type=float, default=0.25, help="sampling interval in seconds (default 0.25)")


def _config(workdir: Path, source: str, interval: float, mqtt_port: int, mpd_port: int, loop: bool) -> Path:
    """The daemon's config: timing in frames, so a replay tells the same story at any --interval."""
    path = workdir / "edgemood.toml"
    path.write_text(
        f"""[camera]
source = {json.dumps(source)}
interval_s = {interval}
loop = {str(loop).lower()}

[mood]
min_dwell_s = {4 * interval}
absent_after_s = {8 * interval}

[mpd]
host = "127.0.0.1"
port = {mpd_port}
crossfade_s = 0

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
device_id = "{DEVICE_ID}"
stats_interval_s = 5
"""
    )
    return path


def _now_playing(host: str, port: int) -> str:
    """What ``mpc`` would print in two lines, condensed to one."""
    from mpd import MPDClient

    client = MPDClient()
    client.timeout = 2
    try:
        client.connect(host, port)
        status, song = client.status(), client.currentsong()
        client.disconnect()
    except Exception as exc:  # MPD is a demo helper here: report, don't fail
        return f"MPD: {exc}"
    if status.get("state") != "play":
        return f"MPD: [{status.get('state')}]"
    position = int(status.get("song", 0)) + 1
    return f"MPD: [playing] #{position}/{status.get('playlistlength')} {song.get('file', '?')}"


def _subscribe(host: str, port: int, topics: list[str]) -> tuple[object, "queue.Queue[tuple[str, bytes]]"]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edgemood-demo-viewer")
    client.on_connect = lambda c, *_: [c.subscribe(t, qos=1) for t in topics]
    client.on_message = lambda _c, _u, msg: inbox.put((msg.topic, msg.payload))
    client.connect(host, port)
    client.loop_start()
    return client, inbox


def run(args: argparse.Namespace) -> int:
    """Start the servers, run the daemon, narrate, clean up."""
    from edgemood.demo_frames import DEMO_SCENES, write_replay
    from edgemood.errors import EdgemoodError
    from edgemood.services import ServiceError
    from edgemood.services.mosquitto import start_mosquitto
    from edgemood.services.mpd import start_mpd

    with tempfile.TemporaryDirectory(prefix="edgemood-demo-") as tmp:
        workdir = Path(tmp)
        if args.source:
            source, loop, seconds = args.source, True, args.seconds
        else:
            try:
                write_replay(workdir / "frames")
            except ImportError:
                raise EdgemoodError(
                    "the demo's replay photos come from scikit-image: pip install scikit-image "
                    "(or pass --source with your own camera, video or folder)"
                ) from None
            source, loop = f"dir:{workdir / 'frames'}", False
            seconds = args.seconds or sum(s.frames for s in DEMO_SCENES) * args.interval + 4
        try:
            broker = start_mosquitto(workdir / "mosquitto")
            player = start_mpd(workdir / "mpd")
        except ServiceError as exc:
            raise EdgemoodError(f"{exc} (the README's set-up installs mosquitto and mpd)") from None
        print(f"mosquitto on 127.0.0.1:{broker.port}, mpd on 127.0.0.1:{player.port} (null audio output)")
        config = _config(workdir, source, args.interval, broker.port, player.port, loop)
        base = f"edgemood/{DEVICE_ID}"
        viewer, inbox = _subscribe("127.0.0.1", broker.port, [f"{base}/event", f"{base}/availability", f"{base}/error"])
        daemon = subprocess.Popen([sys.executable, "-m", "edgemood", "--log-level", "warning", "run", "-c", str(config)], env={**os.environ, "PYTHONUNBUFFERED": "1"})
        print(f"daemon started on {source}; mood changes as they happen:")
        started = time.monotonic()
        try:
            while daemon.poll() is None and (seconds is None or time.monotonic() - started < seconds):
                try:
                    topic, payload = inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                stamp = f"[{time.monotonic() - started:5.1f}s]"
                if topic.endswith("/event"):
                    event = json.loads(payload)
                    time.sleep(0.3)  # let MPD apply the switch before asking it
                    playing = _now_playing("127.0.0.1", player.port) if event.get("playlist") else "MPD: keeps playing"
                    print(f"{stamp} {event['from']} -> {event['to']} ({event['confidence']:.2f})  MQTT {topic}: {payload.decode()}")
                    print(f"{' ' * len(stamp)} {playing}")
                else:
                    print(f"{stamp} MQTT {topic}: {payload.decode()}")
        except KeyboardInterrupt:
            pass
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(10)
            time.sleep(0.3)
            while not inbox.empty():
                topic, payload = inbox.get()
                print(f"[stop]   MQTT {topic}: {payload.decode()}")
            viewer.loop_stop()
            viewer.disconnect()
            player.stop()
            broker.stop()
        print(f"daemon exited with {code}")
        return 0 if code == 0 else 1
