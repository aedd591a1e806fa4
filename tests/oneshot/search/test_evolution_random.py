import pytest

from oneshot import SearchSpace
from oneshot.search import EvolutionSearcher, RandomSearcher, SearchError
from oneshot.search.testing import CountingFitness, synthetic_fitness


@pytest.fixture
def space():
    return SearchSpace.categorical({"x": [4] * 6})


def test_evolution_generations_and_parents(space):
    searcher = EvolutionSearcher(space, population=10, generations=4, top_k=3, mutations=4, crossovers=4, seed=0)
    fitness = synthetic_fitness(space)
    sizes = []
    while batch := searcher.ask():
        sizes.append(len(batch))
        searcher.tell([(a, fitness(a)) for a in batch])
    assert sizes == [10, 10, 10, 10]
    result = searcher.result()
    best = max(result.history, key=lambda h: h.fitness)
    assert (result.best, result.best_fitness) == (best.arch, best.fitness)
    # later generations improve on random: their best beats generation 0's best
    gen0 = max(h.fitness for h in result.history[:10])
    assert max(h.fitness for h in result.history[10:]) >= gen0


def test_evolution_with_budget():
    space = SearchSpace.categorical({"x": [3] * 8})
    paper = EvolutionSearcher.with_budget(space, 1000)
    assert (paper.population, paper.generations, paper.top_k, paper.mutations, paper.crossovers) == (50, 20, 10, 25, 25)
    small = EvolutionSearcher.with_budget(space, 60)
    assert small.max_evaluations <= 60 and small.generations > 1
    with pytest.raises(ValueError):
        EvolutionSearcher(space, population=10, mutations=6, crossovers=6)


def test_evolution_bounded_rejection_stops_on_a_small_feasible_set(space):
    feasible = {space.validate([c, 0, 0, 0, 0, d]) for c in range(4) for d in range(4)}
    fitness = CountingFitness(synthetic_fitness(space))
    result = EvolutionSearcher(space, population=10, generations=5, top_k=3, mutations=4, crossovers=4, seed=0).run(
        fitness, constraint=lambda a: a in feasible
    )
    assert set(fitness.calls) <= feasible and result.num_evaluated == len(fitness.calls) <= 16


def test_random_samples_are_distinct_and_cover_a_tiny_space():
    space = SearchSpace.categorical({"x": [2, 3]})
    fitness = CountingFitness(synthetic_fitness(space))
    result = RandomSearcher(space, num_samples=50, seed=0).run(fitness)
    assert sorted(a.choices for a in fitness.calls) == [(i, j) for i in range(2) for j in range(3)]
    assert result.best_fitness == max(fitness.fn(a) for a in fitness.calls)


def test_random_batches_do_not_change_the_samples(space):
    fitness = synthetic_fitness(space)
    a = RandomSearcher(space, 20, seed=3, batch_size=1).run(fitness)
    b = RandomSearcher(space, 20, seed=3, batch_size=7).run(fitness)
    assert [h.arch for h in a.history] == [h.arch for h in b.history]
    with pytest.raises(SearchError):
        RandomSearcher(space, 5, max_tries=20).run(fitness, constraint=lambda arch: False)
