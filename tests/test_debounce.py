"""Mood debouncer: timestamped sequences in, exact switch times out."""

from __future__ import annotations

import numpy as np
import pytest

from edgemood.classes import ABSENT, CLASSES, UNCERTAIN
from edgemood.config import MoodConfig
from edgemood.mood.debounce import MoodDebouncer

#: No smoothing, so each frame's numbers are the EMA and times are easy to read.
CRISP = MoodConfig(smoothing=1.0, enter_threshold=0.45, min_dwell_s=3.0, absent_after_s=10.0, hysteresis=0.1)


def probs(**weights: float) -> np.ndarray:
    """Named class weights; the rest share what is left of 1 equally."""
    rest = (1.0 - sum(weights.values())) / (len(CLASSES) - len(weights))
    return np.array([weights.get(name, rest) for name in CLASSES])


def feed(debouncer: MoodDebouncer, frames: list[tuple[float, np.ndarray | None]]) -> list[tuple[float, str, str]]:
    """Every emitted change as (time, from, to)."""
    changes = []
    for now, frame in frames:
        change = debouncer.update(now, frame)
        if change is not None:
            assert change.at == now and change.current.since == now
            changes.append((change.at, change.previous, change.current.mood))
    return changes


def steady(start: int, stop: int, frame: np.ndarray | None) -> list[tuple[float, np.ndarray | None]]:
    """One frame per second from start to stop-1."""
    return [(float(t), frame) for t in range(start, stop)]


HAPPY = probs(happy=0.9)
SAD = probs(sad=0.9)


def test_starts_uncertain_at_construction_time() -> None:
    state = MoodDebouncer(MoodConfig(), now=100.0).state
    assert (state.mood, state.since, state.confidence) == (UNCERTAIN, 100.0, 0.0)
    assert state.probabilities == dict.fromkeys(CLASSES, 0.0)


def test_new_mood_is_accepted_after_the_dwell_with_default_settings() -> None:
    debouncer = MoodDebouncer(MoodConfig(), now=0.0)
    assert feed(debouncer, steady(0, 6, HAPPY)) == [(3.0, UNCERTAIN, "happy")]
    assert debouncer.state.since == 3.0
    assert debouncer.state.confidence == pytest.approx(0.9)


def test_smoothing_delays_a_mood_that_starts_weak() -> None:
    # EMA of happy with s=0.5 from an even start: 0.125, 0.3125, 0.40625, 0.453125 (>= 0.45 at t=3)
    debouncer = MoodDebouncer(MoodConfig(), now=0.0)
    frames = [(0.0, probs())] + steady(1, 8, probs(happy=0.5))
    assert feed(debouncer, frames) == [(6.0, UNCERTAIN, "happy")]


def test_a_changing_target_restarts_the_dwell() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    frames = steady(0, 2, HAPPY) + [(2.0, SAD)] + steady(3, 8, HAPPY)
    assert feed(debouncer, frames) == [(6.0, UNCERTAIN, "happy")]


def test_zero_dwell_switches_on_the_first_confident_frame() -> None:
    debouncer = MoodDebouncer(MoodConfig(smoothing=1.0, min_dwell_s=0.0), now=0.0)
    changes = feed(debouncer, [(0.0, probs()), (1.0, HAPPY), (2.0, SAD)])
    assert changes == [(1.0, UNCERTAIN, "happy"), (2.0, "happy", "sad")]


CLOSE = [probs(happy=0.5, sad=0.45), probs(happy=0.45, sad=0.5), probs(happy=0.42, sad=0.5)]


def test_two_close_classes_do_not_flicker_even_without_dwell() -> None:
    debouncer = MoodDebouncer(MoodConfig(smoothing=1.0, min_dwell_s=0.0, hysteresis=0.1), now=0.0)
    frames = [(0.0, HAPPY)] + [(1.0 + i, CLOSE[i % 3]) for i in range(12)]
    assert feed(debouncer, frames) == [(0.0, UNCERTAIN, "happy")]


def test_without_hysteresis_close_classes_do_flicker() -> None:
    debouncer = MoodDebouncer(MoodConfig(smoothing=1.0, min_dwell_s=0.0, hysteresis=0.0), now=0.0)
    frames = [(0.0, HAPPY)] + [(1.0 + i, CLOSE[i % 3]) for i in range(3)]
    assert feed(debouncer, frames) == [(0.0, UNCERTAIN, "happy"), (2.0, "happy", "sad")]


def test_close_classes_with_dwell_keep_the_mood() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    frames = steady(0, 4, HAPPY) + [(4.0 + i, CLOSE[i % 3]) for i in range(20)]
    assert feed(debouncer, frames) == [(3.0, UNCERTAIN, "happy")]


def test_a_clear_challenger_wins_after_the_dwell() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    frames = steady(0, 4, HAPPY) + steady(4, 10, probs(happy=0.3, sad=0.6))
    assert feed(debouncer, frames) == [(3.0, UNCERTAIN, "happy"), (7.0, "happy", "sad")]


def test_current_mood_holds_just_below_the_enter_threshold() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    frames = steady(0, 4, HAPPY) + steady(4, 20, probs(happy=0.4))
    assert feed(debouncer, frames) == [(3.0, UNCERTAIN, "happy")]
    assert debouncer.state.confidence == pytest.approx(0.4)


def test_uncertain_after_nothing_is_confident_for_the_dwell() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    frames = steady(0, 4, HAPPY) + steady(4, 10, probs(happy=0.3))
    assert feed(debouncer, frames) == [(3.0, UNCERTAIN, "happy"), (7.0, "happy", UNCERTAIN)]
    assert debouncer.state.confidence == 0.0


def test_frames_without_a_face_neither_reset_nor_complete_the_dwell() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    frames = [(0.0, HAPPY), (1.0, None), (2.0, None), (3.0, None), (3.5, None), (4.0, HAPPY)]
    assert feed(debouncer, frames) == [(4.0, UNCERTAIN, "happy")]


def test_absent_after_the_configured_time_without_a_face() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    frames = steady(0, 6, HAPPY) + steady(6, 20, None)
    assert feed(debouncer, frames) == [(3.0, UNCERTAIN, "happy"), (15.0, "happy", ABSENT)]
    state = debouncer.state
    assert (state.mood, state.confidence, state.since) == (ABSENT, 0.0, 15.0)
    assert state.probabilities == dict.fromkeys(CLASSES, 0.0)


def test_absent_from_the_start_counts_from_construction() -> None:
    debouncer = MoodDebouncer(CRISP, now=5.0)
    assert feed(debouncer, steady(5, 30, None)) == [(15.0, UNCERTAIN, ABSENT)]


def test_faces_that_come_and_go_again_while_absent_emit_nothing_twice() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    frames = steady(0, 12, None) + [(12.0, HAPPY)] + steady(13, 30, None)
    assert feed(debouncer, frames) == [(10.0, UNCERTAIN, ABSENT)]


def test_ema_restarts_after_absent() -> None:
    debouncer = MoodDebouncer(MoodConfig(), now=0.0)
    frames = steady(0, 5, HAPPY) + steady(5, 15, None) + [(15.0, SAD)]
    assert feed(debouncer, frames) == [(3.0, UNCERTAIN, "happy"), (14.0, "happy", ABSENT)]
    assert debouncer.state.probabilities == pytest.approx(dict(zip(CLASSES, SAD)))
    assert feed(debouncer, steady(16, 20, SAD)) == [(18.0, ABSENT, "sad")]


def test_force_pins_immediately_and_release_resumes_from_the_ema() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    assert feed(debouncer, steady(0, 4, HAPPY)) == [(3.0, UNCERTAIN, "happy")]
    change = debouncer.force("fear", now=4.5)
    assert change is not None and (change.previous, change.current.mood, change.at) == ("happy", "fear", 4.5)
    assert feed(debouncer, steady(5, 15, SAD)) == []
    assert debouncer.state.mood == "fear"
    release = debouncer.force(None, now=15.5)
    assert release is not None and (release.previous, release.current.mood, release.at) == ("fear", "sad", 15.5)
    assert feed(debouncer, steady(16, 20, HAPPY)) == [(19.0, "sad", "happy")]


def test_force_to_the_current_mood_and_repeated_release_emit_nothing() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    feed(debouncer, steady(0, 4, HAPPY))
    assert debouncer.force(None, now=4.0) is None
    assert debouncer.force("happy", now=4.0) is None
    assert debouncer.force(None, now=5.0) is None
    assert debouncer.force(None, now=6.0) is None


def test_repeated_release_does_not_skip_the_dwell() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    feed(debouncer, [(0.0, HAPPY)])
    assert debouncer.force(None, now=0.5) is None
    assert feed(debouncer, steady(1, 4, HAPPY)) == [(3.0, UNCERTAIN, "happy")]


def test_absence_while_forced_shows_on_release() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    debouncer.force("neutral", now=0.0)
    assert feed(debouncer, [(1.0, HAPPY)] + steady(2, 20, None)) == []
    release = debouncer.force(None, now=20.0)
    assert release is not None and release.current.mood == ABSENT


def test_release_without_confident_class_is_uncertain() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    debouncer.force("sad", now=0.0)
    feed(debouncer, [(1.0, probs())])
    release = debouncer.force(None, now=2.0)
    assert release is not None and release.current.mood == UNCERTAIN


def test_input_is_normalised() -> None:
    debouncer = MoodDebouncer(CRISP, now=0.0)
    debouncer.update(0.0, np.eye(len(CLASSES))[CLASSES.index("happy")] * 3)
    assert debouncer.state.probabilities["happy"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad",
    [np.ones(3), np.full(len(CLASSES), np.nan), -np.ones(len(CLASSES)), np.zeros(len(CLASSES))],
    ids=["shape", "nan", "negative", "zero"],
)
def test_bad_probabilities_are_rejected(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="probabilities"):
        MoodDebouncer(CRISP, now=0.0).update(0.0, bad)


def test_forcing_an_unknown_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="joy"):
        MoodDebouncer(CRISP, now=0.0).force("joy", now=0.0)
