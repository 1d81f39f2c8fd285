"""Waking the daemon's loop from a signal handler or another thread, without a lock.

A Python signal handler runs in the main thread between two bytecodes, possibly
while that thread holds a lock inside ``threading.Event``; a handler that then
sets the same Event waits for itself forever (a second SIGTERM during shutdown
did exactly that). A byte written to a pipe takes no lock, so it is safe from
a handler and from any thread alike.
"""

from __future__ import annotations

import os
import select


class Wakeup:
    """``set()`` from anywhere; the loop sleeps in ``wait(timeout)`` until then."""

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def set(self) -> None:
        """Wake the waiting loop (a full pipe means a wake-up is pending already)."""
        try:
            os.write(self._write_fd, b"\0")
        except (BlockingIOError, OSError):
            pass

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s or until ``set()``; True if woken. Pending wake-ups are consumed."""
        ready, _, _ = select.select([self._read_fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            while os.read(self._read_fd, 4096):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        """Release the pipe."""
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
