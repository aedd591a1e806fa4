"""Multi-objective searchers: objectives, Pareto sets against brute force, JSON round trip."""

import itertools
import json

import pytest

from oneshot.search import (
    SearchError,
    SearchResult,
    build_searcher,
    hypervolume,
    non_dominated,
    parse_objectives,
)
from oneshot.search.objectives import Objective, objective_values
from oneshot.search.testing import synthetic_fitness
from oneshot.space import SearchSpace

OBJECTIVES = ["fitness", "-cost"]


def _space():
    return SearchSpace.categorical({"a": [3, 2], "b": [3]})  # 18 architectures


def _fitness(space):
    base = synthetic_fitness(space, seed=4)

    def fn(arch):
        return {"fitness": base(arch), "cost": float(sum((i + 1) * c for i, c in enumerate(arch.choices)))}

    return fn


def _brute_force_front(space, fn):
    archs = [space.validate(list(c)) for c in itertools.product(*(range(k) for k in space.num_choices))]
    values = [[fn(a)["fitness"], fn(a)["cost"]] for a in archs]
    return {archs[i] for i in non_dominated(values, ["maximize", "minimize"])}


def test_objective_parsing():
    assert parse_objectives(["fitness", "latency_ms", "+sq", "-pq", {"name": "flops"}]) == (
        Objective("fitness", "maximize"),
        Objective("latency_ms", "minimize"),
        Objective("sq", "maximize"),
        Objective("pq", "minimize"),
        Objective("flops", "minimize"),
    )
    for bad, match in [([], "at least one"), (["fitness", "+fitness"], "twice"), (["a b"], "metric name"),
                       ([{"name": "x", "direction": "up"}], "direction"), ([{"nam": "x"}], "needs 'name'")]:
        with pytest.raises(ValueError, match=match):
            parse_objectives(bad)
    with pytest.raises(ValueError, match="'latency_ms' is not among.*available: fitness, pq"):
        objective_values(1.0, {"pq": 2.0}, parse_objectives(["latency_ms"]))


@pytest.mark.parametrize("name", ["mo-random", "nsga2"])
def test_exhaustive_search_returns_the_brute_force_front(name):
    space = _space()
    fn = _fitness(space)
    result = build_searcher(name, space, budget=200, seed=0, objectives=OBJECTIVES).run(fn)
    assert result.num_evaluated == space.size  # a small space is exhausted
    assert set(result.pareto) == _brute_force_front(space, fn)
    # always: the returned set is exactly the non-dominated part of what was evaluated
    evaluated = {h.arch: [h.fitness, h.metrics["cost"]] for h in result.history}
    archs = list(evaluated)
    expected = {archs[i] for i in non_dominated([evaluated[a] for a in archs], ["maximize", "minimize"])}
    assert set(result.pareto) == expected
    assert result.best in result.pareto
    assert result.best_fitness == max(evaluated[a][0] for a in result.pareto)
    assert result.extras["objectives"] == [{"name": "fitness", "direction": "maximize"},
                                           {"name": "cost", "direction": "minimize"}]


def test_mo_random_exhausts_small_space():
    space = _space()
    fn = _fitness(space)
    result = build_searcher("mo-random", space, budget=space.size, seed=3, objectives=OBJECTIVES).run(fn)
    assert result.num_evaluated == space.size
    assert set(result.pareto) == _brute_force_front(space, fn)


def test_nsga2_improves_hypervolume_over_random_on_average():
    space = SearchSpace.categorical({"x": [3] * 6})
    fn = _fitness(space)
    ref = [min(fn(space.validate([0] * 6))["fitness"], -10.0), 100.0]

    def hv(name, seed):
        r = build_searcher(name, space, budget=80, seed=seed, objectives=OBJECTIVES).run(fn)
        pts = [[h.fitness, h.metrics["cost"]] for h in r.history if h.arch in set(r.pareto)]
        return hypervolume(pts, ref, ["maximize", "minimize"])

    nsga = sum(hv("nsga2", s) for s in range(6))
    rand = sum(hv("mo-random", s) for s in range(6))
    assert nsga >= rand


def test_pareto_json_round_trip_and_missing_metric():
    space = _space()
    result = build_searcher("nsga2", space, budget=12, seed=2, objectives=OBJECTIVES).run(_fitness(space))
    again = SearchResult.from_json(space, json.loads(json.dumps(result.to_json())))
    assert again == result and again.pareto
    with pytest.raises(ValueError, match="'cost' is not among"):
        build_searcher("nsga2", space, budget=12, objectives=OBJECTIVES).run(synthetic_fitness(space))


def test_nsga2_counts_rejected_proposals():
    space = SearchSpace.categorical({"x": [3] * 4})
    s = build_searcher("nsga2", space, budget=30, seed=0, objectives=OBJECTIVES)
    result = s.run(_fitness(space), constraint=lambda a: a.choices[0] != 2)
    assert all(h.arch.choices[0] != 2 for h in result.history)
    assert result.extras["rejected"] == s.rejected > 0
    with pytest.raises(SearchError):
        build_searcher("tpe", space, budget=10).run(_fitness(space), constraint=lambda a: False)


def test_multi_objective_flag():
    from oneshot.search import available_searchers, get_searcher_class

    flags = {name: get_searcher_class(name).multi_objective for name in available_searchers()}
    assert {n for n, f in flags.items() if f} == {"nsga2", "mo-random"}
