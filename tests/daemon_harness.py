"""Drive ``edgemood run`` as systemd would, and watch it from the outside.

Shared by the reliability and security tests and by ``scripts/soak.py``: the
daemon runs as a child process from a config written by ``config_to_toml``,
with its log in a file (a pipe could fill up and stall it during a long run),
and is observed only through what an operator has too: its log, the
``$NOTIFY_SOCKET`` messages, and ``/proc`` (CPU time, RSS, descriptors,
sockets).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from procfs import process_cpu_seconds

from edgemood.config import CameraConfig, Config, ModelConfig, MoodConfig, MpdConfig, MqttConfig, config_to_toml
from edgemood.demo.frames import Scene
from edgemood.demo.services import LocalService

#: A smiling face, then nobody: with ``FAST_MOOD`` at 0.1 s per frame the mood
#: alternates happy/absent about once a second, which gives outages something to lose.
ALTERNATING = (Scene("astronaut", 10), Scene("nobody", 10))
FAST_MOOD = MoodConfig(min_dwell_s=0.3, absent_after_s=0.5)
#: The daemon's log line for every debounced change (``Daemon._apply``).
MOOD_CHANGE = re.compile(r"edgemood\.daemon: mood (\w+) -> (\w+) \(")
#: Variables that would leak the test runner's settings into the daemon.
_INHERITED = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")


def daemon_config(
    replay: Path,
    *,
    interval_s: float = 0.1,
    mqtt: LocalService | None = None,
    mpd: LocalService | None = None,
    device_id: str = "edgemood-test",
) -> Config:
    """A config that replays ``replay`` in a loop; a sink is enabled only when its server is given.

    The personal head is off so that nothing outside the test's folders is read.
    """
    mqtt_config = (
        MqttConfig(host=mqtt.host, port=mqtt.port, device_id=device_id, stats_interval_s=1)
        if mqtt
        else MqttConfig(enabled=False, device_id=device_id)
    )
    mpd_config = (
        MpdConfig(host=mpd.host, port=mpd.port, crossfade_s=0, shuffle=False) if mpd else MpdConfig(enabled=False)
    )
    return Config(
        camera=CameraConfig(source=f"dir:{replay}", interval_s=interval_s),
        model=ModelConfig(personal=False),
        mood=FAST_MOOD,
        mpd=mpd_config,
        mqtt=mqtt_config,
    )


class DaemonProcess:
    """``python -m edgemood run -c <config>`` in ``workdir``, which is also its HOME and TMPDIR.

    Use as a context manager: leaving it stops the daemon (SIGTERM, then SIGKILL).
    """

    def __init__(
        self,
        config: Config,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        options: Sequence[str] = (),
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config_path = workdir / "edgemood.toml"
        self.config_path.write_text(config_to_toml(config), encoding="utf-8")
        self.log_path = workdir / "daemon.log"
        environ = {
            k: v for k, v in os.environ.items() if not k.upper().startswith("EDGEMOOD_") and k not in _INHERITED
        }
        environ.update(HOME=str(workdir), TMPDIR=str(workdir), **(env or {}))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edgemood", *options, "run", "-c", str(self.config_path)],
                cwd=workdir,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        """Everything the daemon printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def mood_changes(self) -> list[tuple[str, str]]:
        """Every debounced change the daemon logged, in order, as (from, to)."""
        return [(m.group(1), m.group(2)) for m in MOOD_CHANGE.finditer(self.log())]

    def wait_for(self, condition: Callable[[str], bool], what: str, timeout: float = 20.0) -> str:
        """Poll the log until ``condition(log)`` holds; fail saying ``what`` if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if condition(text):
                return text
            if not self.alive():
                raise AssertionError(f"daemon exited ({self.process.returncode}) before {what}:\n{text[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s:\n{text[-3000:]}")
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, as ``systemctl stop`` sends; returns the exit code (killed: AssertionError)."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"daemon ignored SIGTERM for {timeout} s:\n{self.log()[-3000:]}") from None
        return self.process.returncode

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait()
        if exc_type is not None:  # pytest shows this output with the failure
            print(f"--- end of the daemon's log ({self.log_path}) ---\n{self.log()[-4000:]}")


class NotifySocket:
    """The AF_UNIX datagram socket systemd listens on for ``sd_notify``; records what arrives, with times."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.1)
        self._lock = threading.Lock()
        self._messages: list[tuple[float, str]] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="notify-listener", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def messages(self, prefix: str = "") -> list[tuple[float, str]]:
        """(monotonic arrival time, message) of every message starting with ``prefix``."""
        with self._lock:
            return [(t, m) for t, m in self._messages if m.startswith(prefix)]

    def pings_between(self, start: float, end: float) -> list[float]:
        """Arrival times of ``WATCHDOG=1`` within [start, end] (monotonic)."""
        return [t for t, _ in self.messages("WATCHDOG=1") if start <= t <= end]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(1.0)
        self._sock.close()

    def __enter__(self) -> NotifySocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- /proc probes ------------------------------------------------------------------------


def cpu_share(pid: int, seconds: float) -> float:
    """Fraction of one core the process used over the next ``seconds``."""
    started, cpu = time.monotonic(), process_cpu_seconds(pid)
    time.sleep(seconds)
    return (process_cpu_seconds(pid) - cpu) / (time.monotonic() - started)


def fd_count(pid: int) -> int:
    """Open file descriptors of the process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    """Threads of the process."""
    return len(os.listdir(f"/proc/{pid}/task"))


def socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets among the process's descriptors."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


#: TCP state LISTEN and UDP's "unconnected" (bound, takes datagrams from anyone), in /proc/net.
_TCP_LISTEN, _UDP_UNCONNECTED = "0A", "07"
#: __SO_ACCEPTCON in the Flags column of /proc/net/unix: a listening unix socket.
_UNIX_ACCEPTCON = 0x10000


def listening_sockets(pid: int) -> list[str]:
    """The process's sockets that accept connections or datagrams from others, described.

    TCP sockets in LISTEN, bound unconnected UDP sockets, and listening unix
    sockets, read from the process's own view of ``/proc/net``.
    """
    ours = socket_inodes(pid)
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        wanted = _TCP_LISTEN if table.startswith("tcp") else _UDP_UNCONNECTED
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for fields in (line.split() for line in lines):
            if fields[3] == wanted and fields[9] in ours:
                found.append(f"{table} port {int(fields[1].rpartition(':')[2], 16)}")
    for fields in (line.split() for line in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]):
        if int(fields[3], 16) & _UNIX_ACCEPTCON and fields[6] in ours:
            found.append(f"unix {fields[7] if len(fields) > 7 else '(unnamed)'}")
    return found


