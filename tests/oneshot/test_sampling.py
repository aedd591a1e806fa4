import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot import FairSampler, SearchSpace, UniformSampler
from oneshot.sampling import build_sampler

choice_counts = st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=12)


def _space(counts, split=2):
    comps = {"a": counts[: len(counts) // split or 1]}
    rest = counts[len(comps["a"]):]
    if rest:
        comps["b"] = rest
    return SearchSpace.categorical(comps)


@settings(max_examples=40, deadline=None)
@given(counts=choice_counts, seed=st.integers(0, 2**31 - 1))
def test_every_window_is_strictly_fair(counts, seed):
    space = _space(counts)
    sampler = FairSampler(space, seed=seed)
    m = math.lcm(*counts)
    assert sampler.window_size == m == space.window_size
    for _ in range(3):
        window = np.array([a.choices for a in sampler.next_window()])
        assert window.shape == (m, len(counts))
        for col, k in zip(window.T, space.num_choices):
            assert np.array_equal(np.bincount(col, minlength=k), np.full(k, m // k))


@settings(max_examples=25, deadline=None)
@given(counts=choice_counts, seed=st.integers(0, 2**31 - 1))
def test_seeds_reproduce(counts, seed):
    space = _space(counts)
    a, b = FairSampler(space, seed=seed), FairSampler(space, seed=seed)
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


@pytest.mark.parametrize("cls", [FairSampler, UniformSampler])
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
