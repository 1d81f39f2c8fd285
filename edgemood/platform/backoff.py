"""How long to wait before retrying something that failed: one rule for the camera, MPD and MQTT.

The delay doubles with each failure in a row, from ``first`` up to
``longest``, so a short glitch is retried at once and a long outage costs
little. Each delay is drawn from the upper half of its step (jitter), so that
several daemons, or cameras behind one switch, do not hammer a restarted
server in step. MQTT's reconnects are made by paho, which takes only the
bounds (``reconnect_delay_set``); it gets them from here, as whole seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

#: The first retry's delay (s); whole seconds, as paho's ``reconnect_delay_set`` takes.
FIRST_S = 1
#: The longest delay (s) however many failures came before.
LONGEST_S = 30


@dataclass(frozen=True)
class Backoff:
    """The exponential, jittered delay before the retry after ``failures`` failures in a row."""

    first: float = FIRST_S
    longest: float = LONGEST_S

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.longest:
            raise ValueError(f"backoff ({self.first}, {self.longest}) must be 0 < first <= longest")

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1 for the first).

        ``rng`` returns a number in [0, 1); 0 gives half the step, 1 the whole.
        """
        step = min(self.longest, self.first * 2 ** max(0, failures - 1))
        return step * (0.5 + rng() / 2)
