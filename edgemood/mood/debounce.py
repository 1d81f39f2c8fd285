"""Turns noisy per-frame class probabilities into a calm, published mood.

Music that changes on every blink is worse than no automation, so a mood only
changes when the evidence is strong, clear and lasting. Pure logic: the caller
passes the timestamps, so the same sequence always gives the same switches.

Semantics (defaults from ``MoodConfig``, and why):

* **Smoothing.** Each frame with a face updates an exponential moving average
  of the class probabilities: ``ema = s * p + (1 - s) * ema`` with
  ``s = smoothing`` (0.5: at 1 frame/s the EMA reflects the last 2-3 s, so one
  misread frame is outweighed while a real change shows within seconds). Input
  probabilities are normalised to sum 1. The first face after ``absent`` (or
  at start) starts the EMA afresh from that frame.
* **Target.** From ``uncertain``/``absent`` the target is the EMA's top class if
  it reaches ``enter_threshold`` (0.45: well above the 1/8 of an undecided
  model, so only a dominant class counts), else ``uncertain``. From a class ``c``
  the target is a challenger ``k`` only when ``ema[k] >= enter_threshold`` and
  ``ema[k] >= ema[c] + hysteresis`` (0.1: two close classes don't flicker);
  ``c`` is kept while ``ema[c] >= enter_threshold - hysteresis``; otherwise the
  target is ``uncertain``.
* **Dwell.** A target different from the current mood must stay the target on
  every face frame for ``min_dwell_s`` (3 s: three samples at the default
  interval; a song switch should feel deliberate). The switch is emitted on
  the first face frame at which ``now - first_seen >= min_dwell_s``; a change
  of target restarts the clock. Frames without a face neither advance nor
  reset it, and never cause a switch other than to ``absent``.
* **Absent.** On a frame without a face, if the last face frame (or the
  start) is at least ``absent_after_s`` ago (10 s: looking away or reaching
  for a cup keeps the music), the mood becomes ``absent`` at once and the EMA
  and any pending target are dropped.
* **Force.** ``force(mood)`` pins any of ``MOODS`` immediately (emitting a
  change if it differs) until ``force(None)``. While pinned the EMA and the
  absence timer keep running but no automatic switch happens. Release
  re-evaluates at once, without dwell (the user asked for automatic mood
  now): ``absent`` if no face for ``absent_after_s``, else the top class if it
  reaches ``enter_threshold``, else ``uncertain``. Releasing when nothing is
  pinned does nothing, so a repeated ``auto`` cannot skip a dwell.
* **State.** ``probabilities`` is the smoothed distribution (all 0 while there
  is none, e.g. absent); ``confidence`` is the smoothed probability of the
  current mood when it is a class, 0 for ``absent``/``uncertain``; ``since`` is
  when the current mood was entered (``uncertain`` at the constructor's ``now``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemood.classes import ABSENT, CLASSES, MOODS, UNCERTAIN
from edgemood.config import MoodConfig


@dataclass(frozen=True)
class MoodState:
    """The published mood; ``since`` = when it was entered, in the caller's clock (the daemon
    passes monotonic seconds and dates payloads itself); ``forced``: pinned by ``force``."""

    mood: str
    confidence: float
    probabilities: dict[str, float]
    since: float
    forced: bool = False


@dataclass(frozen=True)
class MoodChange:
    """A debounced switch from ``previous`` to ``current.mood`` at ``at``."""

    previous: str
    current: MoodState
    at: float


class MoodDebouncer:
    """Feed it every sampled frame's probabilities (or ``None``: no face)."""

    def __init__(self, settings: MoodConfig, now: float) -> None:
        self._settings = settings
        self._ema: np.ndarray | None = None
        self._mood = UNCERTAIN
        self._since = now
        self._last_face = now
        self._target: str | None = None
        self._target_since = now
        self._forced = False

    @property
    def state(self) -> MoodState:
        """The current mood with the latest smoothed probabilities."""
        ema = self._ema if self._ema is not None else np.zeros(len(CLASSES))
        confidence = float(ema[CLASSES.index(self._mood)]) if self._mood in CLASSES else 0.0
        return MoodState(self._mood, confidence, dict(zip(CLASSES, map(float, ema))), self._since, self._forced)

    def update(self, now: float, probabilities: np.ndarray | None) -> MoodChange | None:
        """Account for one frame; return the change it causes, if any."""
        if probabilities is None:
            if now - self._last_face < self._settings.absent_after_s:
                return None
            self._ema, self._target = None, None
            return None if self._forced or self._mood == ABSENT else self._switch(ABSENT, now)
        self._smooth(normalised(probabilities))
        self._last_face = now
        if self._forced:
            return None
        target = self._automatic_target()
        if target == self._mood:
            self._target = None
            return None
        if target != self._target:
            self._target, self._target_since = target, now
        if now - self._target_since >= self._settings.min_dwell_s:
            return self._switch(target, now)
        return None

    def force(self, mood: str | None, now: float) -> MoodChange | None:
        """Pin ``mood`` (a class, ``absent`` or ``uncertain``), or release with ``None``."""
        if mood is not None and mood not in MOODS:
            raise ValueError(f"cannot force mood {mood!r}; expected one of {', '.join(MOODS)}")
        if mood is None and not self._forced:
            return None  # already automatic: a repeated "auto" must not skip the dwell
        self._forced, self._target = mood is not None, None
        if mood is None:
            absent = self._ema is None and now - self._last_face >= self._settings.absent_after_s
            mood = ABSENT if absent else self._entry_target()
        return None if mood == self._mood else self._switch(mood, now)

    def _smooth(self, probabilities: np.ndarray) -> None:
        weight = self._settings.smoothing
        self._ema = probabilities if self._ema is None else weight * probabilities + (1 - weight) * self._ema

    def _entry_target(self) -> str:
        """Target when no class is current: the top class if confident enough."""
        if self._ema is None:
            return UNCERTAIN
        top = int(np.argmax(self._ema))
        return CLASSES[top] if self._ema[top] >= self._settings.enter_threshold else UNCERTAIN

    def _automatic_target(self) -> str:
        if self._mood not in CLASSES:
            return self._entry_target()
        assert self._ema is not None  # a class is only entered with an EMA, which lives until absent
        threshold, margin = self._settings.enter_threshold, self._settings.hysteresis
        top = int(np.argmax(self._ema))
        held = self._ema[CLASSES.index(self._mood)]
        if CLASSES[top] != self._mood and self._ema[top] >= threshold and self._ema[top] >= held + margin:
            return CLASSES[top]
        return self._mood if held >= threshold - margin else UNCERTAIN

    def _switch(self, mood: str, now: float) -> MoodChange:
        previous = self._mood
        self._mood, self._since, self._target = mood, now, None
        return MoodChange(previous, self.state, now)


def normalised(probabilities: np.ndarray) -> np.ndarray:
    """Validated copy summing to 1; a wrong shape or values are a caller bug."""
    values = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if values.shape != (len(CLASSES),) or not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
        raise ValueError(f"expected {len(CLASSES)} non-negative finite probabilities, got {probabilities!r}")
    return values / values.sum()
