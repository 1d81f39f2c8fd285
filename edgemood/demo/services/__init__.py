"""Throw-away local servers (mosquitto, mpd) on free localhost ports.

The demo and the integration tests both need a real broker and a real MPD
started from a temporary config and stopped afterwards; this is that code,
once.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class ServiceError(RuntimeError):
    """A local server binary is missing or did not come up."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def find_binary(name: str, *extra_dirs: str) -> str:
    """Locate a server binary on PATH or in sbin directories (Debian puts some there)."""
    path = shutil.which(name) or shutil.which(name, path=":".join(("/usr/sbin", "/usr/local/sbin", "/sbin", *extra_dirs)))
    if not path:
        raise ServiceError(f"{name} is not installed (sudo apt-get install {name})")
    return path


def poll_until(condition: Callable[[], bool], timeout: float, failure: str) -> None:
    """Ask ``condition`` every 50 ms until it holds; ``ServiceError(failure)`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ServiceError(failure)
        time.sleep(0.05)


def wait_for_port(host: str, port: int, process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Block until ``host:port`` accepts connections or the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{process.args[0]} exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"{process.args[0]} did not listen on {host}:{port} within {timeout} s")


@dataclass
class LocalService:
    """A running server process, its address and its working directory."""

    name: str
    host: str
    port: int
    workdir: Path
    process: subprocess.Popen = field(repr=False)
    argv: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate (then kill) the process; safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        """Start the same server again on the same port (for outage tests)."""
        self.stop()
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.host, self.port, self.process)

    def __enter__(self) -> LocalService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
