import numpy as np
import pytest

from oneshot.search.synthetic_tables import SyntheticTable, synthetic_table


def test_shapes_and_scale():
    table = synthetic_table("6x5", seed=1)
    assert table.space.num_choices == (5,) * 6
    assert table.exact and table.best_accuracy == pytest.approx(93.0)
    assert np.std(table._sorted_acc) == pytest.approx(2.7)
    best = table.space.architecture(list(np.unravel_index(np.argmax(
        table.accuracies(np.array(list(np.ndindex(*(5,) * 6))))), (5,) * 6)))
    assert table.rank_percentile(best) == 0.0


def test_dead_choice_makes_the_component_irrelevant():
    table = SyntheticTable(6, 3, seed=2, components=2, dead_layers_per_component=1)
    dead = int(np.flatnonzero(table.dead & (table.component_of == 0))[0])
    others = [i for i in np.flatnonzero(table.component_of == 0) if i != dead]
    rng = np.random.default_rng(0)
    base = rng.integers(0, 3, size=(50, 6))
    base[:, dead] = 0
    varied = base.copy()
    varied[:, others] = rng.integers(0, 3, size=(50, len(others)))
    assert table.accuracies(base) == pytest.approx(table.accuracies(varied))
    base[:, dead] = 1
    varied[:, dead] = 1
    assert not np.allclose(table.accuracies(base), table.accuracies(varied))


def test_noise_is_deterministic_and_large_tables_are_sampled():
    table = synthetic_table("8x3", seed=3)
    arch = table.space.architecture([1] * 8)
    f = table.fitness(1.0, seed=4)
    assert f(arch) == f(arch) != table.fitness(1.0, seed=5)(arch)
    assert table.fitness(0.0)(arch) == table.accuracy(arch)
    with pytest.raises(ValueError):
        synthetic_table("8by3")
    small = SyntheticTable(5, 4, seed=0, exact_limit=100)
    assert not small.exact and len(small._sorted_acc) == 2**20
