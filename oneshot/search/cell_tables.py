"""Synthetic cell tables: a NAS-Bench-201-like DAG cell with known structure, for testing searchers.

A :class:`CellTable` searches one operation per edge of a cell whose ``num_nodes`` nodes are
ordered; every pair ``i < j`` is an edge (``num_nodes = 4`` gives NAS-Bench-201's 6 edges). The
operations are:

* ``0`` **none**: the edge is cut;
* ``1`` **skip**: an identity edge (small effect, adds no depth);
* ``2 ..``: parametric operations ("convolutions") of random average strengths, each edge with its
  own deviation from the average.

An edge is *live* when its operation is not *none* and it lies on a path from the input node
(``0``) to the output node (``num_nodes - 1``) of uncut edges. Only live edges count: an edge that a
cut elsewhere disconnects is irrelevant, whatever its operation. The latent score is the sum of
the live edges' effects, plus pairwise interactions between live edges that meet at a node, plus
a gain per parametric operation on the longest live path (depth, up to 3). It is mapped through
the same saturating shape as :mod:`oneshot.search.synthetic_tables` (near-ties at the top) and
scaled so that the connected cells have a standard deviation of ``acc_std`` points. A cell whose
output is disconnected from its input does not learn: its accuracy is ``chance`` (10 points by
default), far below every connected cell, as NAS-Bench-201's disconnected cells are.

These tables have what the additive-plus-pairs tables lack: a few measurements that are
catastrophically worse than the rest, interactions that follow the graph, and many edges whose
choice does not matter once another edge is cut.
"""

from __future__ import annotations

import itertools

import numpy as np

from oneshot.search.synthetic_tables import KnownTable
from oneshot.space import SearchSpace

__all__ = ["CellTable", "cell_table"]

_MAX_DEPTH_GAIN = 3


class CellTable(KnownTable):
    """A synthetic cell table (see the module docstring); :func:`cell_table` builds one from a shape."""

    def __init__(
        self,
        num_nodes: int,
        num_ops: int,
        *,
        seed: int = 0,
        pair_scale: float = 0.5,
        depth_gain: float = 0.6,
        edge_spread: float = 0.4,
        saturation: float = 0.7,
        acc_std: float = 2.7,
        top: float = 94.0,
        chance: float = 10.0,
        exact_limit: int = 2**21,
    ) -> None:
        if num_nodes < 2:
            raise ValueError(f"a cell needs at least 2 nodes, got {num_nodes}")
        if num_ops < 3:
            raise ValueError(f"a cell needs at least 3 operations (none, skip, one parametric), got {num_ops}")
        self.num_nodes, self.num_ops, self.seed = int(num_nodes), int(num_ops), int(seed)
        self.name = f"cell-{num_nodes}x{num_ops}-s{seed}"
        self.edges = [(i, j) for j in range(1, num_nodes) for i in range(j)]
        num_edges = len(self.edges)
        self.space = SearchSpace.categorical({"cell": [num_ops] * num_edges})
        rng = np.random.default_rng([seed, num_nodes, num_ops, 201])
        strength = np.r_[0.0, 0.2, np.sort(rng.normal(1.0, 0.6, size=num_ops - 2))]
        self.parametric = np.arange(num_ops) >= 2
        self.effect = strength[None, :] + rng.normal(0.0, edge_spread, size=(num_edges, num_ops))
        self.effect[:, 0] = 0.0
        self.pairs: dict[tuple[int, int], np.ndarray] = {}
        for a, b in itertools.combinations(range(num_edges), 2):
            if set(self.edges[a]) & set(self.edges[b]):  # the two edges meet at a node
                self.pairs[(a, b)] = rng.normal(0.0, pair_scale, size=(num_ops, num_ops))
        self.depth_gain, self.saturation, self.chance = float(depth_gain), float(saturation), float(chance)
        self._acc_std, self._top = float(acc_std), float(top)
        latent, connected = self._latent(self._reference_grid(num_edges, num_ops, seed=seed, exact_limit=exact_limit))
        if not connected.any():
            raise ValueError("the reference set of this cell table has no connected cell")
        self._center, self._scale = float(latent[connected].mean()), float(latent[connected].std()) or 1.0
        raw = self._saturate((latent - self._center) / self._scale)
        self._raw_mean, self._raw_std = float(raw[connected].mean()), float(raw[connected].std()) or 1.0
        self._offset = float(self._acc_std * (raw[connected].max() - self._raw_mean) / self._raw_std)
        self._sorted_acc = np.sort(self._to_acc(raw, connected))
        self.disconnected_share = float(1.0 - connected.mean())

    # ----------------------------------------------------------------- the function
    def _latent(self, choices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent score and connectedness of an ``(N, num_edges)`` integer array of operations."""
        ops = np.asarray(choices, dtype=np.int64)
        n, last = ops.shape[0], self.num_nodes - 1
        uncut = ops != 0
        reached = np.zeros((n, self.num_nodes), dtype=bool)  # reachable from the input
        reached[:, 0] = True
        for e, (i, j) in enumerate(self.edges):  # edges are ordered by their end node
            reached[:, j] |= reached[:, i] & uncut[:, e]
        reaches = np.zeros((n, self.num_nodes), dtype=bool)  # reaches the output
        reaches[:, last] = True
        for e, (i, j) in sorted(enumerate(self.edges), key=lambda t: -t[1][0]):
            reaches[:, i] |= reaches[:, j] & uncut[:, e]
        live = np.stack([uncut[:, e] & reached[:, i] & reaches[:, j] for e, (i, j) in enumerate(self.edges)], axis=1)
        value = np.zeros(n)
        for e in range(len(self.edges)):
            value += self.effect[e, ops[:, e]] * live[:, e]
        for (a, b), m in self.pairs.items():
            value += m[ops[:, a], ops[:, b]] * (live[:, a] & live[:, b])
        depth = np.full((n, self.num_nodes), -np.inf)  # parametric ops on the longest live path
        depth[:, 0] = 0.0
        for e, (i, j) in enumerate(self.edges):
            depth[:, j] = np.maximum(depth[:, j], np.where(live[:, e], depth[:, i] + self.parametric[ops[:, e]], -np.inf))
        longest = np.where(np.isfinite(depth[:, last]), depth[:, last], 0.0)
        value += self.depth_gain * np.minimum(longest, _MAX_DEPTH_GAIN)
        return value, reached[:, last]

    def _to_acc(self, raw: np.ndarray, connected: np.ndarray) -> np.ndarray:
        acc = self._top + self._acc_std * (raw - self._raw_mean) / self._raw_std - self._offset
        return np.where(connected, acc, self.chance)

    def accuracies(self, choices: np.ndarray) -> np.ndarray:
        """True accuracy of an ``(N, num_edges)`` array of operations."""
        latent, connected = self._latent(choices)
        return self._to_acc(self._saturate((latent - self._center) / self._scale), connected)

    def __repr__(self) -> str:
        kind = "exact" if self.exact else "sampled"
        return f"CellTable({self.name}, {len(self.edges)} edges, {self.disconnected_share:.1%} disconnected, {kind} percentiles)"


def cell_table(shape: str, *, seed: int = 0, **options: float) -> CellTable:
    """A cell table from a ``"NODESxOPS"`` shape string (``"4x5"``: NAS-Bench-201's 6 edges x 5 ops)."""
    try:
        nodes, ops = (int(v) for v in shape.lower().split("x"))
    except ValueError:
        raise ValueError(f"cell shape must look like '4x5' (nodes x operations), got {shape!r}") from None
    return CellTable(nodes, ops, seed=seed, **options)  # type: ignore[arg-type]
