"""Running counters for the ``stats`` topic, STATUS= and ``edgemood doctor``.

Latencies are medians over the current reporting window so one slow frame
doesn't hide in a mean; CPU is process time over wall time, the figure a user
compares with ``top``.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable

#: Per-stage timings kept per window: the medians come from the newest this many frames,
#: so memory stays flat whatever the frame rate and ``stats_interval_s``.
WINDOW_TIMINGS = 512


def rss_bytes() -> int:
    """Resident set size now (``/proc``), falling back to the peak from getrusage."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class StatsCollector:
    """Frames, faces and stage timings since the last ``snapshot``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, cpu_clock: Callable[[], float] = time.process_time):
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._started = clock()
        self.frames_total = 0
        self.faces_total = 0
        self._reset_window()

    def _reset_window(self) -> None:
        self._window_start = self._clock()
        self._window_cpu = self._cpu_clock()
        self._frames = 0
        self._timings: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=WINDOW_TIMINGS))

    def record(self, faces: int, timings: dict[str, float]) -> None:
        """Account one analysed frame and its per-stage seconds."""
        self.frames_total += 1
        self.faces_total += faces
        self._frames += 1
        total = 0.0
        for stage, seconds in timings.items():
            self._timings[stage].append(seconds)
            total += seconds
        self._timings["pipeline"].append(total)

    def fps(self) -> float:
        """Frames per second in the current window."""
        elapsed = self._clock() - self._window_start
        return self._frames / elapsed if elapsed > 0 else 0.0

    def snapshot(self, reset: bool = True) -> dict:
        """The ``stats`` payload fields; starts a new window unless ``reset`` is False."""
        now = self._clock()
        elapsed = max(1e-9, now - self._window_start)
        data = {
            "frames": self.frames_total,
            "faces": self.faces_total,
            "fps": round(self._frames / elapsed, 2),
            "latency_ms": {
                stage: round(statistics.median(values) * 1000, 2) for stage, values in sorted(self._timings.items())
            },
            "cpu_percent": round(100 * (self._cpu_clock() - self._window_cpu) / elapsed, 1),
            "rss_mb": round(rss_bytes() / 2**20, 1),
            "uptime_s": round(now - self._started, 1),
        }
        if reset:
            self._reset_window()
        return data
