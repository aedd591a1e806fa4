"""Multi-fidelity racing in the Study: partial evaluations stored as such, never taken for full ones."""

import json

import numpy as np
import pytest

from oneshot.search import EvaluationStore, HistoryEntry, build_searcher
from oneshot.space import SearchSpace
from oneshot.study import Racing, Study

SPACE = SearchSpace.categorical({"a": [4, 4, 4], "b": [3, 3]})


def _true(arch) -> float:
    w = np.random.default_rng(3).normal(size=(len(arch), 4)) * 3
    return float(sum(w[i, c] for i, c in enumerate(arch.choices)))


class Fitness:
    """True value plus noise whose sd shrinks with the fraction of data scored; counts calls."""

    def __init__(self):
        self.calls: list[tuple[str, float]] = []

    def __call__(self, arch, fraction=1.0):
        self.calls.append((arch.key, fraction))
        rng = np.random.default_rng(abs(hash((arch.key, fraction))) % 2**32)
        return _true(arch) + rng.normal() * 0.3 * (1 - fraction) - 0.5 * (1 - fraction)


def test_promotion_rule_by_hand():
    r = Racing(fraction=0.25, top_k=1, z=2.0, min_pairs=2)
    pairs = [(1.0, 2.0), (2.0, 3.0)]  # differences 1, 1: mean 1, sd 0
    assert r.promote(0.0, [5.0], pairs[:1])  # too few pairs: always promoted
    assert r.promote(0.0, [], pairs)  # no full score to beat: promoted
    assert not r.promote(3.9, [5.0], pairs)  # 3.9 + 1 < 5
    assert r.promote(4.0, [5.0], pairs)  # 4 + 1 >= 5
    pairs = [(1.0, 2.0), (2.0, 4.0)]  # differences 1, 2: mean 1.5, sd 0.7071
    assert r.promote(5.0 - 1.5 - 2 * 0.70710678 + 1e-6, [5.0, 1.0], pairs)
    assert not r.promote(5.0 - 1.5 - 2 * 0.70710678 - 1e-3, [5.0, 1.0], pairs)
    assert not Racing(top_k=2, min_pairs=2).promote(-10.0, [5.0, 1.0], pairs)
    with pytest.raises(ValueError):
        Racing(fraction=1.0)


def test_racing_spends_less_and_keeps_partial_scores_apart(tmp_path):
    fitness = Fitness()
    store = EvaluationStore(tmp_path / "e.jsonl", space=SPACE)
    study = Study(fitness, store=store, racing=Racing(fraction=0.25, min_pairs=3))
    result = study.optimize(build_searcher("random", SPACE, budget=40, seed=1))
    partial_only = [h for h in result.history if h.fidelity < 1.0]
    assert partial_only, "some candidates should have been dropped after their partial score"
    assert result.best_fitness == max(h.fitness for h in result.history if h.fidelity == 1.0)
    assert study.cost < 40 and study.cost == pytest.approx(sum(f for _, f in fitness.calls))
    # the store: full records are the promoted ones, partial ones apart, never returned by get()
    for h in partial_only:
        assert store.get(h.arch) is None and store.get_partial(h.arch, 0.25).fitness == h.fitness
    records = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()[1:]]
    assert {r["type"] for r in records} == {"eval", "partial"}
    assert all(r["fraction"] == 0.25 for r in records if r["type"] == "partial")
    assert len(store) == len([h for h in result.history if h.fidelity == 1.0])
    # the report's candidates can be forced to a full evaluation
    forced = study.evaluate([partial_only[0].arch], full=True)[0]
    assert forced.fidelity == 1.0 and store.get(partial_only[0].arch) is not None


def test_a_search_resumed_from_the_store_equals_the_uninterrupted_one(tmp_path):
    racing = Racing(fraction=0.25, min_pairs=3)
    reference = Study(Fitness(), store=EvaluationStore(tmp_path / "a.jsonl", space=SPACE), racing=racing).optimize(
        build_searcher("evolution", SPACE, budget=30, seed=2)
    )

    class Interrupted(Exception):
        pass

    class Dies(Fitness):
        def __call__(self, arch, fraction=1.0):
            if len(self.calls) == 23:
                raise Interrupted
            return super().__call__(arch, fraction)

    path = tmp_path / "b.jsonl"
    with pytest.raises(Interrupted):
        Study(Dies(), store=EvaluationStore(path, space=SPACE), racing=racing).optimize(
            build_searcher("evolution", SPACE, budget=30, seed=2)
        )
    again = Fitness()
    resumed = Study(again, store=EvaluationStore(path, space=SPACE), racing=racing).optimize(
        build_searcher("evolution", SPACE, budget=30, seed=2)
    )
    assert [(h.arch.key, h.fitness, h.fidelity) for h in resumed.history] == [
        (h.arch.key, h.fitness, h.fidelity) for h in reference.history
    ]
    assert 0 < len(again.calls) < 23  # only what the interruption lost was evaluated again


def test_racing_refuses_a_batch_fitness():
    from oneshot.search import batch_fitness

    with pytest.raises(ValueError, match="per-architecture"):
        Study(batch_fitness(lambda archs: [0.0] * len(archs)), racing=Racing())


def test_history_entries_keep_their_fidelity_through_json():
    from oneshot.search import SearchResult

    arch = SPACE.sample(0)
    res = SearchResult("random", arch, 1.0, [HistoryEntry(arch, 1.0, 0.0, {}, 0.25), HistoryEntry(arch, 2.0)])
    back = SearchResult.from_json(SPACE, json.loads(json.dumps(res.to_json())))
    assert [h.fidelity for h in back.history] == [0.25, 1.0]


def test_the_toy_task_says_how_many_examples_a_fraction_scores():
    from oneshot.config import load_config
    from oneshot.testing import ToyConfig, ToyTask

    task = ToyTask(load_config(ToyConfig, overrides=["data.num_val=10"]), progress=False)
    assert task.evaluation_size("search") == 10
    assert task.evaluation_size("search", fraction=0.25) == 3 and task.evaluation_size("search", fraction=0.01) == 1


def test_racing_never_returns_an_architecture_judged_on_the_subset_alone():
    space = SearchSpace.categorical({"a": [4, 4, 4, 4]})

    def fitness(arch, fraction=1.0):
        choices = [int(c) for c in arch.key.split("-")]
        full = sum(choices) + sum(i * c for i, c in enumerate(choices)) / 100
        return full + (3.0 if fraction < 1 else 0.0)  # the subset scores every architecture 3 higher

    study = Study(fitness, racing=Racing(fraction=0.25, z=2.0, min_pairs=4))
    result = study.optimize(build_searcher("random", space, budget=60, seed=0))
    told = next(h for h in result.history if h.arch == result.best)
    assert told.fidelity == 1.0
    # the returned one is the best of those evaluated in full, although dropped ones scored higher
    assert max(h.fitness for h in result.history if h.fidelity < 1) > result.best_fitness
