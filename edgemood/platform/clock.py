"""Time for the daemon: durations from the monotonic clock, dates from the wall clock.

A Raspberry Pi has no real-time clock: at boot the wall clock jumps by hours
when NTP syncs, and it can step back. Every duration (dwell, absent, holds,
backoff, rate limits, stats windows) is measured on ``monotonic``; the wall
clock is read only to date a payload (``since``, ``at``), converted at the
moment of publishing, so a step of the wall clock moves dates but never
stretches or freezes a timer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    """The two clocks the daemon reads; tests inject both."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time  # wall: dates payloads only

    def wall_time_of(self, instant: float) -> float:
        """The wall-clock time (epoch seconds) of a past ``monotonic`` instant, as the wall clock reads now."""
        return self.wall() - (self.monotonic() - instant)


class RateLimit:
    """``due()`` is true at most once per ``period_s`` (monotonic): one home for "log once a minute"."""

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._period_s = period_s
        self._clock = clock
        self._next = float("-inf")

    def due(self) -> bool:
        """True (and start a new period) when the last true answer is at least a period ago."""
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._period_s
        return True
