import numpy as np
import pytest

from oneshot.search.outliers import clip_low_outliers


def test_values_without_failures_are_unchanged():
    y = np.random.default_rng(0).normal(90.0, 2.0, size=60)
    assert np.array_equal(clip_low_outliers(y), y)


def test_a_failed_measurement_is_raised_to_the_bound():
    y = np.array([90.0, 91.0, 89.0, 92.0, 90.5, 88.5, 10.0])
    median = np.median(y)
    bound = median - 6.0 * 1.4826 * np.median(np.abs(y - median))
    clipped = clip_low_outliers(y)
    assert clipped[-1] == pytest.approx(bound) and bound > 80.0
    assert np.array_equal(clipped[:-1], y[:-1])
    assert y[-1] == 10.0  # the input is not modified
    assert clip_low_outliers(y, mads=100.0)[-1] == 10.0


def test_high_values_are_never_clipped():
    y = np.array([90.0, 91.0, 89.0, 92.0, 90.5, 88.5, 200.0])
    assert np.array_equal(clip_low_outliers(y), y)


@pytest.mark.parametrize("values, mads", [([1.0, 2.0, -100.0], 6.0), ([5.0] * 6 + [-100.0], 6.0), ([1.0, 2.0, 3.0, 4.0, -100.0], None)])
def test_left_alone_when_there_is_no_robust_scale(values, mads):
    assert np.array_equal(clip_low_outliers(values, mads=mads), np.array(values))
