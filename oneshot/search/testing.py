"""A shared pytest suite that every searcher must pass (in the spirit of optuna's ``testing``).

Use it for your own searcher by subclassing :class:`SearcherTestSuite` in a test module and
providing a ``searcher_name`` fixture (the name it is registered under)::

    import pytest
    from oneshot.search.testing import SearcherTestSuite

    @pytest.fixture
    def searcher_name():
        return "my-searcher"

    class TestMySearcher(SearcherTestSuite):
        pass

The suite builds searchers with :func:`~oneshot.search.build_searcher` ``(name, space,
budget=n, seed=s)``, i.e. through ``with_budget``, and checks: the budget is respected, nothing is
evaluated twice, the constraint is honoured, runs are deterministic per seed, an interrupted run
resumed from its :class:`~oneshot.search.EvaluationStore` equals an uninterrupted one, batch and
per-architecture fitnesses agree, metrics are kept, results survive JSON, and pure categorical
spaces (tiny ones included) work.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oneshot.search.base import Searcher, SearchError, SearchResult, batch_fitness
from oneshot.search.random import RandomSearcher
from oneshot.search.registry import build_searcher
from oneshot.search.store import EvaluationStore
from oneshot.space import Architecture, SearchSpace

__all__ = [
    "CountingFitness",
    "Interrupted",
    "SearcherTestSuite",
    "mixed_space",
    "percentiles_beside_random",
    "synthetic_fitness",
    "uniform_space",
]


def mixed_space() -> SearchSpace:
    """Two components, choice counts 1 to 4 (fair window 12, 288 architectures)."""
    return SearchSpace.categorical({"backbone": [4, 2, 3, 4], "head": [3, 1, 2]})


def uniform_space() -> SearchSpace:
    """One component of six 3-way layers (fair window 3, 729 architectures)."""
    return SearchSpace.categorical({"macro": [3] * 6})


def synthetic_fitness(space: SearchSpace, *, seed: int = 0) -> Callable[[Architecture], float]:
    """A deterministic fitness: per-(layer, choice) values, pairwise interactions and hash noise."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=k) for k in space.num_choices]
    pair = rng.normal(scale=0.5, size=(space.num_layers, max(space.num_choices), max(space.num_choices)))

    def fitness(arch: Architecture) -> float:
        c = arch.choices
        value = sum(weights[i][choice] for i, choice in enumerate(c))
        value += sum(pair[i, c[i], c[i + 1]] for i in range(len(c) - 1))
        value += 0.3 * (zlib.crc32(arch.key.encode()) % 1000) / 1000.0
        return float(value)

    return fitness


def percentiles_beside_random(
    table: Any, searcher_cls: type[Searcher], *, budget: int, sigma: float, seeds: Sequence[int]
) -> tuple[list[float], list[float]]:
    """Rank percentiles (share of ``table`` strictly better, %) of what ``searcher_cls`` and random
    search return with ``budget`` evaluations of ``table.fitness(sigma, seed=s)``, seed by seed
    (both see the same noisy table): the material of a statistical "beats random" test."""
    ours: list[float] = []
    theirs: list[float] = []
    for seed in seeds:
        fitness = table.fitness(sigma, seed=seed)
        for cls, out in ((searcher_cls, ours), (RandomSearcher, theirs)):
            result = cls.with_budget(table.space, budget, seed=seed).run(fitness)
            out.append(table.rank_percentile(result.best))
    return ours, theirs


class Interrupted(RuntimeError):
    """Raised by :class:`CountingFitness` to simulate a crash after a number of evaluations."""


class CountingFitness:
    """Wraps a fitness, counting calls per architecture; optionally fails after ``fail_after`` calls."""

    def __init__(self, fn: Callable[[Architecture], Any], *, fail_after: int | None = None) -> None:
        self.fn = fn
        self.fail_after = fail_after
        self.calls: Counter[Architecture] = Counter()
        self.order: list[Architecture] = []

    def __call__(self, arch: Architecture) -> Any:
        if self.fail_after is not None and len(self.order) >= self.fail_after:
            raise Interrupted(f"simulated crash after {self.fail_after} evaluations")
        self.calls[arch] += 1
        self.order.append(arch)
        return self.fn(arch)

    @property
    def total(self) -> int:
        return len(self.order)


def _same_result(a: SearchResult, b: SearchResult) -> None:
    assert a.best == b.best
    assert a.best_fitness == b.best_fitness
    assert [h.arch for h in a.history] == [h.arch for h in b.history]
    assert [h.fitness for h in a.history] == [h.fitness for h in b.history]
    assert a.score_table == b.score_table
    assert a.top_k == b.top_k
    assert a.pareto == b.pareto


class SearcherTestSuite:
    """Tests every searcher must pass; needs a ``searcher_name`` fixture (see module docstring)."""

    budget: int = 36

    @pytest.fixture
    def make(self, searcher_name: str) -> Callable[..., Searcher]:
        def _make(space: SearchSpace, n: int | None = None, seed: int = 0) -> Searcher:
            return build_searcher(searcher_name, space, budget=self.budget if n is None else n, seed=seed)

        return _make

    @pytest.fixture(params=["mixed", "uniform"])
    def space(self, request: pytest.FixtureRequest) -> SearchSpace:
        return mixed_space() if request.param == "mixed" else uniform_space()

    # ----------------------------------------------------------------- budget and revisits
    def test_budget_respected(self, make: Callable[..., Searcher], space: SearchSpace) -> None:
        for n in (self.budget, 2 * self.budget):
            searcher = make(space, n)
            assert searcher.max_evaluations <= n
            fitness = CountingFitness(synthetic_fitness(space))
            result = searcher.run(fitness)
            assert 0 < fitness.total <= n
            assert result.num_evaluated == fitness.total
            space.validate(result.best)

    def test_never_evaluates_twice(self, make: Callable[..., Searcher], space: SearchSpace) -> None:
        fitness = CountingFitness(synthetic_fitness(space))
        make(space, 2 * self.budget).run(fitness)
        assert max(fitness.calls.values()) == 1

    def test_store_prevents_reevaluation(
        self, make: Callable[..., Searcher], space: SearchSpace, tmp_path: Path
    ) -> None:
        store = EvaluationStore(tmp_path / "evals.jsonl", space=space)
        first = make(space).run(synthetic_fitness(space), store=store)
        again = CountingFitness(synthetic_fitness(space))
        second = make(space).run(again, store=EvaluationStore(tmp_path / "evals.jsonl"))
        assert again.total == 0
        _same_result(first, second)

    # ----------------------------------------------------------------- constraint
    def test_constraint_respected(self, make: Callable[..., Searcher], space: SearchSpace) -> None:
        def constraint(arch: Architecture) -> bool:
            return arch.choices[0] != 0 and sum(arch.choices) <= sum(space.num_choices) - 3

        fitness = CountingFitness(synthetic_fitness(space))
        result = make(space).run(fitness, constraint=constraint)
        assert fitness.total > 0
        assert all(constraint(a) for a in fitness.order)
        assert all(constraint(h.arch) for h in result.history)
        assert constraint(result.best)

    def test_impossible_constraint_is_a_clear_error(
        self, make: Callable[..., Searcher], space: SearchSpace
    ) -> None:
        fitness = CountingFitness(synthetic_fitness(space))
        with pytest.raises(SearchError):
            make(space).run(fitness, constraint=lambda arch: False)
        assert fitness.total == 0

    # ----------------------------------------------------------------- determinism and resume
    def test_deterministic_per_seed(self, make: Callable[..., Searcher], space: SearchSpace) -> None:
        fitness = synthetic_fitness(space)
        results = [make(space, seed=s).run(fitness) for s in (0, 0, 1, 2)]
        _same_result(results[0], results[1])
        histories = {tuple(h.arch for h in r.history) for r in results}
        assert len(histories) > 1, "different seeds should explore differently"

    @pytest.mark.parametrize("crash_after", [1, 7, 20])
    def test_resume_equals_uninterrupted(
        self, make: Callable[..., Searcher], space: SearchSpace, tmp_path: Path, crash_after: int
    ) -> None:
        reference = make(space, seed=3).run(synthetic_fitness(space))
        store_path = tmp_path / "store.jsonl"
        crashing = CountingFitness(synthetic_fitness(space), fail_after=crash_after)
        with pytest.raises(Interrupted):
            make(space, seed=3).run(crashing, store=EvaluationStore(store_path))
        resumed_fitness = CountingFitness(synthetic_fitness(space))
        resumed = make(space, seed=3).run(resumed_fitness, store=EvaluationStore(store_path))
        _same_result(reference, resumed)
        assert set(resumed_fitness.calls).isdisjoint(crashing.calls)
        assert crashing.total + resumed_fitness.total == reference.num_evaluated

    def test_ask_tell_loop_equals_run(self, make: Callable[..., Searcher], space: SearchSpace) -> None:
        fitness = synthetic_fitness(space)
        searcher = make(space, seed=5)
        seen: dict[Architecture, float] = {}
        while batch := searcher.ask():
            searcher.tell([(a, seen.setdefault(a, fitness(a))) for a in batch])
        _same_result(searcher.result(), make(space, seed=5).run(fitness))

    # ----------------------------------------------------------------- fitness protocol
    def test_batch_fitness_matches_per_architecture(
        self, make: Callable[..., Searcher], space: SearchSpace
    ) -> None:
        fn = synthetic_fitness(space)
        batches: list[int] = []

        @batch_fitness
        def evaluate(archs: Sequence[Architecture]) -> list[float]:
            batches.append(len(archs))
            return [fn(a) for a in archs]

        searcher = make(space, seed=1)
        _same_result(searcher.run(evaluate), make(space, seed=1).run(fn))
        assert sum(batches) <= searcher.max_evaluations
        assert len(batches) < sum(batches), "a batch fitness should receive several architectures at once"

    def test_metrics_are_kept(self, make: Callable[..., Searcher], space: SearchSpace, tmp_path: Path) -> None:
        fn = synthetic_fitness(space)

        def with_metrics(arch: Architecture) -> dict[str, float]:
            value = fn(arch)
            return {"fitness": value, "pq": value * 2, "sq": 1.0}

        store = EvaluationStore(tmp_path / "m.jsonl")
        result = make(space).run(with_metrics, store=store)
        assert all(h.metrics == {"pq": h.fitness * 2, "sq": 1.0} for h in result.history)
        reread = {e.arch: e.metrics for e in EvaluationStore(tmp_path / "m.jsonl", space=space)}
        assert all(reread[h.arch] == h.metrics for h in result.history)

    def test_result_json_round_trip(self, make: Callable[..., Searcher], space: SearchSpace) -> None:
        result = make(space).run(synthetic_fitness(space))
        text = json.dumps(result.to_json())
        again = SearchResult.from_json(space, json.loads(text))
        assert again == result
        assert json.loads(text)["num_evaluated"] == result.num_evaluated

    # ----------------------------------------------------------------- categorical spaces
    def test_tiny_space_is_exhausted_gracefully(self, make: Callable[..., Searcher]) -> None:
        space = SearchSpace.categorical({"only": [2, 2]})  # 4 architectures, window 2
        fitness = CountingFitness(synthetic_fitness(space))
        result = make(space, 12).run(fitness)
        assert max(fitness.calls.values()) == 1
        assert fitness.total <= 4
        space.validate(result.best)

    # Every subclass runs this one method for its own searcher, so Hypothesis sees several
    # executors; a saved failing example replayed for another searcher is only one more example.
    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
    )
    @given(
        counts=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=6),
        seed=st.integers(0, 1000),
    )
    def test_property_budget_and_uniqueness(
        self, make: Callable[..., Searcher], counts: list[int], seed: int
    ) -> None:
        space = SearchSpace.categorical({"x": counts})
        n = 2 * space.window_size + 5
        fitness = CountingFitness(synthetic_fitness(space, seed=seed))
        result = make(space, n, seed=seed).run(fitness)
        assert fitness.total <= min(n, space.size)
        assert max(fitness.calls.values()) == 1
        assert space.validate(result.best) == result.best
        if result.best_fitness is not None:
            assert result.best_fitness == synthetic_fitness(space, seed=seed)(result.best)
