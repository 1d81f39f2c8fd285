"""The shared retry delay: doubling from the first to the longest, jittered within the upper half."""

from __future__ import annotations

import pytest

from edgemood.platform.backoff import FIRST_S, LONGEST_S, Backoff


def test_backoff_doubles_to_the_cap_within_its_jitter():
    backoff = Backoff(1.0, 30.0)
    assert [backoff.delay(n, rng=lambda: 1.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert [backoff.delay(n, rng=lambda: 0.0) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 15, 15]


def test_the_default_jitter_stays_in_the_upper_half_of_each_step():
    backoff = Backoff()
    for failures in range(1, 10):
        step = min(LONGEST_S, FIRST_S * 2 ** (failures - 1))
        assert step / 2 <= backoff.delay(failures) <= step


def test_the_defaults_are_whole_seconds_for_paho():
    assert (Backoff().first, Backoff().longest) == (FIRST_S, LONGEST_S) == (1, 30)
    assert isinstance(FIRST_S, int) and isinstance(LONGEST_S, int)


@pytest.mark.parametrize("bounds", [(5.0, 1.0), (0.0, 1.0), (-1.0, 1.0)])
def test_bounds_out_of_order_are_refused(bounds):
    with pytest.raises(ValueError, match="backoff"):
        Backoff(*bounds)
