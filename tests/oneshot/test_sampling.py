import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot import FairSampler, PairBalancedFairSampler, SearchSpace, UniformSampler
from oneshot.sampling import build_sampler

choice_counts = st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=12)


def _space(counts, split=2):
    comps = {"a": counts[: len(counts) // split or 1]}
    rest = counts[len(comps["a"]):]
    if rest:
        comps["b"] = rest
    return SearchSpace.categorical(comps)


@pytest.mark.parametrize("cls", [FairSampler, PairBalancedFairSampler])
@settings(max_examples=40, deadline=None)
@given(counts=choice_counts, seed=st.integers(0, 2**31 - 1))
def test_every_window_is_strictly_fair(cls, counts, seed):
    space = _space(counts)
    sampler = cls(space, seed=seed)
    m = math.lcm(*counts)
    assert sampler.window_size == m == space.window_size
    for _ in range(3):
        window = np.array([a.choices for a in sampler.next_window()])
        assert window.shape == (m, len(counts))
        for col, k in zip(window.T, space.num_choices):
            assert np.array_equal(np.bincount(col, minlength=k), np.full(k, m // k))


@pytest.mark.parametrize("cls", [FairSampler, PairBalancedFairSampler])
@settings(max_examples=25, deadline=None)
@given(counts=choice_counts, seed=st.integers(0, 2**31 - 1))
def test_seeds_reproduce(cls, counts, seed):
    space = _space(counts)
    a, b = cls(space, seed=seed), cls(space, seed=seed)
    assert [a.next_window() for _ in range(3)] == [b.next_window() for _ in range(3)]


@settings(max_examples=25, deadline=None)
@given(counts=st.lists(st.integers(2, 6), min_size=3, max_size=10), seed=st.integers(0, 2**31 - 1))
def test_windows_differ_across_steps(counts, seed):
    space = _space(counts)
    sampler = FairSampler(space, seed=seed)
    windows = {tuple(sampler.next_window()) for _ in range(6)}
    assert len(windows) > 1


def test_paper_space_window():
    space = SearchSpace.categorical({"backbone": [4] * 40, "head": [6] * 7, "inter": [3] * 9})
    window = FairSampler(space, seed=0).next_window()
    assert len(window) == 12
    arr = np.array([a.choices for a in window])
    assert all(np.bincount(arr[:, i], minlength=4).tolist() == [3] * 4 for i in range(40))
    assert all(np.bincount(arr[:, i], minlength=6).tolist() == [2] * 6 for i in range(40, 47))
    assert all(np.bincount(arr[:, i], minlength=3).tolist() == [4] * 3 for i in range(47, 56))


@pytest.mark.parametrize("cls", [FairSampler, PairBalancedFairSampler, UniformSampler])
def test_state_dict_resume_mid_window(cls):
    space = _space([2, 3, 4, 6])
    ref = cls(space, seed=5)
    ref_stream = [a for _, a in zip(range(50), ref)]
    s = cls(space, seed=5)
    it = iter(s)
    first = [next(it) for _ in range(17)]  # stop in the middle of a window
    state = s.state_dict()
    restored = cls(space, seed=123)
    restored.load_state_dict(state)
    rest = [a for _, a in zip(range(33), restored)]
    assert first + rest == ref_stream


def _pair_counts(windows: np.ndarray, i: int, j: int, ki: int, kj: int) -> np.ndarray:
    return np.bincount(windows[:, i] * kj + windows[:, j], minlength=ki * kj).reshape(ki, kj)


def test_pair_balanced_windows_even_out_every_pair_of_layers():
    """8 layers of 3 choices (NAS-Bench-Macro's shape), 20 windows = 60 architectures: each of the
    9 choice pairs of two layers is expected 6.67 times. Over seeds 0-9 plain fair windows put 0 to
    14 in a cell, the balanced ones 4 to 10 (the figures of docs/concepts.md); per seed, their
    summed squared counts are lower."""
    space = SearchSpace.categorical({"a": [3] * 8})
    plain_cells: list[int] = []
    for seed in range(10):
        balanced = PairBalancedFairSampler(space, seed=seed)
        b = np.array([a.choices for _ in range(20) for a in balanced.next_window()])
        fair = FairSampler(space, seed=seed)  # one sampler: 20 windows in a row
        f = np.array([a.choices for _ in range(20) for a in fair.next_window()])
        squares = {"b": 0, "f": 0}
        for i in range(8):
            for j in range(i):
                counts = _pair_counts(b, i, j, 3, 3)
                assert np.array_equal(balanced.pair_counts(i, j), counts)
                assert np.array_equal(balanced.pair_counts(j, i), counts.T)
                assert 4 <= counts.min() and counts.max() <= 10
                squares["b"] += int((counts**2).sum())
                plain = _pair_counts(f, i, j, 3, 3)
                plain_cells += [int(plain.min()), int(plain.max())]
                squares["f"] += int((plain**2).sum())
        assert squares["b"] < squares["f"]
    assert (min(plain_cells), max(plain_cells)) == (0, 14)


def test_pair_balanced_sampler_options():
    space = _space([2, 3, 4])
    assert isinstance(build_sampler("fair-balanced", space, seed=0), PairBalancedFairSampler)
    with pytest.raises(ValueError, match="candidates"):
        PairBalancedFairSampler(space, candidates=0)
    with pytest.raises(ValueError, match="two different layers"):
        PairBalancedFairSampler(space).pair_counts(1, 1)
    with pytest.raises(ValueError, match="not PairBalancedFairSampler"):
        PairBalancedFairSampler(space).load_state_dict(FairSampler(space).state_dict())


def test_state_for_other_space_rejected():
    s = FairSampler(_space([2, 3]), seed=0)
    other = FairSampler(_space([2, 4]), seed=0)
    with pytest.raises(ValueError, match="different search space"):
        other.load_state_dict(s.state_dict())


def test_uniform_window_size_and_iteration():
    space = _space([3, 3, 3])
    u = UniformSampler(space, seed=0)
    assert u.window_size == 3
    assert len(u.next_window()) == 3
    assert UniformSampler(space, seed=0, window_size=5).window_size == 5


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=5), st.integers(2, 3), st.integers(0, 2**31 - 1))
def test_fair_window_multiples_stay_fair(counts, times, seed):
    space = _space(counts)
    m = space.window_size * times
    window = np.array([a.choices for a in FairSampler(space, seed=seed, window_size=m).next_window()])
    assert window.shape == (m, len(counts))
    for col, k in zip(window.T, counts, strict=True):
        assert np.bincount(col, minlength=k).tolist() == [m // k] * k


def test_fair_window_must_be_a_multiple_of_the_lcm():
    space = _space([2, 3])
    with pytest.raises(ValueError, match="multiple of 6"):
        FairSampler(space, window_size=4)
    with pytest.raises(ValueError, match="multiple of 6"):
        build_sampler("fair", space, window_size=1)
    single = build_sampler("uniform", space, seed=1, window_size=1)
    assert isinstance(single, UniformSampler) and len(single.next_window()) == 1
