"""Keeping the loop going while the camera fails or stalls.

``RetryingSource`` reopens a failing source after a backoff and never raises;
``ThreadedSource`` reads a slow (network) source on its own thread so the
loop never waits on it for more than a moment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgemood.platform.backoff import FIRST_S, LONGEST_S, Backoff
from edgemood.sources.devices import FrameSource, SourceFinished

log = logging.getLogger(__name__)


class RetryingSource:
    """A source that survives its camera going away.

    ``read`` returns a frame or ``None`` and never raises: on a failure it
    closes the source and only builds and opens a new one (``source_factory``)
    after an exponential, jittered backoff, so the daemon loop keeps ticking,
    publishing and feeding the watchdog meanwhile.
    """

    def __init__(
        self,
        source_factory: Callable[[], FrameSource],
        clock: Callable[[], float] = time.monotonic,
        backoff: tuple[float, float] = (FIRST_S, LONGEST_S),
    ) -> None:
        self._backoff = Backoff(*backoff)
        self._factory = source_factory
        self._clock = clock
        self._source: FrameSource | None = None
        self._retry_at = float("-inf")
        self.failures = 0
        self.last_error: str | None = None
        self.finished = False

    def read(self) -> np.ndarray | None:
        """A frame, or ``None`` while the source is failing, waiting to reopen, or finished."""
        if self.finished:
            return None
        if self._source is None:
            if self._clock() < self._retry_at:
                return None
            try:
                source = self._factory()
                source.open()
            except Exception as exc:  # whatever a camera stack raises, the loop must go on
                self._fail(str(exc))
                return None
            self._source = source
        try:
            frame = self._source.read()
        except SourceFinished as exc:
            log.info("%s; the source is finished (loop = false)", exc)
            self.finished = True
            self._release()
            return None
        except Exception as exc:  # see above
            self._fail(str(exc))
            return None
        if not isinstance(frame, np.ndarray) or frame.size == 0:
            self._fail(f"{self._source.name}: empty frame")
            return None
        if self.failures:
            log.info("%s: frames again after %d failure(s)", self._source.name, self.failures)
            self.failures = 0
        return frame

    def health(self) -> dict[str, Any]:
        """For ``doctor``, the stats message and STATUS=: is the camera delivering?"""
        waiting = self._source is None and self.failures > 0 and not self.finished
        return {
            "state": "finished" if self.finished else "retrying" if waiting else "ok",
            "ok": self._source is not None and self.failures == 0,
            "failures": self.failures,
            "last_error": self.last_error,
            "retry_in_s": max(0.0, self._retry_at - self._clock()) if waiting else None,
        }

    def close(self) -> None:
        """Release the source now (it is reopened by the next ``read``)."""
        self._release()
        self._retry_at = float("-inf")

    def _fail(self, error: str) -> None:
        self._release()
        self.failures += 1
        self.last_error = error
        delay = self._backoff.delay(self.failures)
        self._retry_at = self._clock() + delay
        log.warning("camera: %s (failure %d, retrying in %.1f s)", error, self.failures, delay)

    def _release(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            try:
                source.close()
            except Exception as exc:  # a dying device may fail to close; it is dropped either way
                log.debug("closing %s failed: %s", source.name, exc)


class ThreadedSource:
    """Opens and reads a source on its own thread, so a stalled one never stalls the loop.

    A network stream whose server accepts the connection but never answers
    blocks OpenCV for up to its open and read timeouts (about 10 s). Here the
    loop asks for a frame and waits at most ``wait_s``; a read that takes
    longer finishes in the background and its frame, the latest one, is handed
    over at the next ask. Meanwhile the loop keeps its pace, feeds the
    watchdog, answers commands and stops on SIGTERM in time.
    """

    def __init__(self, inner: RetryingSource, wait_s: float) -> None:
        self._inner = inner
        self._wait_s = wait_s
        self._changed = threading.Condition()
        self._wanted = False
        self._busy = False
        self._closed = False
        self._frame: np.ndarray | None = None
        self._thread = threading.Thread(target=self._serve, name="edgemood-source", daemon=True)
        self._thread.start()

    def read(self) -> np.ndarray | None:
        """The newest frame read since the last call, waiting at most ``wait_s``; else None."""
        with self._changed:
            if self._frame is None and not self._busy:
                self._wanted = True
                self._changed.notify_all()
            self._changed.wait_for(lambda: self._frame is not None or self._closed, self._wait_s)
            frame, self._frame = self._frame, None
        return frame

    def health(self) -> dict[str, Any]:
        """The inner source's health, plus whether a read is under way right now."""
        return {**self._inner.health(), "reading": self._busy}

    def close(self) -> None:
        """Stop the reader; a read stuck in the network is left to end on its own (daemon thread)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout=self._wait_s)

    def _serve(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._wanted or self._closed)
                if self._closed:
                    break
                self._wanted, self._busy = False, True
            try:
                frame = self._inner.read()
            except Exception:  # RetryingSource never raises; if it ever does, say so and go on
                log.exception("camera: reading failed unexpectedly")
                frame = None
            with self._changed:
                self._busy = False
                if frame is not None:
                    self._frame = frame
                self._changed.notify_all()
        self._inner.close()
