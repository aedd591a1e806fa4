import pytest

from oneshot import SearchSpace
from oneshot.search import (
    EvolutionOptions,
    EvolutionSearcher,
    PathPrioritySearcher,
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


def test_options_are_a_typed_model_read_as_attributes(space):
    by_keyword = EvolutionSearcher(space, population=8, generations=2, top_k=2, mutations=3, crossovers=3, seed=4)
    by_position = EvolutionSearcher(space, 8, 2, 2, 3, 3, seed=4)
    by_model = EvolutionSearcher(space, EvolutionOptions(population=8, generations=2, top_k=2, mutations=3, crossovers=3), seed=4)
    assert by_keyword.options == by_position.options == by_model.options
    assert (by_keyword.population, by_keyword.mutation_prob, by_keyword.max_evaluations) == (8, 0.1, 16)
    assert RandomSearcher(space, 7).batch_size == space.window_size  # a derived value replaces the None option
    with pytest.raises(AttributeError):
        _ = by_keyword.no_such_option


@pytest.mark.parametrize(
    "options, message",
    [
        ({"population": 0}, "searcher 'evolution' option population: Input should be greater than or equal to 1 (got 0)"),
        ({"population": 4, "mutations": 3, "crossovers": 3}, "searcher 'evolution': mutations + crossovers (6) exceed the population (4)"),
        ({"populaton": 4}, "searcher 'evolution' has no option 'populaton'; accepted: population, generations"),
    ],
)
def test_bad_options_are_one_line(space, options, message):
    for build in (lambda: EvolutionSearcher(space, **options), lambda: build_searcher("evolution", space, **options)):
        with pytest.raises(ValueError) as err:
            build()
        assert message in str(err.value) and "\n" not in str(err.value)


def test_config_options_are_checked_strictly(space):
    with pytest.raises(ValueError, match="option cycles: Input should be a valid integer .got '5'."):
        build_searcher("path-priority", space, cycles="5")
    assert PathPrioritySearcher(space, cycles="5").cycles == 5  # a direct construction converts, as int() did
    with pytest.raises(ValueError, match="option seed: must be an integer"):
        build_searcher("random", space, seed="1")


def test_a_searcher_with_its_own_init_keyword_arguments_still_builds(monkeypatch, space):
    monkeypatch.setattr(registry_module.SEARCHERS, "_entries", dict(registry_module.SEARCHERS._entries))

    @register_searcher("legacy")
    class Legacy(RandomSearcher):
        def __init__(self, space, num_samples=10, *, seed=0, stride=1):
            super().__init__(space, num_samples, seed=seed)
            self.stride = stride

    s = build_searcher("legacy", space, num_samples=6, stride=2, seed=1)
    assert (s.num_samples, s.stride, s.seed) == (6, 2, 1)
    assert build_searcher("legacy", space, budget=5).max_evaluations == 5
    with pytest.raises(TypeError, match="unexpected keyword argument 'strid'"):
        build_searcher("legacy", space, strid=2)
