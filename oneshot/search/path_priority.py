"""The path-priority search policy of Auto-Panoptic (NeurIPS 2020, section 3.4, Algorithm 1).

For ``T`` cycles, one strictly fair window of ``E`` architectures is evaluated (every choice of
every layer appears equally often in it); the models are ranked by fitness (rank 0 = best) and
every (layer, choice) used by the model of rank ``r`` gains ``K - r`` points, with ``K = E``.
The final architecture takes, at every layer, the choice with the highest accumulated score.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from oneshot.sampling import FairSampler, Sampler, build_sampler
from oneshot.search.base import Searcher, SearchError
from oneshot.search.options import SearcherOptions
from oneshot.space import Architecture, SearchSpace

__all__ = [
    "Design",
    "PathPriorityOptions",
    "PathPrioritySearcher",
    "ScoreTable",
    "fair_design",
    "ranked_combinations",
]


class ScoreTable:
    """Accumulated path scores: one row per layer, one entry per choice of that layer."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.scores = [np.zeros(k) for k in space.num_choices]

    def add_window(self, results: Sequence[tuple[Architecture, float]], k: int) -> None:
        """Rank ``results`` (rank 0 = best; ties keep their window order) and add ``k - rank``."""
        order = sorted(range(len(results)), key=lambda i: -results[i][1])
        for rank, i in enumerate(order):
            arch = results[i][0]
            for layer, choice in enumerate(arch.choices):
                self.scores[layer][choice] += k - rank

    def ranking(self, layer: int) -> list[int]:
        """Choices of ``layer`` from the highest score to the lowest (ties: lowest index first)."""
        row = self.scores[layer]
        return sorted(range(len(row)), key=lambda c: (-row[c], c))

    def argmax(self) -> Architecture:
        """The best-scoring choice at every layer (ties: lowest index)."""
        return self.space.validate([self.ranking(i)[0] for i in range(self.space.num_layers)])

    def top_k(self, k: int) -> list[Architecture]:
        """Architectures made of the i-th best choice at every layer, ``i = 0 .. k-1``.

        ``k`` is capped at the largest choice count; a layer with fewer than ``i + 1`` choices
        contributes its last-ranked choice.
        """
        k = min(int(k), max(self.space.num_choices))
        rankings = [self.ranking(i) for i in range(self.space.num_layers)]
        return [self.space.validate([r[min(i, len(r) - 1)] for r in rankings]) for i in range(k)]

    def to_lists(self) -> list[list[float]]:
        return [[float(v) for v in row] for row in self.scores]


Design = Literal["fair", "fair-balanced"]  # the registered samplers whose windows are fair


def fair_design(
    space: SearchSpace, budget: int, fraction: float, *, seed: int, design: Design = "fair"
) -> tuple[Sampler, int]:
    """The fair-window phase of a searcher that models the evaluations afterwards: the sampler
    of its windows (the registered sampler named ``design``, seeded) and their number, the whole
    windows that fit in ``fraction`` of ``budget`` evaluations, at least one."""
    return build_sampler(design, space, seed=seed), max(1, int(budget * fraction) // space.window_size)


def ranked_combinations(scores: Sequence[Sequence[float]]) -> Iterator[tuple[int, ...]]:
    """All choice combinations in decreasing order of their summed per-layer scores.

    Best-first enumeration over per-layer rankings (a heap of rank vectors), so the first few
    items cost almost nothing even for huge spaces. Ties are broken deterministically.
    """
    rankings = [sorted(range(len(row)), key=lambda c: (-row[c], c)) for row in scores]
    values = [[float(row[c]) for c in ranking] for row, ranking in zip(scores, rankings, strict=True)]

    def total(ranks: tuple[int, ...]) -> float:
        return sum(v[r] for v, r in zip(values, ranks, strict=True))

    start = (0,) * len(rankings)
    heap: list[tuple[float, tuple[int, ...]]] = [(-total(start), start)]
    seen = {start}
    while heap:
        _, ranks = heapq.heappop(heap)
        yield tuple(rankings[layer][r] for layer, r in enumerate(ranks))
        for layer in range(len(ranks)):
            if ranks[layer] + 1 < len(rankings[layer]):
                nxt = ranks[:layer] + (ranks[layer] + 1,) + ranks[layer + 1 :]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (-total(nxt), nxt))


class PathPriorityOptions(SearcherOptions):
    """Options of :class:`PathPrioritySearcher`."""

    cycles: int = Field(5, ge=1)
    top_k: int = Field(3, ge=1)
    evaluate_best: bool = False
    max_tries: int = Field(1000, ge=1)


class PathPrioritySearcher(Searcher):
    """The paper's path-priority policy.

    Args:
        space: the search space.
        cycles: ``T``, the number of fair windows evaluated (``T * E`` evaluations, ``E`` the
            space's fair window size, ``lcm`` of its choice counts).
        seed: seed of the :class:`~oneshot.sampling.FairSampler` that draws the windows.
        top_k: number of architectures in ``result.top_k``.
        evaluate_best: the paper never evaluates its final argmax architecture, and by default
            neither does this searcher: ``result.best_fitness`` is ``None`` unless the argmax
            happened to be in one of the windows. With ``True`` it is evaluated at the end
            (one more evaluation) and ``best_fitness`` is set.
        max_tries: with a constraint, how many combinations (best score sum first) are tried
            when the argmax violates it, before falling back to the best feasible evaluated one.

    With a constraint, window members that violate it are not evaluated and gain no points
    (as if ranked below every evaluated model).

    Ranking ties inside a window keep window order, which is deterministic per seed.
    """

    name = "path-priority"
    Options = PathPriorityOptions
    options: PathPriorityOptions

    def _setup(self) -> None:
        self.window_size = self.space.window_size
        self.table = ScoreTable(self.space)
        self._sampler = FairSampler(self.space, seed=self.seed)
        self._cycle = 0
        self._final_asked = False
        self._selection: str | None = None

    @classmethod
    def with_budget(cls, space: SearchSpace, n: int, *, seed: int = 0) -> PathPrioritySearcher:
        """As many whole fair windows as fit in ``n`` evaluations (the argmax is not evaluated)."""
        cycles = n // space.window_size
        if cycles < 1:
            raise ValueError(
                f"path-priority needs at least one fair window of {space.window_size} evaluations, budget is {n}"
            )
        return cls(space, cycles=cycles, seed=seed)

    @property
    def max_evaluations(self) -> int:
        return self.cycles * self.window_size + int(self.evaluate_best)

    def _ask(self) -> list[Architecture]:
        while self._cycle < self.cycles:
            window = self._sampler.next_window()
            feasible = [a for a in window if self.is_feasible(a)]
            if feasible:
                return feasible
            self._cycle += 1  # nothing to evaluate in this window: it scores nothing
        if self.evaluate_best and not self._final_asked:
            self._final_asked = True
            best, fitness = self._select()
            if fitness is None:
                return [best]
        return []

    def _tell(self, results: list[tuple[Architecture, float]]) -> None:
        if self._cycle >= self.cycles:
            return  # the final evaluation of the argmax: no score
        self.table.add_window(results, self.window_size)
        self._cycle += 1

    def _fitness_of(self, arch: Architecture) -> float | None:
        for h in self._history:
            if h.arch == arch:
                return h.fitness
        return None

    def _select(self) -> tuple[Architecture, float | None]:
        best: Architecture | None = self.table.argmax()
        self._selection = "argmax"
        if best is not None and not self.is_feasible(best):
            best = None
            for tries, choices in enumerate(ranked_combinations(self.table.to_lists())):
                if tries >= self.max_tries:
                    break
                candidate = self.space.validate(list(choices))
                if self.is_feasible(candidate):
                    best, self._selection = candidate, "best-feasible-combination"
                    break
            if best is None:
                feasible = [h for h in self._history if self.is_feasible(h.arch)]
                if not feasible:
                    raise SearchError(
                        "path-priority: the constraint rejects the argmax, the next "
                        f"{self.max_tries} combinations and every evaluated architecture"
                    )
                best = max(feasible, key=lambda h: h.fitness).arch
                self._selection = "best-evaluated"
        assert best is not None
        return best, self._fitness_of(best)

    def _result_fields(self) -> dict[str, Any]:
        return {
            "score_table": self.table.to_lists(),
            "top_k": self.table.top_k(self.top_k),
            "extras": {
                "cycles": self._cycle,
                "window_size": self.window_size,
                "selection": self._selection,
            },
        }
