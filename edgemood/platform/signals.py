"""What SIGTERM, SIGINT and SIGHUP ask of the daemon, recorded where a handler may touch it.

A handler runs between two bytecodes of the main thread, so it only sets plain
flags and writes to the loop's wake-up pipe (``Wakeup``): it takes no lock.
The loop reads the flags at its next wake-up.
"""

from __future__ import annotations

import signal

from edgemood.platform.wakeup import Wakeup

#: The signals that end the daemon (exit 0).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ServiceSignals:
    """Stop and reload requests, from signal handlers or from other code (tests, commands)."""

    def __init__(self, wake: Wakeup):
        self._wake = wake
        self.stop_requested = False
        self.reload_requested = False
        #: the name of the signal that stopped the daemon, for the last log line
        self.stop_signal: str | None = None

    def install(self) -> None:
        """SIGTERM/SIGINT end the loop at once; SIGHUP reloads the configuration.

        A second SIGTERM while stopping changes nothing: the stop already under
        way finishes and the exit code stays 0.
        """
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)

    def request_stop(self) -> None:
        """End the loop at its next wake-up; safe to call again."""
        self.stop_requested = True
        self._wake.set()

    def ignore_after_stop(self) -> None:
        """After a stop by signal: ignore any further one.

        Python restores the default handlers while it finalizes, when one more
        SIGTERM would still kill the process: the stop is done, so ignore it.
        """
        if self.stop_signal is not None:
            for sig in (*STOP_SIGNALS, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        if self.stop_signal is None:
            self.stop_signal = signal.Signals(signum).name
        self.request_stop()

    def _on_reload_signal(self, signum: int, frame: object) -> None:
        self.reload_requested = True
        self._wake.set()
