"""Statistics for comparing architectures and search policies: rank correlations, bootstrap
intervals and the seed criterion.

Task-agnostic and numpy-only. Kendall's tau-b and Spearman's rho measure how well one ranking
(e.g. supernet-inherited fitness) predicts another (e.g. the fitness after retraining from
scratch); they handle ties and return ``nan`` when undefined (fewer than two points, or one side
constant). The percentile bootstrap resamples with replacement ``n_boot`` times from a seeded
generator and takes the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled
statistic, so the same inputs and seed give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ConfidenceInterval",
    "SeedCriterion",
    "average_ranks",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "bootstrap_mean_difference_ci",
    "bootstrap_paired_ci",
    "kendall_tau_b",
    "seed_criterion",
    "spearman_rho",
]


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=float).ravel()
    b = np.asarray(y, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same length, got {a.size} and {b.size}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("x and y must not contain NaN")
    return a, b


def average_ranks(values: ArrayLike) -> np.ndarray:
    """Ranks starting at 1, ties sharing the mean of the ranks they span: ``[10, 20, 20] -> [1, 2.5, 2.5]``."""
    v = np.asarray(values, dtype=float).ravel()
    order = np.argsort(v, kind="mergesort")
    sorted_v = v[order]
    ranks = np.empty(v.size, dtype=float)
    start = 0
    while start < v.size:
        end = start
        while end + 1 < v.size and sorted_v[end + 1] == sorted_v[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def kendall_tau_b(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b: ``(C - D) / sqrt((n0 - n1) (n0 - n2))``.

    ``C``/``D`` are the concordant/discordant pairs, ``n0 = n (n - 1) / 2``, and ``n1``/``n2``
    the pairs tied in ``x``/``y``. A pair tied in either is neither concordant nor discordant.
    O(n^2), meant for the tens of architectures a retraining study affords.
    """
    a, b = _pair(x, y)
    n = a.size
    if n < 2:
        return float("nan")
    iu = np.triu_indices(n, k=1)
    dx = np.sign(a[:, None] - a[None, :])[iu]
    dy = np.sign(b[:, None] - b[None, :])[iu]
    s = float(np.sum(dx * dy))  # concordant - discordant
    n0 = n * (n - 1) / 2
    untied_x = n0 - float(np.sum(dx == 0))
    untied_y = n0 - float(np.sum(dy == 0))
    if untied_x == 0 or untied_y == 0:
        return float("nan")
    return s / math.sqrt(untied_x * untied_y)


def spearman_rho(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks (so ties are handled)."""
    a, b = _pair(x, y)
    if a.size < 2:
        return float("nan")
    ra = average_ranks(a) - (a.size + 1) / 2
    rb = average_ranks(b) - (b.size + 1) / 2
    denom = math.sqrt(float(np.sum(ra * ra)) * float(np.sum(rb * rb)))
    if denom == 0:
        return float("nan")
    return float(np.sum(ra * rb)) / denom


@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate and its ``level`` percentile-bootstrap interval ``[low, high]``."""

    estimate: float
    low: float
    high: float
    level: float = 0.95

    def __iter__(self):  # type: ignore[no-untyped-def]
        """``low, high = ci`` unpacks the bounds."""
        return iter((self.low, self.high))

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _values(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must hold finite numbers")
    return a


def _interval(estimate: float, boot: np.ndarray, level: float) -> ConfidenceInterval:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return ConfidenceInterval(float(estimate), float(low), float(high), level)


def bootstrap_ci(
    x: ArrayLike,
    statistic: Callable[[np.ndarray], float],
    *,
    n_boot: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of ``statistic`` over samples ``x`` (resampled with replacement).

    ``statistic`` maps a 1-d array to a number. With one sample, every resample equals it and
    the interval collapses to the point.
    """
    a = _values(x, "x")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    boot = np.fromiter((statistic(a[i]) for i in idx), dtype=float, count=n_boot)
    return _interval(statistic(a), boot, level)


def bootstrap_mean_ci(x: ArrayLike, *, n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> ConfidenceInterval:
    """Percentile bootstrap interval of the mean of ``x``."""
    a = _values(x, "x")
    rng = np.random.default_rng(seed)
    boot = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1)
    return _interval(float(a.mean()), boot, level)


def bootstrap_mean_difference_ci(
    x: ArrayLike, y: ArrayLike, *, n_boot: int = 10_000, level: float = 0.95, seed: int = 0
) -> ConfidenceInterval:
    """Interval of ``mean(x) - mean(y)`` for two independent groups (each resampled on its own)."""
    a, b = _values(x, "x"), _values(y, "y")
    rng = np.random.default_rng(seed)
    boot_a = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1)
    boot_b = b[rng.integers(0, b.size, size=(n_boot, b.size))].mean(axis=1)
    return _interval(float(a.mean() - b.mean()), boot_a - boot_b, level)


def bootstrap_paired_ci(
    x: ArrayLike,
    y: ArrayLike,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_boot: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> ConfidenceInterval:
    """Interval of ``statistic(x, y)`` over paired samples: pairs ``(x[i], y[i])`` are resampled
    together (e.g. Kendall tau between supernet and retrained scores of the same architectures)."""
    a, b = _values(x, "x"), _values(y, "y")
    if a.size != b.size:
        raise ValueError(f"paired samples need equal lengths, got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    boot = np.fromiter((statistic(a[i], b[i]) for i in idx), dtype=float, count=n_boot)
    boot = boot[np.isfinite(boot)]  # e.g. a rank correlation of a resample with all values tied
    if boot.size == 0:
        nan = float("nan")
        return ConfidenceInterval(float(statistic(a, b)), nan, nan, level)
    return _interval(float(statistic(a, b)), boot, level)


@dataclass(frozen=True)
class SeedCriterion:
    """Between-architecture vs within-architecture (seed) spread of retrained scores.

    ``between_sd``: sample sd (ddof 1) of the per-architecture means; ``within_sd``: pooled
    within-architecture sd, ``sqrt(sum_i sum_j (x_ij - mean_i)^2 / sum_i (n_i - 1))``;
    ``ratio = between_sd / within_sd`` (``inf`` when every seed agreed).
    """

    archs: int
    runs: int
    mean: float
    between_sd: float
    within_sd: float
    ratio: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def met(self, target: float = 2.0) -> bool:
        """Whether architectures differ by at least ``target`` times the seed spread."""
        return self.ratio >= target


def seed_criterion(scores: Sequence[ArrayLike]) -> SeedCriterion:
    """The seed criterion of per-architecture score lists (one list of seeds per architecture).

    Needs at least two architectures and, for the pooled sd, at least one with two seeds.
    """
    groups = [_values(s, f"scores[{i}]") for i, s in enumerate(scores)]
    if len(groups) < 2:
        raise ValueError(f"the seed criterion needs at least 2 architectures, got {len(groups)}")
    dof = sum(g.size - 1 for g in groups)
    if dof == 0:
        raise ValueError("the seed criterion needs an architecture retrained with at least 2 seeds")
    means = np.array([g.mean() for g in groups])
    within = math.sqrt(sum(float(((g - g.mean()) ** 2).sum()) for g in groups) / dof)
    between = float(means.std(ddof=1))
    ratio = between / within if within > 0 else math.inf
    return SeedCriterion(
        archs=len(groups),
        runs=int(sum(g.size for g in groups)),
        mean=float(np.concatenate(groups).mean()),
        between_sd=between,
        within_sd=within,
        ratio=ratio,
    )
