import statistics

import numpy as np
import pytest

from oneshot import SearchSpace
from oneshot.search import (
    ModelSelectSearcher,
    SurrogateSearcher,
    build_searcher,
    cross_validated_error_ratio,
)
from oneshot.search.cell_tables import CellTable
from oneshot.search.synthetic_tables import SyntheticTable
from oneshot.search.testing import SearcherTestSuite, percentiles_beside_random


@pytest.fixture
def searcher_name():
    return "model-select"


class TestModelSelectSuite(SearcherTestSuite):
    pass


def _additive_table() -> SyntheticTable:
    """8 x 3, additive under a saturating map: no interactions, no dead choices."""
    return SyntheticTable(8, 3, seed=7, pair_scale=0.0, dead_layers_per_component=0)


def _interaction_table() -> SyntheticTable:
    """6 x 4 with strong pairwise interactions and a dead choice per component."""
    return SyntheticTable(6, 4, seed=3, pair_scale=1.5, pair_density=0.6)


def test_cross_validated_error_ratio_compares_two_predictors():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(40, 4))
    y = x.sum(axis=1) + 0.1 * rng.normal(size=40)

    def exact(xs, ys):
        return lambda q: q.sum(axis=1).astype(float)

    def constant(xs, ys):
        return lambda q: np.full(len(q), ys.mean())

    ratio = cross_validated_error_ratio(x, y, exact, constant, folds=5)
    assert ratio < 0.05
    assert cross_validated_error_ratio(x, y, constant, exact, folds=5) == pytest.approx(1.0 / ratio)


def test_an_additive_table_without_noise_returns_the_best_measured():
    table = _additive_table()
    result = ModelSelectSearcher(table.space, budget=60, seed=0).run(table.fitness(0.0))
    assert result.extras["branch"] == "saturating-exact"
    assert result.extras["noise_ratio"] < 0.1
    assert result.best_fitness == max(h.fitness for h in result.history)
    assert table.rank_percentile(result.best) < 1.0


def test_an_additive_table_with_noise_returns_the_models_argmax_evaluated_last():
    table = _additive_table()
    searcher = ModelSelectSearcher(table.space, budget=60, seed=1)  # seed 0's quick test picks the GP
    result = searcher.run(table.fitness(1.0, seed=1))
    assert result.extras["branch"] == "saturating-noisy"
    assert result.extras["probes"] == 3 and result.extras["noise_ratio"] >= 0.1
    assert result.best == searcher._ranked(1)[0]  # the score's argmax, not the best measurement
    if result.num_evaluated == 60:  # the pick was new: it is the last evaluation
        assert result.history[-1].arch == result.best


def test_a_table_with_interactions_goes_to_the_surrogate_as_if_it_had_run_alone():
    table = _interaction_table()
    fitness = table.fitness(1.0, seed=2)
    # without the quick test (which hands this table over at 12 evaluations), the first test, at
    # 20 evaluations = 5 fair windows of 4, hands over: the surrogate with that design
    result = ModelSelectSearcher(table.space, budget=40, seed=2, complexity_penalty=0.0, quick_check=None).run(fitness)
    assert result.extras["branch"] == "surrogate"
    (first,) = result.extras["cv_error_ratios"]
    assert first > 1.5
    alone = SurrogateSearcher(table.space, budget=40, seed=2, init_fraction=0.5, design="fair-balanced").run(fitness)
    assert [h.arch for h in result.history] == [h.arch for h in alone.history]
    assert result.best == alone.best
    ensemble = ModelSelectSearcher(
        table.space, budget=40, seed=2, complexity_penalty=0.0, quick_check=None, select="ensemble"
    ).run(fitness)
    alone = SurrogateSearcher(table.space, budget=40, seed=2, init_fraction=0.5, design="fair-balanced", select="ensemble").run(fitness)
    assert ensemble.best == alone.best  # the option reaches the surrogate branch
    penalised = ModelSelectSearcher(table.space, budget=40, seed=2, quick_check=None).run(fitness)  # penalty 5: the default
    alone = SurrogateSearcher(table.space, budget=40, seed=2, init_fraction=0.5, design="fair-balanced", complexity_penalty=5.0).run(fitness)
    assert penalised.extras["cv_error_ratios"] == result.extras["cv_error_ratios"]  # the model test is not penalised
    assert [h.arch for h in penalised.history] == [h.arch for h in alone.history]
    assert [h.arch for h in penalised.history] != [h.arch for h in result.history]  # and it changes the search


def test_shared_effects_reach_both_models_and_wait_for_the_same_choices_at_every_layer():
    table = _interaction_table()  # 6 x 4: every layer has the same choices
    fitness = table.fitness(1.0, seed=2)
    options = {"quick_check": None, "complexity_penalty": 0.0}
    shared = ModelSelectSearcher(table.space, budget=40, seed=2, **options).run(fitness)
    alone = SurrogateSearcher(table.space, budget=40, seed=2, init_fraction=0.5, design="fair-balanced", shared_weight=0.5).run(fitness)
    assert shared.extras["branch"] == "surrogate"
    assert [h.arch for h in shared.history] == [h.arch for h in alone.history]
    off = ModelSelectSearcher(table.space, budget=40, seed=2, shared_weight=0.0, deviation_ridge=None, **options).run(fitness)
    assert off.extras["cv_error_ratios"] != shared.extras["cv_error_ratios"]
    # a space whose layers have different numbers of choices has no shared effects: options ignored
    mixed = SearchSpace.categorical({"a": [3, 3, 2, 4, 3, 2]})
    rng = np.random.default_rng(0)
    effects = [rng.normal(size=k) for k in mixed.num_choices]

    def additive(arch):
        return float(sum(e[c] for e, c in zip(effects, arch.choices, strict=True)) + rng.normal(scale=0.1))

    runs = []
    for opts in ({}, {"shared_weight": 0.0, "deviation_ridge": None}):
        rng = np.random.default_rng(0)  # the same noise for both runs (``additive`` reads this rng)
        runs.append(ModelSelectSearcher(mixed, budget=30, seed=1, **opts).run(additive))
    assert [h.arch for h in runs[0].history] == [h.arch for h in runs[1].history]


def test_rejects_bad_options():
    table = SyntheticTable(4, 3, seed=0)
    with pytest.raises(ValueError, match="second_check"):
        build_searcher("model-select", table.space, first_check=40, second_check=30)
    with pytest.raises(ValueError, match="budget"):
        build_searcher("model-select", table.space, budget=1)


def test_beats_random_search_on_a_table_with_interactions():
    """Over 30 seeds at 40 evaluations with noise sigma = 1 on a 7 x 3 table with interactions and
    a dead choice per component, its median percentile is at most half of random search's and it
    wins (or ties) on at least 65 % of the seeds (measured: 2.58 % against 7.50 %, 24 of 30)."""
    table = SyntheticTable(7, 3, seed=4)
    ours, theirs = percentiles_beside_random(table, ModelSelectSearcher, budget=40, sigma=1.0, seeds=range(30))
    assert statistics.median(ours) <= 0.5 * statistics.median(theirs)
    assert sum(a <= b for a, b in zip(ours, theirs, strict=True)) >= 0.65 * len(ours)


def test_failed_measurements_do_not_make_noisy_ones_look_exact():
    """With chance-level measurements of disconnected cells in the design, the spread of all
    measurements is huge and the probes' residuals look small beside it: without clipping, noise
    sigma = 1 was taken as exact in 7 of 12 seeds (measured) on this cell table. Without the quick
    test, more runs reach the noise test; with plain fair windows and independent effects (with the
    default pair-balanced windows or shared effects, most unclipped runs go to the surrogate and
    never reach it)."""
    table = CellTable(4, 3, seed=5)
    branches = {True: [], False: []}
    for seed in range(12):
        fitness = table.fitness(1.0, seed=seed)
        for clip in (True, False):
            options = {"quick_check": None, "design": "fair", "deviation_ridge": None}
            if not clip:
                options["clip_outliers"] = None
            result = ModelSelectSearcher(table.space, budget=40, seed=seed, **options).run(fitness)
            branches[clip].append(result.extras["branch"])
    assert branches[True].count("saturating-exact") == 0
    assert branches[False].count("saturating-exact") >= 4


def test_the_quick_test_hands_over_to_the_surrogate_with_its_own_design():
    """A clear interaction table is seen at 18 evaluations, the surrogate's own design size:
    the run is then the surrogate's alone."""
    table = _interaction_table()
    for seed in range(6):
        fitness = table.fitness(1.0, seed=seed)
        result = ModelSelectSearcher(table.space, budget=60, seed=seed).run(fitness)
        if len(result.extras["cv_error_ratios"]) == 1:
            break
    else:
        pytest.fail("no run handed over at the quick test")
    assert result.extras["branch"] == "surrogate" and result.extras["cv_error_ratios"][0] > 1.5
    alone = SurrogateSearcher(
        table.space, budget=60, seed=seed, complexity_penalty=5.0, shared_weight=0.5, design="fair-balanced"
    ).run(fitness)
    assert [h.arch for h in result.history] == [h.arch for h in alone.history]
    assert result.best == alone.best


def test_tests_of_equal_size_collapse_and_the_quick_test_can_be_off():
    space = SyntheticTable(6, 4, seed=0).space  # fair windows of 4
    assert ModelSelectSearcher(space, budget=60, seed=0)._checks == [(16, 1.5), (28, 1.5), (44, 1.2)]
    assert ModelSelectSearcher(space, budget=60, seed=0, quick_check=None)._checks == [(28, 1.5), (44, 1.2)]
    assert ModelSelectSearcher(space, budget=10, seed=0)._checks == [(4, 1.2)]  # one window: one test
    with pytest.raises(ValueError, match="quick_check"):
        build_searcher("model-select", space, quick_check=40)
