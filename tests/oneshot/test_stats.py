"""Kendall tau-b and Spearman rho against hand-computed values, and against scipy when present."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot.stats import average_ranks, kendall_tau_b, spearman_rho


def test_average_ranks_share_ties():
    assert average_ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_hand_computed_without_ties():
    # pairs of (x, y): concordant 7, discordant 3 -> tau = (7 - 3) / 10;
    # rank differences -2, 1, 1, -1, 1 -> rho = 1 - 6 * 8 / (5 * 24) = 0.6
    x, y = [1, 2, 3, 4, 5], [3, 1, 2, 5, 4]
    assert kendall_tau_b(x, y) == pytest.approx(0.4)
    assert spearman_rho(x, y) == pytest.approx(0.6)


def test_hand_computed_with_ties():
    # x ties one pair, y ties another; C = 3, D = 1 -> tau_b = 2 / sqrt((6 - 1) * (6 - 1)) = 0.4.
    # average ranks x: 1, 2.5, 2.5, 4; y: 1, 4, 2.5, 2.5 -> centred dot 2.25, norms 4.5 -> rho = 0.5
    x, y = [1, 2, 2, 3], [1, 3, 2, 2]
    assert kendall_tau_b(x, y) == pytest.approx(0.4)
    assert spearman_rho(x, y) == pytest.approx(0.5)


def test_extremes_and_undefined():
    assert kendall_tau_b([1, 2, 3], [4, 5, 6]) == pytest.approx(1.0)
    assert spearman_rho([1, 2, 3], [6, 5, 4]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman_rho([1, 2, 3], [7, 7, 7]))
    assert math.isnan(kendall_tau_b([1], [2]))
    with pytest.raises(ValueError, match="same length"):
        kendall_tau_b([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        spearman_rho([1, float("nan")], [1, 2])


values = st.lists(st.integers(-3, 3), min_size=3, max_size=25)


@pytest.mark.filterwarnings("ignore:An input array is constant")
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_matches_scipy(data):
    scipy_stats = pytest.importorskip("scipy.stats", reason="scipy (reference implementation) is not installed")
    x = data.draw(values)
    y = data.draw(st.lists(st.integers(-3, 3), min_size=len(x), max_size=len(x)))
    ref_tau = scipy_stats.kendalltau(x, y).statistic
    ref_rho = scipy_stats.spearmanr(x, y).statistic
    for ours, ref in ((kendall_tau_b(x, y), ref_tau), (spearman_rho(x, y), ref_rho)):
        if np.isnan(ref):
            assert np.isnan(ours)
        else:
            assert ours == pytest.approx(ref, abs=1e-12)
