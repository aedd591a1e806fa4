"""Bootstrap intervals and the seed criterion against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot.stats import (
    bootstrap_ci,
    bootstrap_mean_ci,
    bootstrap_mean_difference_ci,
    bootstrap_paired_ci,
    seed_criterion,
)


def test_mean_interval_of_a_two_point_sample() -> None:
    # Resampled means of [0, 1] are 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4.
    ci = bootstrap_mean_ci([0.0, 1.0], seed=0)
    assert (ci.estimate, ci.low, ci.high) == (0.5, 0.0, 1.0)
    # the 40 % interval (quantiles 0.3 and 0.7) lies inside the mass at 1/2
    assert tuple(bootstrap_mean_ci([0.0, 1.0], level=0.4, seed=0)) == (0.5, 0.5)


def test_mean_interval_of_a_three_point_sample() -> None:
    # Means of [0, 0, 1] resampled: k/3 with k ~ Binomial(3, 1/3): P = 8, 12, 6, 1 (/27);
    # cumulative 0.296, 0.741, 0.963, 1 -> 80 % interval [0, 2/3], 95 % interval [0, 1].
    low, high = bootstrap_mean_ci([0.0, 0.0, 1.0], level=0.8, seed=1)
    assert low == 0.0 and high == pytest.approx(2 / 3)
    assert tuple(bootstrap_mean_ci([0.0, 0.0, 1.0], seed=1)) == (0.0, 1.0)


def test_difference_of_means() -> None:
    # x is constant; mean(y*) of y = [0, 2] is 0, 1, 2 w.p. 1/4, 1/2, 1/4 -> difference 1, 0, -1.
    ci = bootstrap_mean_difference_ci([1.0, 1.0], [0.0, 2.0], seed=0)
    assert (ci.estimate, ci.low, ci.high) == (0.0, -1.0, 1.0)
    assert tuple(bootstrap_mean_difference_ci([1.0, 1.0], [0.0, 2.0], level=0.4, seed=0)) == (0.0, 0.0)
    far = bootstrap_mean_difference_ci([10.0, 11.0, 12.0], [0.0, 1.0], seed=0)
    assert far.low > 0 and far.contains(far.estimate)


def test_paired_resampling_keeps_pairs_together() -> None:
    x = np.arange(6, dtype=float)
    # Resampled as pairs, x* == y* always; independent resampling would break it almost always.
    ci = bootstrap_paired_ci(x, x.copy(), lambda a, b: float(np.all(a == b)), seed=0)
    assert (ci.estimate, ci.low, ci.high) == (1.0, 1.0, 1.0)
    shift = bootstrap_paired_ci(x, x - 2.0, lambda a, b: float(np.mean(a - b)), seed=3)
    assert tuple(shift) == (2.0, 2.0)


def test_paired_statistic_undefined_on_ties_is_skipped() -> None:
    from oneshot.stats import kendall_tau_b

    ci = bootstrap_paired_ci([1, 2, 3, 4, 5], [1, 3, 2, 5, 4], kendall_tau_b, n_boot=2000, seed=0)
    assert ci.estimate == pytest.approx(0.6) and -1 <= ci.low <= ci.estimate <= ci.high <= 1


def test_same_seed_same_interval_and_checks() -> None:
    x = np.random.default_rng(0).normal(size=15)
    assert bootstrap_ci(x, np.median, seed=4) == bootstrap_ci(x, np.median, seed=4)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_mean_ci([])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_mean_ci([1.0, math.nan])
    with pytest.raises(ValueError, match="level"):
        bootstrap_mean_ci([1.0, 2.0], level=1.0)
    with pytest.raises(ValueError, match="equal lengths"):
        bootstrap_paired_ci([1.0], [1.0, 2.0], lambda a, b: 0.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=12), st.integers(0, 99))
def test_mean_interval_brackets_the_mean_within_the_sample_range(xs: list[float], seed: int) -> None:
    ci = bootstrap_mean_ci(xs, n_boot=500, seed=seed)
    assert min(xs) - 1e-9 <= ci.low <= ci.high <= max(xs) + 1e-9


def test_seed_criterion_hand_computed() -> None:
    # means 2 and 6: between sd sqrt(8); deviations +-1: pooled sd sqrt(4 / 2) -> ratio 2
    c = seed_criterion([[1.0, 3.0], [5.0, 7.0]])
    assert c.between_sd == pytest.approx(math.sqrt(8))
    assert c.within_sd == pytest.approx(math.sqrt(2))
    assert c.ratio == pytest.approx(2.0) and c.met(2.0) and not c.met(2.1)
    assert (c.archs, c.runs, c.mean) == (2, 4, 4.0)
    # unequal seed counts: SS = 2 over 2 + 0 degrees of freedom; means 2 and 10
    u = seed_criterion([[1.0, 2.0, 3.0], [10.0]])
    assert (u.within_sd, u.between_sd) == (pytest.approx(1.0), pytest.approx(math.sqrt(32)))


def test_seed_criterion_edge_cases() -> None:
    assert seed_criterion([[1.0, 1.0], [2.0, 2.0]]).ratio == math.inf
    with pytest.raises(ValueError, match="at least 2 architectures"):
        seed_criterion([[1.0, 2.0]])
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seed_criterion([[1.0], [2.0]])
