"""Architecture samplers for supernet training: uniform (SPOS), strictly fair (FairNAS), and strictly
fair with layer pairs balanced across windows (the design of the model-fitting searchers)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from oneshot.registry import Registry
from oneshot.space import Architecture, SearchSpace

__all__ = ["SAMPLERS", "FairSampler", "PairBalancedFairSampler", "Sampler", "UniformSampler", "build_sampler"]


class Sampler(ABC):
    """Yields architectures window by window; reproducible from a seed; checkpointable.

    A *window* is the group of paths whose gradients are accumulated before one optimizer step.
    Iterating over a sampler yields architectures forever, window after window.
    """

    name: ClassVar[str] = ""

    def __init__(self, space: SearchSpace, *, seed: int = 0, window_size: int | None = None) -> None:
        self.space = space
        self.seed = int(seed)
        self._window_size = int(window_size) if window_size is not None else space.window_size
        if self._window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        self._rng = np.random.default_rng(self.seed)
        self._pending: list[Architecture] = []
        self.windows_drawn = 0

    @property
    def window_size(self) -> int:
        return self._window_size

    def next_window(self) -> list[Architecture]:
        """The next window of ``window_size`` architectures."""
        if self._pending:
            # A partly consumed window (from iteration) is completed first, so that windows stay aligned.
            window, self._pending = self._pending, []
            return window
        choices = self._draw_window()
        self.windows_drawn += 1
        return [self.space.validate(row) for row in choices.tolist()]

    @abstractmethod
    def _draw_window(self) -> np.ndarray:
        """A ``(window_size, num_layers)`` integer array of choices."""

    def __iter__(self) -> Iterator[Architecture]:
        while True:
            if not self._pending:
                self._pending = self.next_window()
            yield self._pending.pop(0)

    # ----------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "seed": self.seed,
            "window_size": self._window_size,
            "space": self.space.signature(),
            "rng": self._rng.bit_generator.state,
            "pending": [list(a.choices) for a in self._pending],
            "windows_drawn": self.windows_drawn,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("type") != type(self).__name__:
            raise ValueError(f"sampler state is for {state.get('type')}, not {type(self).__name__}")
        if state.get("space") != self.space.signature():
            raise ValueError("sampler state was saved for a different search space")
        if int(state["window_size"]) != self._window_size:
            raise ValueError(
                f"sampler state has window size {state['window_size']}, this sampler {self._window_size}"
            )
        self.seed = int(state["seed"])
        self._rng.bit_generator.state = state["rng"]
        self._pending = [self.space.validate(c) for c in state["pending"]]
        self.windows_drawn = int(state["windows_drawn"])


class UniformSampler(Sampler):
    """Single-path uniform sampling (SPOS): every choice of every layer drawn independently.

    ``window_size`` defaults to the space's fair window so that uniform and fair training take
    optimizer steps over the same number of paths.
    """

    name = "uniform"

    def _draw_window(self) -> np.ndarray:
        counts = np.asarray(self.space.num_choices)
        return self._rng.integers(0, counts, size=(self._window_size, len(counts)))


class FairSampler(Sampler):
    """Strictly fair sampling (FairNAS), generalised to layers with different choice counts.

    A window has ``m = lcm(choice counts)`` paths (or a multiple of it, ``window_size``). Each
    layer's column is ``m / k`` independent random permutations of its ``k`` choices, concatenated,
    so inside every window every choice of every layer is used exactly ``m / k`` times.
    """

    name = "fair"

    def __init__(self, space: SearchSpace, *, seed: int = 0, window_size: int | None = None) -> None:
        lcm = space.window_size
        if window_size is not None and (window_size < 1 or window_size % lcm):
            raise ValueError(
                f"a fair window must hold a multiple of {lcm} paths (the lcm of the choice counts), "
                f"got {window_size}; use the uniform sampler for other sizes"
            )
        super().__init__(space, seed=seed, window_size=window_size or lcm)

    def _draw_window(self) -> np.ndarray:
        m = self._window_size
        columns = []
        for k in self.space.num_choices:
            perms = [self._rng.permutation(k) for _ in range(m // k)]
            columns.append(np.concatenate(perms))
        return np.stack(columns, axis=1)


class PairBalancedFairSampler(FairSampler):
    """Strictly fair windows whose layer *pairs* are also balanced over all windows drawn so far.

    Every window is fair as in :class:`FairSampler`. Its columns are chosen one layer at a time:
    of ``candidates`` random fair columns, the one that keeps the co-occurrence counts of
    (choice of this layer, choice of each earlier layer), summed over every window so far, most
    even (least sum of squares; the first candidate wins ties). Over many windows the design
    tends to an orthogonal array, so a model fitted on it (an additive one above all) estimates
    the effects of different layers nearly independently and with smaller errors.

    Costs ``candidates`` times the pair bookkeeping of a fair window per window; fine for a
    searcher's design, noticeable per training step on spaces of many layers.
    """

    name = "fair-balanced"

    def __init__(
        self, space: SearchSpace, *, seed: int = 0, window_size: int | None = None, candidates: int = 24
    ) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        super().__init__(space, seed=seed, window_size=window_size)
        self.candidates = int(candidates)
        ks = space.num_choices
        # counts[i][j]: flattened (k_i, k_j) co-occurrences of layers i > j over all windows drawn
        self._pair_counts = [[np.zeros(ks[i] * ks[j], dtype=np.int64) for j in range(i)] for i in range(len(ks))]

    def _draw_window(self) -> np.ndarray:
        m, ks = self._window_size, self.space.num_choices
        rows = np.arange(self.candidates)[:, None]
        columns: list[np.ndarray] = []
        for i, k in enumerate(ks):
            options = np.stack(
                [np.concatenate([self._rng.permutation(k) for _ in range(m // k)]) for _ in range(self.candidates)]
            )
            cost = np.zeros(self.candidates)
            for j, counts in enumerate(self._pair_counts[i]):
                added = np.zeros((self.candidates, counts.size), dtype=np.int64)
                np.add.at(added, (rows, options * ks[j] + columns[j]), 1)
                cost += (2 * counts * added + added**2).sum(axis=1)  # rise of the sum of squares
            columns.append(options[int(np.argmin(cost))])
        for i in range(len(ks)):
            for j, counts in enumerate(self._pair_counts[i]):
                counts += np.bincount(columns[i] * ks[j] + columns[j], minlength=counts.size)
        return np.stack(columns, axis=1)

    def pair_counts(self, i: int, j: int) -> np.ndarray:
        """``(k_i, k_j)`` counts of how often choice ``a`` of layer ``i`` met choice ``b`` of layer
        ``j`` in the windows drawn so far (``i != j``)."""
        if i == j:
            raise ValueError("pair_counts needs two different layers")
        if i < j:
            return self.pair_counts(j, i).T
        ks = self.space.num_choices
        return self._pair_counts[i][j].reshape(ks[i], ks[j]).copy()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["candidates"] = self.candidates
        state["pair_counts"] = [[c.tolist() for c in row] for row in self._pair_counts]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.candidates = int(state["candidates"])
        self._pair_counts = [[np.asarray(c, dtype=np.int64) for c in row] for row in state["pair_counts"]]


SAMPLERS: Registry[Sampler] = Registry("sampler", base=Sampler, entry_point_group="oneshot.samplers")
SAMPLERS.register(FairSampler)
SAMPLERS.register(PairBalancedFairSampler)
SAMPLERS.register(UniformSampler)


def build_sampler(name: str, space: SearchSpace, *, seed: int = 0, window_size: int | None = None) -> Sampler:
    """A sampler by registered name (``"fair"``, ``"uniform"``, or one of a plug-in), with
    ``window_size`` paths per window (``None``: the space's fair window; ``"fair"`` needs a
    multiple of it)."""
    return SAMPLERS.get(name)(space, seed=seed, window_size=window_size)
