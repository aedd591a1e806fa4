"""Rank correlations in numpy: Kendall's tau-b and Spearman's rho (ties handled, no scipy needed).

Both measure how well one ranking (e.g. supernet-inherited fitness) predicts another (e.g. the
fitness after retraining from scratch). They return ``nan`` when a correlation is undefined
(fewer than two points, or one side constant).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["average_ranks", "kendall_tau_b", "spearman_rho"]


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
