import pytest

from oneshot import SearchSpace
from oneshot.search import (
    EvolutionSearcher,
    RandomSearcher,
    available_searchers,
    build_searcher,
    register_searcher,
)
from oneshot.search import registry as registry_module


@pytest.fixture
def space():
    return SearchSpace.categorical({"a": [3] * 4})


def test_builtin_names():
    assert {"path-priority", "evolution", "random", "path-priority-verify"} <= set(available_searchers())


def test_unknown_name_lists_the_available_ones(space):
    with pytest.raises(ValueError, match="unknown searcher 'nope'.*evolution.*path-priority.*random"):
        build_searcher("nope", space)


def test_duplicate_registration_is_loud(monkeypatch):
    monkeypatch.setattr(registry_module.SEARCHERS, "_entries", dict(registry_module.SEARCHERS._entries))
    register_searcher("random", RandomSearcher)  # same class again: harmless
    with pytest.raises(ValueError, match="already registered"):
        register_searcher("random", EvolutionSearcher)

    @register_searcher("my-random")
    class MyRandom(RandomSearcher):
        pass

    assert "my-random" in available_searchers()
    with pytest.raises(ValueError, match="not a Searcher"):
        register_searcher("bad", int)


def test_build_with_options_and_budget(space):
    s = build_searcher("evolution", space, population=8, generations=2, top_k=2, mutations=3, crossovers=3, seed=4)
    assert (s.population, s.generations, s.seed, s.max_evaluations) == (8, 2, 4, 16)
    assert build_searcher("random", space, budget=17).max_evaluations == 17
    with pytest.raises(ValueError, match="no option 'generation'.*accepted"):
        build_searcher("evolution", space, generation=3)
    with pytest.raises(ValueError, match="only 'seed'"):
        build_searcher("random", space, budget=5, batch_size=2)


def test_budget_build_accepts_the_with_budget_options(space):
    s = build_searcher("nsga2", space, budget=20, seed=1, objectives=["fitness", "-sq"])
    assert [str(o) for o in s.objectives] == ["+fitness", "-sq"]
    with pytest.raises(ValueError, match="'objectives', 'seed'"):
        build_searcher("nsga2", space, budget=20, population_size=4)


def test_a_typo_next_to_a_budget_is_an_unknown_option(space):
    # the unknown-option check comes before the budget rule: a typo is named as such
    with pytest.raises(ValueError, match="no option 'populaton'.*accepted") as err:
        build_searcher("evolution", space, budget=60, populaton=3)
    assert "only 'seed'" not in str(err.value)
    assert build_searcher("evolution", space, budget=60, seed=3).seed == 3
