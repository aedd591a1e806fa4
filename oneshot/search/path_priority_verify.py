"""Path-priority with value-based path scores and a verification phase (beyond the paper).

The paper's policy (:mod:`oneshot.search.path_priority`) has two weaknesses measured on
NAS-Bench-Macro (see ``docs/benchmarks.md``): it scores paths by *rank* inside a window, which
throws away how much better a model is, and it never evaluates the per-layer argmax it returns,
so interactions between layers are ignored. This policy keeps the fair windows and fixes both:

1. **Explore** (``explore_fraction`` of the budget): evaluate whole fair windows, exactly as
   path-priority does (the paper's rank score table is kept for the heatmap).
2. **Verify** (the rest): fit an additive model ``fitness ~ mean + sum_l effect[l, choice_l]``
   by ridge least squares on every evaluation so far (the value-based path scores), and evaluate
   the best not-yet-evaluated combinations of that model, best score sum first, refitting after
   every batch.
3. **Select**: among evaluated architectures, the best by
   ``blend * measured + (1 - blend) * additive prediction``. Shrinking a noisy measurement toward
   the model is what keeps a lucky noisy evaluation from winning; ``blend = 1`` trusts the
   measurements only, ``blend = 0`` the model only.

The returned architecture was evaluated, so ``best_fitness`` is its measured fitness.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from oneshot.search.base import BudgetSearcher, SearchError
from oneshot.search.encoding import onehot_choices
from oneshot.search.options import SearcherOptions
from oneshot.search.path_priority import ScoreTable, fair_design, ranked_combinations
from oneshot.space import Architecture, SearchSpace

__all__ = ["AdditiveModel", "VerifiedPathPriorityOptions", "VerifiedPathPrioritySearcher", "fit_additive"]


class AdditiveModel:
    """``prediction(arch) = intercept + sum over layers of effects[layer][choice]``."""

    def __init__(self, intercept: float, effects: list[np.ndarray]) -> None:
        self.intercept = float(intercept)
        self.effects = effects

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.array(
            [self.intercept + sum(self.effects[i][c] for i, c in enumerate(a.choices)) for a in archs]
        )


def fit_additive(
    space: SearchSpace, archs: Sequence[Architecture], fitness: Sequence[float], *, ridge: float = 1.0
) -> AdditiveModel:
    """Ridge least squares of fitness on one-hot (layer, choice) indicators.

    The intercept (the mean fitness) is not penalised; every choice gets its own effect, shrunk
    toward 0 by ``ridge`` (a choice seen ``n`` times keeps about ``n / (n + ridge)`` of its
    effect), which also keeps the fit defined with fewer evaluations than parameters.
    """
    if not archs:
        raise ValueError("fit_additive needs at least one evaluation")
    if ridge <= 0:
        raise ValueError(f"ridge must be > 0, got {ridge}")
    offsets = np.cumsum([0, *space.num_choices])
    x = onehot_choices([a.choices for a in archs], space.num_choices)
    y = np.asarray(fitness, dtype=float)
    mean = float(y.mean())
    w = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ (y - mean))
    effects = [w[offsets[i] : offsets[i + 1]] for i in range(space.num_layers)]
    return AdditiveModel(mean, effects)


class VerifiedPathPriorityOptions(SearcherOptions):
    """Options of :class:`VerifiedPathPrioritySearcher`."""

    budget: int = Field(60, ge=1)
    explore_fraction: float = Field(0.5, gt=0.0, le=1.0)
    verify_batch: int | None = Field(None, ge=1)
    blend: float = Field(0.5, ge=0.0, le=1.0)
    ridge: float = Field(1.0, gt=0.0)
    top_k: int = Field(3, ge=1)
    max_tries: int = Field(1000, ge=1)


class VerifiedPathPrioritySearcher(BudgetSearcher):
    """Fair-window exploration, then verification of the best combinations of an additive model.

    Args:
        space: the search space.
        budget: number of distinct architectures evaluated in all.
        seed: seed of the fair windows.
        explore_fraction: share of the budget spent on whole fair windows (at least one window).
        verify_batch: architectures verified per :meth:`ask` (default: the fair window size, so
            that a batch fitness evaluates as many models at once as in the exploration phase).
        blend: weight of the measured fitness against the model prediction in the final choice.
        ridge: ridge penalty of the additive model (see :func:`fit_additive`).
        top_k: number of architectures in ``result.top_k`` (the best by the blended estimate).
        max_tries: bound on the combinations examined per verification batch (already evaluated
            or violating the constraint); if none is found the search ends early.
    """

    name = "path-priority-verify"
    budget_arg = "budget"
    Options = VerifiedPathPriorityOptions
    options: VerifiedPathPriorityOptions

    def _setup(self) -> None:
        self.window_size = self.space.window_size
        if self.budget < self.window_size:
            raise ValueError(
                f"path-priority-verify needs a budget of at least one fair window ({self.window_size}), got {self.budget}"
            )
        self._sampler, self.explore_cycles = fair_design(self.space, self.budget, self.explore_fraction, seed=self.seed)
        self.verify_batch = self.options.verify_batch or self.window_size
        self.table = ScoreTable(self.space)
        self._cycle = 0
        self._evaluated: dict[Architecture, float] = {}
        self._num_explored = 0
        self._done = False

    def _ask(self) -> list[Architecture]:
        while self._cycle < self.explore_cycles:
            feasible = [a for a in self._sampler.next_window() if self.is_feasible(a)]
            if feasible:
                return feasible
            self._cycle += 1
        remaining = self.budget - len(self._evaluated)
        if self._done or remaining <= 0:
            return []
        if not self._evaluated:
            raise SearchError("path-priority-verify: the constraint rejected every architecture of the fair windows")
        model = self._model()
        batch: list[Architecture] = []
        for tries, choices in enumerate(ranked_combinations(model.effects)):
            if tries >= self.max_tries or len(batch) >= min(self.verify_batch, remaining):
                break
            arch = self.space.validate(list(choices))
            if arch not in self._evaluated and self.is_feasible(arch):
                batch.append(arch)
        if not batch:
            self._done = True
        return batch

    def _tell(self, results: list[tuple[Architecture, float]]) -> None:
        for arch, fitness in results:
            self._evaluated.setdefault(arch, fitness)
        if self._cycle < self.explore_cycles:
            self.table.add_window(results, self.window_size)
            self._cycle += 1
            self._num_explored = len(self._evaluated)

    def _model(self) -> Any:
        archs = list(self._evaluated)
        return fit_additive(self.space, archs, [self._evaluated[a] for a in archs], ridge=self.ridge)

    def _estimates(self) -> list[tuple[Architecture, float, float]]:
        """(architecture, measured, blended estimate), best estimate first (ties: earliest)."""
        archs = list(self._evaluated)
        measured = np.array([self._evaluated[a] for a in archs])
        predicted = self._model().predict(archs)
        blended = self.blend * measured + (1.0 - self.blend) * predicted
        order = sorted(range(len(archs)), key=lambda i: -blended[i])
        return [(archs[i], float(measured[i]), float(blended[i])) for i in order]

    def _select(self) -> tuple[Architecture, float | None]:
        if not self._evaluated:
            raise SearchError("path-priority-verify: nothing was evaluated")
        arch, measured, _ = self._estimates()[0]
        return arch, measured

    def _result_fields(self) -> dict[str, Any]:
        ranked = self._estimates() if self._evaluated else []
        effects = [[float(v) for v in row] for row in self._model().effects] if self._evaluated else []
        return {
            "score_table": self.table.to_lists(),
            "top_k": [a for a, _, _ in ranked[: self.top_k]],
            "extras": {
                "explore_cycles": self._cycle,
                "window_size": self.window_size,
                "explored": self._num_explored,
                "verified": len(self._evaluated) - self._num_explored,
                "effects": effects,
                "best_estimate": ranked[0][2] if ranked else None,
            },
        }
