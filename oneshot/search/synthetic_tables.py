"""Synthetic tabular benchmarks with known structure, for developing and testing searchers.

A :class:`SyntheticTable` is a categorical space of ``num_layers`` layers with ``num_choices``
choices each, split into contiguous components, whose "accuracy" is built from:

* **additive** effects, one per (layer, choice);
* **pairwise interactions** between layers (every neighbouring pair, plus a random share of the
  other pairs), one ``K x K`` matrix per interacting pair;
* **dead choices**: in every component some layers have a choice (index 0) that disconnects the
  component; then the component's additive and interaction terms are all replaced by one constant,
  so every other choice of that component becomes irrelevant;
* a **saturating** map from the latent score to an accuracy (``top - scale * exp(-z)`` shape), so
  that the best architectures are near-ties, as in real NAS tables.

The latent score is standardised, and the accuracy is scaled so that the table's standard
deviation is about ``acc_std`` points (NAS-Bench-Macro's is 2.7): a noise ``sigma`` of 1 is then
comparable to the differences inside the top few percent.

Tables of at most ``exact_limit`` architectures are enumerated, and :meth:`rank_percentile` is
exact; larger ones (e.g. 12 x 4, 16.7 M architectures) use a fixed uniform sample of
``2 ** 20`` architectures, so their percentile is an estimate (standard error about 0.01 points at
1 %).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from oneshot.space import Architecture, SearchSpace

__all__ = ["KnownTable", "SyntheticTable", "TableFitness", "synthetic_table"]


@dataclass(frozen=True)
class TableFitness:
    """``arch -> accuracy + noise``; the noise is a deterministic function of (seed, architecture)."""

    table: KnownTable
    sigma: float = 0.0
    seed: int = 0

    def __call__(self, arch: Architecture) -> float:
        acc = self.table.accuracy(arch)
        if self.sigma == 0:
            return acc
        rng = np.random.default_rng([int(self.seed), *arch.choices, 7919])
        return acc + float(self.sigma * rng.standard_normal())


class KnownTable:
    """What every table of known structure shares: a saturating map, a reference set of
    architectures (all of them, or a fixed sample), noisy fitness and rank percentiles.

    A subclass sets ``saturation`` and ``_sorted_acc`` (the sorted accuracies of its reference
    set) and defines :meth:`accuracies` of an ``(N, positions)`` integer array.
    """

    saturation: float
    exact: bool
    _sorted_acc: np.ndarray

    def accuracies(self, choices: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _reference_grid(self, positions: int, values: int, *, seed: int, exact_limit: int) -> np.ndarray:
        """Every architecture when there are at most ``exact_limit`` (``exact``), else a fixed
        uniform sample of ``2 ** 20`` of them."""
        self.exact = values**positions <= exact_limit
        if self.exact:
            return np.array(list(itertools.product(range(values), repeat=positions)), dtype=np.int8)
        return np.random.default_rng([seed, 99]).integers(0, values, size=(2**20, positions), dtype=np.int8)

    def _saturate(self, z: np.ndarray) -> np.ndarray:
        # concave, increasing: the top is compressed into near-ties
        return -np.exp(-self.saturation * z) / self.saturation if self.saturation > 0 else z

    def accuracy(self, arch: Architecture) -> float:
        return float(self.accuracies(np.asarray([arch.choices]))[0])

    def fitness(self, sigma: float = 0.0, *, seed: int = 0) -> TableFitness:
        """The table as a fitness with deterministic Gaussian noise of std ``sigma``."""
        if sigma < 0:
            raise ValueError(f"noise sigma must be >= 0, got {sigma}")
        return TableFitness(self, float(sigma), int(seed))

    def rank_percentile(self, arch: Architecture | float) -> float:
        """Percentage of the table strictly better than ``arch`` (0 = the best; lower is better)."""
        acc = float(arch) if isinstance(arch, (int, float)) else self.accuracy(arch)
        better = len(self._sorted_acc) - int(np.searchsorted(self._sorted_acc, acc, side="right"))
        return 100.0 * better / len(self._sorted_acc)

    @property
    def best_accuracy(self) -> float:
        return float(self._sorted_acc[-1])


class SyntheticTable(KnownTable):
    """A synthetic table (see the module docstring); build it with :func:`synthetic_table`."""

    def __init__(
        self,
        num_layers: int,
        num_choices: int,
        *,
        seed: int = 0,
        components: int = 2,
        pair_scale: float = 0.6,
        pair_density: float = 0.3,
        dead_layers_per_component: int = 1,
        saturation: float = 0.5,
        acc_std: float = 2.7,
        top: float = 93.0,
        exact_limit: int = 2**21,
    ) -> None:
        if num_layers < 2 or num_choices < 2:
            raise ValueError("a synthetic table needs at least 2 layers of at least 2 choices")
        if not 1 <= components <= num_layers:
            raise ValueError(f"components must be in [1, {num_layers}], got {components}")
        self.name = f"synthetic-{num_layers}x{num_choices}-s{seed}"
        self.num_layers, self.num_choices, self.seed = int(num_layers), int(num_choices), int(seed)
        rng = np.random.default_rng([seed, num_layers, num_choices])
        bounds = np.linspace(0, num_layers, components + 1).round().astype(int)
        self.component_of = np.zeros(num_layers, dtype=int)
        for c in range(components):
            self.component_of[bounds[c] : bounds[c + 1]] = c
        self.space = SearchSpace.categorical(
            {f"c{c}": [num_choices] * int(bounds[c + 1] - bounds[c]) for c in range(components)}
        )
        self.additive = rng.normal(size=(num_layers, num_choices))
        self.pairs: dict[tuple[int, int], np.ndarray] = {}
        for i, j in itertools.combinations(range(num_layers), 2):
            if j == i + 1 or rng.random() < pair_density:
                self.pairs[(i, j)] = rng.normal(scale=pair_scale, size=(num_choices, num_choices))
        self.dead = np.zeros(num_layers, dtype=bool)  # layer whose choice 0 disconnects its component
        for c in range(components):
            members = np.flatnonzero(self.component_of == c)
            k = min(dead_layers_per_component, len(members))
            self.dead[rng.choice(members, size=k, replace=False)] = True
        # the value of a dead component: around the component's typical alive contribution
        self.dead_value = rng.normal(loc=-0.5, scale=1.0, size=components) * np.sqrt(
            np.bincount(self.component_of, minlength=components)
        )
        self.saturation = float(saturation)
        self._acc_std, self._top = float(acc_std), float(top)
        self._center, self._scale = 0.0, 1.0
        latent = self._latent(self._reference_grid(num_layers, num_choices, seed=seed, exact_limit=exact_limit))
        self._center, self._scale = float(latent.mean()), float(latent.std())
        raw = self._saturate((latent - self._center) / self._scale)
        self._raw_mean, self._raw_std = float(raw.mean()), float(raw.std())
        # the best architecture of the reference set maps to ``top``
        self._offset = float(self._acc_std * (raw.max() - self._raw_mean) / self._raw_std)
        self._sorted_acc = np.sort(self._to_acc(raw))

    # ----------------------------------------------------------------- the function
    def _latent(self, choices: np.ndarray) -> np.ndarray:
        """Latent score of an ``(N, num_layers)`` integer array of choices."""
        choices = np.asarray(choices, dtype=np.int64)
        n = choices.shape[0]
        comps = int(self.component_of.max()) + 1
        alive = np.ones((n, comps), dtype=bool)
        for layer in np.flatnonzero(self.dead):
            alive[:, self.component_of[layer]] &= choices[:, layer] != 0
        value = np.zeros(n)
        for layer in range(self.num_layers):
            value += self.additive[layer, choices[:, layer]] * alive[:, self.component_of[layer]]
        for (i, j), m in self.pairs.items():
            on = alive[:, self.component_of[i]] & alive[:, self.component_of[j]]
            value += m[choices[:, i], choices[:, j]] * on
        value += (~alive * self.dead_value).sum(axis=1)
        return value

    def _to_acc(self, raw: np.ndarray) -> np.ndarray:
        return self._top + self._acc_std * (raw - self._raw_mean) / self._raw_std - self._offset

    def accuracies(self, choices: np.ndarray) -> np.ndarray:
        """True accuracy of an ``(N, num_layers)`` array of choices."""
        z = (self._latent(choices) - self._center) / self._scale
        return self._to_acc(self._saturate(z))

    def __repr__(self) -> str:
        kind = "exact" if self.exact else "sampled"
        return f"SyntheticTable({self.name}, {len(self.pairs)} interacting pairs, {kind} percentiles)"


def synthetic_table(shape: str, *, seed: int = 0, **options: float) -> SyntheticTable:
    """A table from a ``"LxK"`` shape string (e.g. ``"6x5"``, ``"8x3"``, ``"12x4"``)."""
    try:
        layers, choices = (int(v) for v in shape.lower().split("x"))
    except ValueError:
        raise ValueError(f"table shape must look like '8x3', got {shape!r}") from None
    components = 2 if layers < 10 else 3
    return SyntheticTable(layers, choices, seed=seed, components=int(options.pop("components", components)), **options)
