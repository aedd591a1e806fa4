"""Pareto utilities: dominance with mixed directions, the non-dominated set, and hypervolume.

Points are rows of objective values; ``directions`` says per column whether it is maximised
(``"maximize"``) or minimised (``"minimize"``). Internally every column is turned into one to
minimise (maximised columns are negated), so the reference point given in the *original* units
is negated the same way. The hypervolume is the measure of the region dominated by the points and
bounded by the reference point; points that do not strictly improve on the reference point in
every objective contribute nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Direction", "dominates", "hypervolume", "non_dominated", "to_minimization"]

Direction = str  # "maximize" | "minimize"

_VALID = ("maximize", "minimize")


def _signs(directions: Sequence[Direction]) -> np.ndarray:
    bad = [d for d in directions if d not in _VALID]
    if bad:
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {bad[0]!r}")
    return np.array([-1.0 if d == "maximize" else 1.0 for d in directions])


def to_minimization(points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[Direction]) -> np.ndarray:
    """``points`` (n, d) as an array in which every column is to be minimised."""
    arr = np.asarray(points, dtype=float)
    if arr.ndim == 1:
        arr = arr.reshape(0, len(directions)) if arr.size == 0 else arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != len(directions):
        raise ValueError(f"points must have shape (n, {len(directions)}), got {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError("points contain NaN")
    return arr * _signs(directions)


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[Direction]) -> bool:
    """Whether ``a`` is at least as good as ``b`` in every objective and better in one."""
    x, y = to_minimization([a, b], directions)
    return bool(np.all(x <= y) and np.any(x < y))


def non_dominated(points: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[Direction]) -> list[int]:
    """Indices (ascending) of the points no other point dominates.

    Duplicated points are all kept (none dominates the others).
    """
    arr = to_minimization(points, directions)
    keep: list[int] = []
    for i in range(len(arr)):
        le = np.all(arr <= arr[i], axis=1)
        lt = np.any(arr < arr[i], axis=1)
        if not np.any(le & lt):
            keep.append(i)
    return keep


def hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray,
    reference: Sequence[float],
    directions: Sequence[Direction],
) -> float:
    """The hypervolume dominated by ``points`` and bounded by ``reference`` (original units).

    Exact: a sweep for two objectives, recursive slicing along the last objective for more
    (fine for the few hundred points of a search; exponential only in the number of objectives).
    """
    arr = to_minimization(points, directions)
    ref = to_minimization([list(reference)], directions)[0]
    if len(arr) == 0:
        return 0.0
    arr = arr[np.all(arr < ref, axis=1)]
    if len(arr) == 0:
        return 0.0
    return float(_hv(np.unique(arr, axis=0), ref))


def _hv(arr: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of minimisation points that all strictly dominate ``ref``."""
    d = arr.shape[1]
    if d == 1:
        return float(ref[0] - arr[:, 0].min())
    if d == 2:
        front = arr[non_dominated(arr, ["minimize", "minimize"])]
        front = front[np.argsort(front[:, 0])]  # x ascending, so y descending on a front
        volume, prev_y = 0.0, ref[1]
        for x, y in front:
            volume += (ref[0] - x) * (prev_y - y)
            prev_y = y
        return volume
    order = np.argsort(arr[:, -1])
    arr = arr[order]
    volume = 0.0
    for i in range(len(arr)):
        upper = arr[i + 1, -1] if i + 1 < len(arr) else ref[-1]
        depth = upper - arr[i, -1]
        if depth > 0:
            volume += depth * _hv(arr[: i + 1, :-1], ref[:-1])
    return volume
