"""Dominance, non-dominated sets and hypervolume (hand-computed cases and brute force)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot.search.pareto import dominates, hypervolume, non_dominated

MAXMIN = ["maximize", "minimize"]


def test_dominance_with_mixed_directions():
    # (accuracy up, latency down)
    assert dominates([90, 10], [80, 20], MAXMIN)
    assert dominates([90, 10], [90, 20], MAXMIN)
    assert not dominates([90, 10], [90, 10], MAXMIN)
    assert not dominates([90, 30], [80, 20], MAXMIN)


def test_non_dominated_hand_case():
    points = [[90, 10], [80, 5], [85, 12], [95, 20], [70, 5], [95, 20]]
    # [85, 12] is dominated by [90, 10]; [70, 5] by [80, 5]; duplicates are both kept
    assert non_dominated(points, MAXMIN) == [0, 1, 3, 5]


def test_hypervolume_two_d_hand_computed():
    # maximise accuracy, minimise latency; reference (accuracy 0, latency 100)
    points = [[60, 10], [80, 40], [90, 70]]
    # slabs by accuracy: 0..60 x (100-10), 60..80 x (100-40), 80..90 x (100-70)
    expected = 60 * 90 + 20 * 60 + 10 * 30
    assert hypervolume(points, [0, 100], MAXMIN) == pytest.approx(expected)
    # a dominated point and one outside the reference box change nothing
    assert hypervolume(points + [[50, 50], [95, 120]], [0, 100], MAXMIN) == pytest.approx(expected)
    assert hypervolume([], [0, 100], MAXMIN) == 0.0


def test_hypervolume_three_d_hand_computed():
    # two boxes from the origin (minimisation, reference (4, 4, 4)): volumes 3*2*1 ... by hand
    points = [[1, 2, 3], [3, 1, 2]]
    # box A = [1,4]x[2,4]x[3,4] = 3*2*1 = 6; box B = [3,4]x[1,4]x[2,4] = 1*3*2 = 6
    # intersection = [3,4]x[2,4]x[3,4] = 1*2*1 = 2
    assert hypervolume(points, [4, 4, 4], ["minimize"] * 3) == pytest.approx(10.0)


def _brute_force_hv(points: np.ndarray, ref: np.ndarray) -> int:
    """Count unit cells [c, c+1)^d below ref dominated by some point (integer minimisation points)."""
    count = 0
    for cell in itertools.product(*(range(int(r)) for r in ref)):
        c = np.array(cell)
        if any(np.all(p <= c) for p in points):
            count += 1
    return count


@settings(max_examples=40, deadline=None)
@given(
    dim=st.integers(2, 4),
    data=st.data(),
)
def test_hypervolume_matches_brute_force(dim, data):
    n = data.draw(st.integers(0, 7))
    points = np.array(
        [data.draw(st.lists(st.integers(0, 5), min_size=dim, max_size=dim)) for _ in range(n)]
    ).reshape(n, dim)
    ref = np.full(dim, 5)
    assert hypervolume(points, ref, ["minimize"] * dim) == pytest.approx(_brute_force_hv(points, ref))
    # the same points with the first objective maximised (negated) give the same volume
    if n:
        flipped = points.astype(float).copy()
        flipped[:, 0] *= -1
        dirs = ["maximize"] + ["minimize"] * (dim - 1)
        assert hypervolume(flipped, [-5] + [5] * (dim - 1), dirs) == pytest.approx(_brute_force_hv(points, ref))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=15))
def test_non_dominated_matches_brute_force(rows):
    dirs = ["maximize", "minimize", "maximize"]
    keep = non_dominated(rows, dirs)
    expected = [i for i, a in enumerate(rows) if not any(dominates(b, a, dirs) for b in rows)]
    assert keep == expected


def test_bad_direction_and_shape():
    with pytest.raises(ValueError, match="direction"):
        non_dominated([[1, 2]], ["max", "min"])
    with pytest.raises(ValueError, match="shape"):
        hypervolume([[1, 2, 3]], [0, 0], MAXMIN)
