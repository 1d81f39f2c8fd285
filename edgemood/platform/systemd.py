"""Tell systemd how the daemon is doing (``Type=notify``, ``WatchdogSec=``).

systemd-python's ``sd_notify`` is used when it is installed; otherwise the
documented ``$NOTIFY_SOCKET`` datagram protocol is spoken directly, since it
is one ``sendto``. Outside systemd (no ``$NOTIFY_SOCKET``) every call is a
no-op, so the daemon needs no special case for a terminal.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

try:
    from systemd.daemon import notify as _sd_notify
except ImportError:
    _sd_notify = None


class Notifier:
    """sd_notify messages: READY, WATCHDOG, STATUS and STOPPING.

    The socket address is read from the environment once, at construction.
    A failed send is logged once and otherwise ignored: losing a status line
    must not take the daemon down (a missed watchdog ping is systemd's call).
    """

    def __init__(self) -> None:
        self._address = _socket_address(os.environ.get("NOTIFY_SOCKET", ""))
        self._send: Callable[[str], object] = _sd_notify if _sd_notify is not None else self._sendto
        self._warned = False

    @property
    def enabled(self) -> bool:
        """Whether systemd is listening (the service runs with ``Type=notify``)."""
        return self._address is not None

    def ready(self) -> None:
        """Start-up is done: model and camera are open."""
        self._notify("READY=1")

    def watchdog(self) -> None:
        """The main loop is alive; call at least every ``watchdog_interval()`` s."""
        self._notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        """One line shown by ``systemctl status`` (newlines would end the field)."""
        self._notify("STATUS=" + " ".join(text.splitlines()))

    def reloading(self) -> None:
        """A configuration reload has begun (``ExecReload=``); ``ready()`` ends it."""
        self._notify("RELOADING=1")

    def stopping(self) -> None:
        """A clean shutdown has begun."""
        self._notify("STOPPING=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of ``WatchdogSec=``), or None if off.

        ``$WATCHDOG_PID``, when set, must be our pid: otherwise the variables
        were inherited from a parent that systemd is watching instead.
        """
        pid = os.environ.get("WATCHDOG_PID")
        if pid is not None and pid.strip() != str(os.getpid()):
            return None
        try:
            usec = int(os.environ.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        return usec / 2e6 if usec > 0 else None

    def _notify(self, message: str) -> None:
        if self._address is None:
            return
        try:
            self._send(message)
        except OSError as exc:  # systemd-python raises too, rather than returning False
            if not self._warned:
                self._warned = True
                log.warning("systemd notification %s was not delivered: %s", message.partition("=")[0], exc)

    def _sendto(self, message: str) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode("utf-8"), self._address)


def _socket_address(value: str) -> str | None:
    """An AF_UNIX address from ``$NOTIFY_SOCKET``; ``@name`` is the abstract namespace."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    if value:
        log.warning("ignoring NOTIFY_SOCKET=%r: not a unix socket path", value)
    return None
