"""Multi-objective searchers: the Pareto set of what was evaluated, and multi-objective random search.

A multi-objective searcher takes ``objectives`` (see :mod:`oneshot.search.objectives`) and reads
their values from each evaluation: ``"fitness"`` is the fitness, every other name a metric the
fitness returned (e.g. ``latency_ms`` added by :func:`oneshot.cost.with_costs`). Its result
carries the non-dominated evaluated architectures in ``SearchResult.pareto``; ``best`` is the
front member that is best in the first objective (then the second, ...; first evaluated among
equals), so single-objective code keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from oneshot.search.base import BudgetSearcher, HistoryEntry, SearchError
from oneshot.search.objectives import Objective, objective_values
from oneshot.search.options import ObjectivesOption, default_objectives
from oneshot.search.pareto import non_dominated, to_minimization
from oneshot.search.random import RandomOptions, RandomSearcher
from oneshot.space import Architecture

__all__ = ["MultiObjectiveMixin", "MultiObjectiveRandomOptions", "MultiObjectiveRandomSearcher", "pareto_entries"]


def pareto_entries(history: Sequence[HistoryEntry], objectives: Sequence[Objective]) -> list[HistoryEntry]:
    """The non-dominated entries of ``history`` (first occurrence of each architecture, in order)."""
    first: dict[Architecture, HistoryEntry] = {}
    for h in history:
        first.setdefault(h.arch, h)
    entries = list(first.values())
    if not entries:
        return []
    values = [objective_values(h.fitness, h.metrics, objectives) for h in entries]
    return [entries[i] for i in non_dominated(values, [o.direction for o in objectives])]


class MultiObjectiveMixin(BudgetSearcher):
    """Selection, result fields and ``with_budget(..., objectives=...)`` shared by the
    multi-objective searchers.

    Subclasses declare an ``objectives`` option (:data:`oneshot.search.options.ObjectivesOption`).
    """

    multi_objective: ClassVar[bool] = True
    budget_extras: ClassVar[tuple[str, ...]] = ("objectives",)
    objectives: tuple[Objective, ...]

    def objective_values(self, entry: HistoryEntry) -> list[float]:
        return objective_values(entry.fitness, entry.metrics, self.objectives)

    def pareto_front(self) -> list[HistoryEntry]:
        """The non-dominated evaluated architectures so far, in evaluation order."""
        return pareto_entries(self._history, self.objectives)

    def _select(self) -> tuple[Architecture, float | None]:
        front = self.pareto_front()
        if not front:
            raise SearchError(f"{self.name or type(self).__name__}: nothing was evaluated")
        values = to_minimization([self.objective_values(h) for h in front], [o.direction for o in self.objectives])
        order = np.lexsort(values.T[::-1])  # first objective is the primary key; stable
        best = front[int(order[0])]
        return best.arch, best.fitness

    def _result_fields(self) -> dict[str, Any]:
        fields = super()._result_fields()
        extras = dict(fields.get("extras", {}))
        extras["objectives"] = [o.to_json() for o in self.objectives]
        fields["extras"] = extras
        fields["pareto"] = [h.arch for h in self.pareto_front()]
        return fields


class MultiObjectiveRandomOptions(RandomOptions):
    """Options of :class:`MultiObjectiveRandomSearcher`: random search's and ``objectives``."""

    objectives: ObjectivesOption = default_objectives()


class MultiObjectiveRandomSearcher(MultiObjectiveMixin, RandomSearcher):
    """Random search that returns the Pareto set of its samples under ``objectives``.

    Samples exactly as :class:`~oneshot.search.RandomSearcher` with the same seed; only the
    selection differs. Args as there, plus ``objectives`` (default ``("fitness",)``).
    """

    name = "mo-random"
    Options = MultiObjectiveRandomOptions
    options: MultiObjectiveRandomOptions
