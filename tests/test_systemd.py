"""sd_notify over a real AF_UNIX datagram socket, as systemd would listen."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgemood.platform.systemd import Notifier


def _receive_all(sock: socket.socket) -> list[str]:
    messages = []
    sock.setblocking(False)
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def test_messages_reach_the_socket(listener: socket.socket) -> None:
    notifier = Notifier()
    assert notifier.enabled
    notifier.ready()
    notifier.watchdog()
    notifier.status("mood happy (0.87), 1.0 fps")
    notifier.stopping()
    assert _receive_all(listener) == ["READY=1", "WATCHDOG=1", "STATUS=mood happy (0.87), 1.0 fps", "STOPPING=1"]


def test_status_stays_one_line(listener: socket.socket) -> None:
    Notifier().status("camera lost\nretrying")
    assert _receive_all(listener) == ["STATUS=camera lost retrying"]


def test_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"edgemood-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        Notifier().ready()
        assert _receive_all(sock) == ["READY=1"]


def test_without_notify_socket_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.ready()
    notifier.watchdog()
    notifier.status("x")
    notifier.stopping()


def test_a_vanished_socket_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    notifier = Notifier()
    notifier.watchdog()
    notifier.watchdog()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "WATCHDOG" in warnings[0].getMessage()


def test_a_garbled_notify_socket_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "not-a-path")
    assert not Notifier().enabled


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("20000000", None, 10.0),
        ("20000000", "self", 10.0),
        ("3000000", "other", None),
        ("0", None, None),
        ("soon", None, None),
        (None, None, None),
    ],
)
def test_watchdog_interval_is_half_the_period(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, expected: float | None
) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            value = {"self": str(os.getpid()), "other": str(os.getpid() + 1)}.get(value, value)
            monkeypatch.setenv(name, value)
    assert Notifier().watchdog_interval() == expected
