"""Reading another process's CPU time and memory from ``/proc``: for the tests,
``scripts/bench.py`` and ``scripts/soak.py``, which watch the daemon from outside."""

from __future__ import annotations

import os


def process_status_kib(pid: int, key: str) -> int | None:
    """A kB field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM`` the peak), or None if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (``/proc/<pid>/stat``), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # after the command name: state is field 3, utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
