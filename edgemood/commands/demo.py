"""``edgemood demo``: the whole product on this machine, in about 20 seconds.

Starts a throw-away mosquitto and MPD (null audio output, generated tracks,
one stored playlist per mood's mapping) on free localhost ports, runs the real
daemon (``edgemood run`` in a child process) on replayed photos, and narrates:
which photo is in front of the camera, each mood change as MQTT delivered it,
and what MPD then says it plays.

The replay tells the same story on every run and machine: the frames are
fixed, the daemon's timing is set in frames (with half a frame of slack, so a
late tick cannot change a count), MPD does not shuffle and the shipped model
is used without a personal head.
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

from edgemood.demo.frames import DEMO_SCENES, Scene

DEVICE_ID = "demo"
#: A mood must hold this many frames to be switched to ...
DWELL_FRAMES = 4
#: ... and this many frames without a face mean nobody is there.
ABSENT_FRAMES = 8
#: How long the daemon may take to load its model and say it is online.
STARTUP_S = 60.0
#: How long MPD may take to load and start a playlist after a mood change.
MPD_SETTLE_S = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood demo``."""
    parser.add_argument("--source", default=None, help="your own camera/video/folder instead of the replay (e.g. v4l2:/dev/video0, dir:frames/)")
    parser.add_argument("--seconds", type=float, default=None, help="how long to run (default: one pass of the replay; with --source until Ctrl-C)")
    parser.add_argument("--interval", type=float, default=0.25, help="sampling interval in seconds (default 0.25)")


def _config(workdir: Path, source: str, interval: float, mqtt_port: int, mpd_port: int, loop: bool) -> Path:
    """The daemon's config: dwell and absence in frames, half a frame short of the count."""
    from edgemood.config import (
        CameraConfig,
        Config,
        ModelConfig,
        MoodConfig,
        MpdConfig,
        MqttConfig,
        config_to_toml,
    )

    config = Config(
        camera=CameraConfig(source=source, interval_s=interval, loop=loop),
        model=ModelConfig(personal=False),
        mood=MoodConfig(min_dwell_s=(DWELL_FRAMES - 0.5) * interval, absent_after_s=(ABSENT_FRAMES - 0.5) * interval),
        mpd=MpdConfig(host="127.0.0.1", port=mpd_port, crossfade_s=0, shuffle=False),
        mqtt=MqttConfig(host="127.0.0.1", port=mqtt_port, device_id=DEVICE_ID, stats_interval_s=5),
    )
    path = workdir / "edgemood.toml"
    path.write_text(config_to_toml(config), encoding="utf-8")
    return path


def scene_starts(scenes: tuple[Scene, ...]) -> list[tuple[int, Scene]]:
    """(first frame, scene) for each scene of a replay, frames counted from 0."""
    starts, frame = [], 0
    for scene in scenes:
        starts.append((frame, scene))
        frame += scene.frames
    return starts


def caption_line(first: int, scene: Scene) -> str:
    """The narration when a scene comes in front of the camera (frames counted from 1 for people)."""
    return f"-- frames {first + 1}-{first + scene.frames}: {scene.caption}"


def describe_player(status: dict, song: dict) -> str:
    """One line of what MPD says it does."""
    state = status.get("state", "?")
    length = int(status.get("playlistlength", 0))
    if state == "stop" or not song:
        return f"MPD: stopped, {length} track(s) queued" if length else "MPD: stopped, nothing queued"
    verb = {"play": "playing", "pause": "paused on"}.get(state, state)
    return f"MPD: {verb} {song.get('file', '?')} ({int(status.get('song', 0)) + 1} of {length} in the queue)"


def _ask_player(host: str, port: int, playlist: str | None) -> str:
    """What MPD plays now; after a switch to ``playlist``, once its queue holds that playlist."""
    from mpd import MPDClient

    client = MPDClient()
    client.timeout = 2
    try:
        client.connect(host, port)
        deadline = time.monotonic() + MPD_SETTLE_S
        while True:
            status, song = client.status(), client.currentsong()
            if playlist is None or time.monotonic() > deadline:
                break
            queued = [entry["file"] for entry in client.playlistinfo()]
            if status.get("state") == "play" and queued == client.listplaylist(playlist):
                break
            time.sleep(0.05)
        client.disconnect()
    except Exception as exc:  # MPD is a demo helper here: report, don't fail
        return f"MPD: {exc}"
    return describe_player(status, song)


def _subscribe(host: str, port: int, topics: list[str]) -> tuple[object, queue.Queue[tuple[float, str, bytes]]]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    inbox: queue.Queue[tuple[float, str, bytes]] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edgemood-demo-viewer")
    client.on_connect = lambda c, *_: [c.subscribe(t, qos=1) for t in topics]
    client.on_message = lambda _c, _u, msg: inbox.put((time.monotonic(), msg.topic, msg.payload))
    client.connect(host, port)
    client.loop_start()
    return client, inbox


def run(args: argparse.Namespace) -> int:
    """Start the servers, run the daemon, narrate, clean up."""
    from edgemood.demo.frames import write_replay
    from edgemood.demo.services import ServiceError
    from edgemood.demo.services.mosquitto import start_mosquitto
    from edgemood.demo.services.mpd import start_mpd
    from edgemood.errors import EdgemoodError, UsageError

    if args.interval <= 0:
        raise UsageError("--interval must be positive")
    with tempfile.TemporaryDirectory(prefix="edgemood-demo-") as tmp:
        workdir = Path(tmp)
        if args.source:
            source, loop, scenes = args.source, True, ()
        else:
            write_replay(workdir / "frames")
            source, loop, scenes = f"dir:{workdir / 'frames'}", False, DEMO_SCENES
        try:
            broker = start_mosquitto(workdir / "mosquitto")
            player = start_mpd(workdir / "mpd")
        except ServiceError as exc:
            raise EdgemoodError(f"{exc} (the README's set-up installs mosquitto and mpd)") from None
        print(f"mosquitto on 127.0.0.1:{broker.port}, mpd on 127.0.0.1:{player.port} (null audio output)")
        config = _config(workdir, source, args.interval, broker.port, player.port, loop)
        base = f"edgemood/{DEVICE_ID}"
        topics = [f"{base}/{name}" for name in ("availability", "enabled", "event", "error")]
        viewer, inbox = _subscribe("127.0.0.1", broker.port, topics)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "edgemood", "--log-level", "warning", "run", "-c", str(config)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if scenes:
            total = sum(scene.frames for scene in scenes)
            print(
                f"replaying {total} frames of the photos edgemood ships, one every {args.interval:g} s; a mood "
                f"must hold for {DWELL_FRAMES} frames, and {ABSENT_FRAMES} frames without a face mean absent"
            )
        else:
            print(f"daemon started on {source}; mood changes as they happen (Ctrl-C ends):")
        try:
            _narrate(daemon, inbox, topic_base=base, scenes=scenes, interval=args.interval, seconds=args.seconds, mpd_port=player.port)
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(10)
            time.sleep(0.3)
            while not inbox.empty():
                _, topic, payload = inbox.get()
                print(f"[stop] MQTT {topic}: {payload.decode()}")
            viewer.loop_stop()
            viewer.disconnect()
            player.stop()
            broker.stop()
        print(f"daemon exited with {code}")
        return 0 if code == 0 else 1


def _narrate(
    daemon: subprocess.Popen,
    inbox: queue.Queue[tuple[float, str, bytes]],
    *,
    topic_base: str,
    scenes: tuple[Scene, ...],
    interval: float,
    seconds: float | None,
    mpd_port: int,
) -> None:
    """Print captions, events and MPD's answers until the replay (or ``seconds``) is over.

    The daemon samples frame 0 and then publishes its states, ``enabled``
    among them: frame n is in front of the camera ``n * interval`` after that
    message arrives.
    """
    captions = scene_starts(scenes)
    total = sum(scene.frames for scene in scenes)
    started = time.monotonic()
    first_frame_at: float | None = None
    try:
        while daemon.poll() is None:
            now = time.monotonic()
            if first_frame_at is None and now - started > STARTUP_S:
                print(f"the daemon did not sample its first frame within {STARTUP_S:.0f} s")
                return
            if first_frame_at is not None:
                while captions and now >= first_frame_at + captions[0][0] * interval:
                    print(caption_line(*captions.pop(0)))
                # two frames after the last one, so its mood change (if any) has arrived
                if scenes and seconds is None and now >= first_frame_at + (total + 1) * interval:
                    print(f"-- the replay is over: all {total} frames shown")
                    return
            if seconds is not None and now - started >= seconds:
                return
            try:
                received, topic, payload = inbox.get(timeout=min(0.05, interval / 4))
            except queue.Empty:
                continue
            if topic == f"{topic_base}/enabled":
                first_frame_at = first_frame_at or received
            elif topic.endswith("/event"):
                event = json.loads(payload)
                print(f"   {event['from']} -> {event['to']} ({event['confidence']:.2f})  MQTT {topic}: {payload.decode()}")
                print(f"   {_ask_player('127.0.0.1', mpd_port, event.get('playlist'))}")
            else:
                print(f"   MQTT {topic}: {payload.decode()}")
    except KeyboardInterrupt:
        pass
