"""optuna's samplers behind our ask/tell: NSGA-II (``nsga2``, multi-objective) and TPE (``tpe``).

Each architecture is one optuna trial in an in-memory study, with one
``CategoricalDistribution`` over the choice indices per choice layer (keyed by the layer label),
asked with ``study.ask(fixed_distributions)`` and told with ``study.tell``. optuna does the
sampling (its ``NSGAIISampler`` / ``TPESampler``, seeded); this module only adapts it to our
protocol, which adds three rules:

* never evaluate twice. NSGA-II: a trial proposing an architecture evaluated before is told the
  known values at once (no evaluation), one repeating another member of the current batch is told
  that member's values with it (NSGA-II counts completed trials per generation). TPE: a repeating
  trial is told ``FAIL`` and the next trial is a random architecture not seen yet, queued with
  ``study.enqueue_trial`` (TPE concentrates on few architectures of a small categorical space and
  would otherwise mostly propose repeats);
* honour the constraint: a trial proposing a violating architecture is told ``FAIL`` without
  evaluation (optuna's samplers ignore failed trials) and counted in ``rejected``;
* stop after ``max_tries`` consecutive proposals that were repeats or violations (the space or its
  feasible part is nearly exhausted), or once every architecture of the space was evaluated.

The proposals depend only on the seed and the values told, so runs are deterministic per seed and
a run resumed from an evaluation store equals an uninterrupted one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field

from oneshot.search.base import BudgetSearcher, SearchError
from oneshot.search.evolution import population_for_budget
from oneshot.search.multiobjective import MultiObjectiveMixin
from oneshot.search.objectives import Objective
from oneshot.search.options import ObjectivesOption, SearcherOptions, default_objectives
from oneshot.space import Architecture

if TYPE_CHECKING:
    import optuna

__all__ = ["NSGA2Options", "NSGA2Searcher", "OptunaOptions", "OptunaSearcher", "TPEOptions", "TPESearcher"]


class OptunaOptions(SearcherOptions):
    """Options shared by the optuna-backed searchers."""

    num_trials: int = Field(300, ge=1)
    max_tries: int = Field(200, ge=1)


class OptunaSearcher(BudgetSearcher):
    """Base of the optuna-backed searchers (see the module docstring).

    Subclasses declare their options (extending :class:`OptunaOptions`), implement
    :meth:`_make_sampler` and have a ``batch_size`` (architectures per :meth:`ask`).
    """

    budget_arg = "num_trials"
    Options: ClassVar[type[SearcherOptions]] = OptunaOptions

    def _setup(self) -> None:
        self.rejected = 0
        self.repeats = 0
        self._replace_repeats = False
        self._rng = np.random.default_rng(self.seed)
        self._objectives: tuple[Objective, ...] = (
            self.objectives if isinstance(self, MultiObjectiveMixin) else (Objective("fitness"),)
        )
        self._values: dict[Architecture, list[float]] = {}
        self._infeasible: set[Architecture] = set()
        self._trials: list[optuna.trial.Trial] = []
        self._aliases: list[tuple[optuna.trial.Trial, Architecture]] = []
        self._start()

    def _make_sampler(self) -> optuna.samplers.BaseSampler:
        raise NotImplementedError

    def _start(self) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per trial
        directions: list[Any] = [o.direction for o in self._objectives]
        self.study = optuna.create_study(directions=directions, sampler=self._make_sampler())
        self._distributions: dict[str, optuna.distributions.BaseDistribution] = {
            layer.label: optuna.distributions.CategoricalDistribution(list(range(layer.num_choices)))
            for layer in self.space.layers
        }

    def _arch_of(self, trial: optuna.trial.Trial) -> Architecture:
        return self.space.validate([int(trial.params[label]) for label in self.space.labels])

    def _ask(self) -> list[Architecture]:
        from optuna.trial import TrialState

        if self._trials:
            raise RuntimeError("internal: optuna trials still pending")
        target = min(self.batch_size, self.num_trials - len(self._values))
        batch: list[Architecture] = []
        in_batch: set[Architecture] = set()
        consecutive = 0
        while (
            len(batch) < target
            and consecutive < self.max_tries
            and len(self._values) + len(batch) < self.space.size
        ):
            trial = self.study.ask(self._distributions)
            arch = self._arch_of(trial)
            if self._replace_repeats and (arch in self._values or arch in in_batch):
                self.study.tell(trial, state=TrialState.FAIL)
                self.repeats += 1
                consecutive += 1
                self._enqueue_unseen(in_batch)
            elif arch in self._values:
                self.study.tell(trial, self._values[arch])
                self.repeats += 1
                consecutive += 1
            elif arch in in_batch:
                self._aliases.append((trial, arch))
                self.repeats += 1
                consecutive += 1
            elif arch in self._infeasible or not self.is_feasible(arch):
                self._infeasible.add(arch)
                self.rejected += 1
                self.study.tell(trial, state=TrialState.FAIL)
                consecutive += 1
            else:
                batch.append(arch)
                in_batch.add(arch)
                self._trials.append(trial)
                consecutive = 0
        if not batch and not self._values:
            raise SearchError(
                f"{self.name}: no architecture satisfying the constraint in {self.max_tries} proposals"
            )
        return batch

    def _enqueue_unseen(self, in_batch: set[Architecture]) -> None:
        """Queue a random architecture neither evaluated, in the batch nor known infeasible."""
        for _ in range(self.max_tries):
            arch = self.space.sample(self._rng)
            if arch not in self._values and arch not in in_batch and arch not in self._infeasible:
                self.study.enqueue_trial(dict(zip(self.space.labels, arch.choices, strict=True)))
                return

    def _tell(self, results: list[tuple[Architecture, float]]) -> None:
        entries = self._history[-len(results):]
        for trial, entry in zip(self._trials, entries, strict=True):
            values = [entry.fitness] if not isinstance(self, MultiObjectiveMixin) else self.objective_values(entry)
            self._values[entry.arch] = values
            self.study.tell(trial, values)
        for trial, arch in self._aliases:
            self.study.tell(trial, self._values[arch])
        self._trials, self._aliases = [], []

    def _result_fields(self) -> dict[str, Any]:
        fields = super()._result_fields()
        extras = dict(fields.get("extras", {}))
        extras.update({"trials": len(self.study.trials), "rejected": self.rejected, "repeats": self.repeats})
        fields["extras"] = extras
        return fields


class NSGA2Options(OptunaOptions):
    """Options of :class:`NSGA2Searcher`."""

    objectives: ObjectivesOption = default_objectives()
    population_size: int = Field(50, ge=2)
    mutation_prob: float | None = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5


class NSGA2Searcher(MultiObjectiveMixin, OptunaSearcher):
    """NSGA-II (Deb et al. 2002) through optuna's ``NSGAIISampler``; returns the Pareto set.

    Args:
        space: the search space.
        num_trials: evaluations at most.
        objectives: what to optimise (default ``("fitness",)``; e.g. ``["fitness", "latency_ms"]``).
        population_size: NSGA-II population; one generation is one :meth:`ask` batch.
        seed: seed of the sampler.
        mutation_prob, crossover_prob, swapping_prob: passed to ``NSGAIISampler`` (``None``:
            optuna's default, ``1 / number of layers`` for mutation).
        max_tries: consecutive repeated or violating proposals before the search stops.
    """

    name = "nsga2"
    Options = NSGA2Options
    options: NSGA2Options

    @property
    def batch_size(self) -> int:
        """One generation per :meth:`ask`."""
        return self.population_size

    @classmethod
    def _budget_options(cls, n: int) -> dict[str, Any]:
        """``n`` trials, population ``round(sqrt(2.5 n))`` clipped to 2..50 (as evolution)."""
        return {"num_trials": n, "population_size": population_for_budget(n)}

    def _make_sampler(self) -> optuna.samplers.BaseSampler:
        import optuna

        return optuna.samplers.NSGAIISampler(
            population_size=self.population_size,
            mutation_prob=self.mutation_prob,
            crossover_prob=self.crossover_prob,
            swapping_prob=self.swapping_prob,
            seed=self.seed,
        )


class TPEOptions(OptunaOptions):
    """Options of :class:`TPESearcher`."""

    batch_size: int = Field(4, ge=1)
    n_startup_trials: int = 10
    multivariate: bool = False


class TPESearcher(OptunaSearcher):
    """Single-objective Tree-structured Parzen Estimator through optuna's ``TPESampler``.

    Maximises the fitness. ``batch_size`` trials are asked at once (optuna's ``constant_liar``
    keeps them apart), which is what a batch fitness receives.

    Args:
        space: the search space.
        num_trials: evaluations at most.
        seed: seed of the sampler.
        batch_size: architectures per :meth:`ask`.
        n_startup_trials: random trials before TPE starts modelling (optuna's default 10).
        multivariate: optuna's multivariate TPE (models the layers jointly).
        max_tries: consecutive repeated or violating proposals before the search stops.
    """

    name = "tpe"
    Options = TPEOptions
    options: TPEOptions

    def _setup(self) -> None:
        super()._setup()
        self._replace_repeats = True

    def _make_sampler(self) -> optuna.samplers.BaseSampler:
        import warnings

        import optuna

        with warnings.catch_warnings():  # constant_liar / multivariate are flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=self.seed,
                n_startup_trials=self.n_startup_trials,
                multivariate=self.multivariate,
                constant_liar=True,
            )
