import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot import FairSampler, SearchSpace
from oneshot.search import PathPrioritySearcher, ScoreTable, ranked_combinations
from oneshot.search.testing import CountingFitness, synthetic_fitness


@pytest.fixture
def space():
    return SearchSpace.categorical({"backbone": [4, 4, 2], "head": [3, 6]})  # window 12


def _reference_scores(space, fitness, cycles, seed):
    """The paper's Algorithm 1 written out directly."""
    sampler = FairSampler(space, seed=seed)
    k = space.window_size
    scores = [np.zeros(n) for n in space.num_choices]
    for _ in range(cycles):
        window = sampler.next_window()
        values = [fitness(a) for a in window]
        ranks = np.argsort(np.argsort(-np.asarray(values), kind="stable"), kind="stable")
        for arch, rank in zip(window, ranks, strict=True):
            for layer, choice in enumerate(arch.choices):
                scores[layer][choice] += k - rank
    return scores


def test_scores_follow_algorithm_1(space):
    fitness = synthetic_fitness(space, seed=2)
    counting = CountingFitness(fitness)
    result = PathPrioritySearcher(space, cycles=5, seed=7).run(counting)
    expected = _reference_scores(space, fitness, 5, seed=7)
    assert [list(row) for row in result.score_table] == [list(row) for row in expected]
    argmax = [int(np.argmax(row)) for row in expected]
    assert list(result.best.choices) == argmax
    assert counting.total == result.num_evaluated <= 60
    # every layer hands out sum(K - r) = K (K + 1) / 2 points per cycle
    k = space.window_size
    assert all(sum(row) == 5 * k * (k + 1) // 2 for row in result.score_table)


def test_best_is_the_argmax_and_not_evaluated_by_default(space):
    fitness = synthetic_fitness(space)
    result = PathPrioritySearcher(space, cycles=2, seed=1).run(fitness)
    in_history = {h.arch: h.fitness for h in result.history}
    assert result.best_fitness == in_history.get(result.best)
    assert result.extras["selection"] == "argmax"
    evaluated = PathPrioritySearcher(space, cycles=2, seed=1, evaluate_best=True).run(fitness)
    assert evaluated.best == result.best
    assert evaluated.best_fitness == fitness(result.best)
    assert evaluated.num_evaluated == result.num_evaluated + (result.best not in in_history)


def test_finds_the_optimum_of_an_additive_fitness():
    # layers of equal importance: the rank of a model is informative about each of its paths
    space = SearchSpace.categorical({"x": [3] * 5})
    rng = np.random.default_rng(0)
    weights = np.stack([rng.permutation(3) for _ in range(5)]).astype(float)
    result = PathPrioritySearcher(space, cycles=20, seed=0).run(
        lambda a: float(sum(weights[i, c] for i, c in enumerate(a.choices)))
    )
    assert list(result.best.choices) == list(weights.argmax(axis=1))


def test_top_k_are_the_ith_best_choices(space):
    result = PathPrioritySearcher(space, cycles=3, seed=0, top_k=5).run(synthetic_fitness(space))
    table = result.score_table
    assert result.top_k[0] == result.best
    for i, arch in enumerate(result.top_k):
        for layer, choice in enumerate(arch.choices):
            ranking = sorted(range(len(table[layer])), key=lambda c: (-table[layer][c], c))
            assert choice == ranking[min(i, len(ranking) - 1)]


def test_ties_break_to_the_lowest_index():
    space = SearchSpace.categorical({"x": [3, 3]})
    result = PathPrioritySearcher(space, cycles=1, seed=0).run(lambda a: 0.0)
    # all fitnesses equal: ranks follow window order, so the score table is that of the window
    table = ScoreTable(space)
    assert table.argmax().choices == (0, 0)
    assert result.best == space.validate([int(np.argmax(r)) for r in result.score_table])


def test_with_budget_uses_whole_windows(space):
    assert PathPrioritySearcher.with_budget(space, 60).cycles == 5
    assert PathPrioritySearcher.with_budget(space, 71).max_evaluations == 60
    with pytest.raises(ValueError, match="at least one fair window of 12"):
        PathPrioritySearcher.with_budget(space, 11)


def test_constraint_repairs_an_infeasible_argmax(space):
    fitness = synthetic_fitness(space)
    free = PathPrioritySearcher(space, cycles=3, seed=0).run(fitness)
    banned = free.best

    def constraint(a):
        return a != banned

    result = PathPrioritySearcher(space, cycles=3, seed=0).run(fitness, constraint=constraint)
    assert result.best != banned and result.extras["selection"] == "best-feasible-combination"


@settings(max_examples=15, deadline=None)
@given(rows=st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=3), min_size=1, max_size=4))
def test_ranked_combinations_enumerates_by_decreasing_sum(rows):
    combos = list(ranked_combinations(rows))
    brute = list(itertools.product(*[range(len(r)) for r in rows]))
    assert sorted(combos) == sorted(brute)
    sums = [sum(rows[i][c] for i, c in enumerate(combo)) for combo in combos]
    assert sums == sorted(sums, reverse=True)
