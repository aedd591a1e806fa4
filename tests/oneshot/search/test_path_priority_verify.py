import itertools

import numpy as np
import pytest

from oneshot import SearchSpace
from oneshot.search import VerifiedPathPrioritySearcher, fit_additive
from oneshot.search.testing import CountingFitness, synthetic_fitness


def test_fit_additive_recovers_an_additive_function():
    space = SearchSpace.categorical({"a": [2, 3], "b": [3]})
    effects = np.random.default_rng(1).normal(size=(3, 3))
    archs = [space.validate(list(c)) for c in itertools.product(range(2), range(3), range(3))]
    y = [5 + sum(effects[i, c] for i, c in enumerate(a.choices)) for a in archs]
    model = fit_additive(space, archs, y, ridge=1e-9)
    assert model.predict(archs) == pytest.approx(y, abs=1e-6)


def test_phases_budget_and_selection():
    space = SearchSpace.categorical({"x": [3] * 6})
    fitness = CountingFitness(synthetic_fitness(space))
    searcher = VerifiedPathPrioritySearcher(space, budget=30, seed=0, explore_fraction=0.5, blend=0.5)
    result = searcher.run(fitness)
    assert fitness.total == result.num_evaluated == 30
    assert result.extras["explore_cycles"] == 5 and result.extras["verified"] == 30 - result.extras["explored"]
    # the chosen architecture was evaluated; its fitness is the measured one
    assert result.best_fitness == fitness.fn(result.best)
    # verification follows the model: the first verified architecture is the explored argmax of the fit
    explored = fitness.order[: result.extras["explored"]]
    model = fit_additive(space, explored, [fitness.fn(a) for a in explored])
    first_verified = fitness.order[result.extras["explored"]]
    best_pred = max(model.predict([first_verified])[0], *model.predict(explored))
    assert model.predict([first_verified])[0] == pytest.approx(best_pred)


def test_blend_one_picks_the_best_measured():
    space = SearchSpace.categorical({"x": [3] * 5})
    fitness = synthetic_fitness(space)
    result = VerifiedPathPrioritySearcher(space, budget=24, blend=1.0).run(fitness)
    assert result.best_fitness == max(h.fitness for h in result.history)


def test_rejects_bad_options():
    space = SearchSpace.categorical({"x": [4] * 3})
    with pytest.raises(ValueError, match="at least one fair window"):
        VerifiedPathPrioritySearcher(space, budget=3)
    with pytest.raises(ValueError, match="blend"):
        VerifiedPathPrioritySearcher(space, budget=8, blend=2.0)
