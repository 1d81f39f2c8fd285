#!/usr/bin/env python3
"""Soak run: ``edgemood run`` at a high sampling rate for minutes, watched for leaks.

Run from a checkout with edgemood and its dev extra installed:

    python scripts/soak.py --minutes 3 --interval 0.05 --every 10

A looping replay (a smiling face, nobody, other faces) keeps the mood
changing, and every change goes through the real sinks: a throw-away
mosquitto and MPD are started on free localhost ports (``--no-servers`` runs
the pipeline alone). Every ``--every`` seconds the daemon's RSS, open file
descriptors, threads and CPU are read from ``/proc``, with the frame count
from its MQTT stats. The output is a Markdown table (for
docs/reliability.md) and a verdict: after ``--warmup`` seconds, RSS must not
grow by more than ``--max-rss-growth`` MiB and the descriptor count must not
grow at all. Exit status 0 when that holds, 1 when not.

The /proc probes and the daemon runner are the tests' own
(``tests/daemon_harness.py``), so the soak run and the test suite measure
the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from daemon_harness import DaemonProcess, daemon_config, fd_count, thread_count  # noqa: E402
from procfs import process_cpu_seconds, process_status_kib  # noqa: E402

from edgemood.demo.frames import Scene, write_replay  # noqa: E402
from edgemood.demo.services import LocalService, ServiceError  # noqa: E402
from edgemood.sinks.mqtt_topics import Topics  # noqa: E402

#: Happy, absent, then whatever Grace Hopper reads as: moods that map to different playlists.
SCENES = (Scene("astronaut", 10), Scene("nobody", 10), Scene("hopper", 10))


@dataclass(frozen=True)
class Sample:
    """One look at the daemon."""

    t: float
    rss_mib: float
    fds: int
    threads: int
    cpu_percent: float | None  # since the previous sample
    frames: int | None
    mood_changes: int


class StatsListener:
    """Keeps the latest ``stats`` document the daemon published (frames analysed so far)."""

    def __init__(self, broker: LocalService, topic: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.latest: dict = {}
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic)
        self._client.on_message = self._record
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()

    def _record(self, client: object, userdata: object, message: object) -> None:
        with self._lock:
            self.latest = json.loads(message.payload)  # type: ignore[attr-defined]

    def frames(self) -> int | None:
        with self._lock:
            return self.latest.get("frames")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def start_servers(workdir: Path, stack: ExitStack) -> tuple[LocalService | None, LocalService | None]:
    """Throw-away mosquitto and MPD, or (None, None) with a note when they are not installed."""
    from edgemood.demo.services.mosquitto import start_mosquitto
    from edgemood.demo.services.mpd import start_mpd

    try:
        broker = stack.enter_context(start_mosquitto(workdir / "mosquitto"))
        player = stack.enter_context(start_mpd(workdir / "mpd"))
    except ServiceError as exc:
        print(f"note: running without MQTT and MPD ({exc})", file=sys.stderr)
        return None, None
    return broker, player


def soak(args: argparse.Namespace, workdir: Path) -> list[Sample]:
    """Run the daemon for ``args.minutes`` and sample it every ``args.every`` seconds."""
    replay = workdir / "replay"
    write_replay(replay, SCENES)
    with ExitStack() as stack:
        broker, player = (None, None) if args.no_servers else start_servers(workdir, stack)
        config = daemon_config(replay, interval_s=args.interval, mqtt=broker, mpd=player, device_id="soak")
        daemon = stack.enter_context(DaemonProcess(config, workdir / "run"))
        stats_topic = Topics(config.mqtt.base_topic, config.mqtt.device_id).stats
        listener = StatsListener(broker, stats_topic) if broker else None
        if listener:
            stack.callback(listener.close)
        daemon.wait_for(lambda log: " -> " in log, "a first mood", timeout=60)
        samples: list[Sample] = []
        started = time.monotonic()
        last_t, last_cpu = started, process_cpu_seconds(daemon.pid)
        end = started + args.minutes * 60
        while True:
            now, cpu = time.monotonic(), process_cpu_seconds(daemon.pid)
            samples.append(
                Sample(
                    t=now - started,
                    rss_mib=process_status_kib(daemon.pid, "VmRSS") / 1024,
                    fds=fd_count(daemon.pid),
                    threads=thread_count(daemon.pid),
                    cpu_percent=100 * (cpu - last_cpu) / (now - last_t) if samples else None,
                    frames=listener.frames() if listener else None,
                    mood_changes=len(daemon.mood_changes()),
                )
            )
            print(f"  t={samples[-1].t:6.0f} s  rss={samples[-1].rss_mib:6.1f} MiB  fds={samples[-1].fds}", file=sys.stderr)
            last_t, last_cpu = now, cpu
            if now >= end:
                break
            time.sleep(min(args.every, max(0.0, end - now)))
        if not daemon.alive():
            raise SystemExit(f"the daemon died:\n{daemon.log()[-3000:]}")
        code = daemon.stop()
        if code != 0:
            raise SystemExit(f"the daemon exited {code} on SIGTERM")
        if "Traceback" in daemon.log():
            raise SystemExit(f"the daemon logged a traceback:\n{daemon.log()[-3000:]}")
    return samples


def table(samples: list[Sample]) -> str:
    """The samples as a Markdown table."""
    rows = [
        "| t (s) | RSS (MiB) | fds | threads | CPU (% of a core) | frames | mood changes |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in samples:
        frames = "-" if s.frames is None else str(s.frames)
        cpu = "-" if s.cpu_percent is None else f"{s.cpu_percent:.0f}"
        rows.append(f"| {s.t:.0f} | {s.rss_mib:.1f} | {s.fds} | {s.threads} | {cpu} | {frames} | {s.mood_changes} |")
    return "\n".join(rows)


def verdict(samples: list[Sample], warmup_s: float, max_rss_growth_mib: float) -> tuple[bool, str]:
    """Growth after the warm-up: RSS within the allowance, descriptors not at all.

    The descriptor figure is the least of the last three samples, so a file the
    replay has open for a moment at sampling time does not count as a leak.
    """
    settled = [s for s in samples if s.t >= warmup_s]
    if len(settled) < 4:
        return False, f"too few samples after the {warmup_s:g} s warm-up to judge; run longer"
    base = settled[0]
    rss_growth = settled[-1].rss_mib - base.rss_mib
    peak_growth = max(s.rss_mib for s in settled) - base.rss_mib
    fd_growth = min(s.fds for s in settled[-3:]) - base.fds
    thread_growth = settled[-1].threads - base.threads
    ok = rss_growth <= max_rss_growth_mib and fd_growth <= 0 and thread_growth <= 0
    minutes = (settled[-1].t - base.t) / 60
    text = (
        f"{'PASS' if ok else 'FAIL'}: over {minutes:.1f} min after a {warmup_s:g} s warm-up, "
        f"RSS {rss_growth:+.1f} MiB (peak {peak_growth:+.1f}, allowed {max_rss_growth_mib:g}), "
        f"fds {fd_growth:+d}, threads {thread_growth:+d}"
    )
    return ok, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long to run (default 3)")
    parser.add_argument("--interval", type=float, default=0.05, help="[camera] interval_s (default 0.05, the least allowed)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples (default 10)")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before growth counts (default 30)")
    parser.add_argument("--max-rss-growth", type=float, default=4.0, help="MiB of RSS growth allowed (default 4)")
    parser.add_argument("--no-servers", action="store_true", help="no mosquitto and MPD: the pipeline alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgemood-soak-") as folder:
        samples = soak(args, Path(folder))
    ok, text = verdict(samples, args.warmup, args.max_rss_growth)
    print(table(samples))
    print()
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
