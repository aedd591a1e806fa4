import itertools

import numpy as np
import pytest

from oneshot.search.cell_tables import CellTable, cell_table


def _connected(edges, ops, nodes):
    """Plain graph search: is the output reachable from the input over uncut edges?"""
    seen, todo = {0}, [0]
    while todo:
        i = todo.pop()
        for (a, b), op in zip(edges, ops, strict=True):
            if a == i and op != 0 and b not in seen:
                seen.add(b)
                todo.append(b)
    return nodes - 1 in seen


def test_nas_bench_201_shape_and_scale():
    table = cell_table("4x5", seed=1)
    assert table.edges == [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert table.space.num_choices == (5,) * 6 and table.exact
    assert len(table._sorted_acc) == 5**6 and table.best_accuracy == pytest.approx(94.0)
    connected = table._sorted_acc[table._sorted_acc > table.chance]
    assert np.std(connected) == pytest.approx(2.7)


def test_disconnected_cells_are_at_chance_and_only_they():
    table = CellTable(4, 3, seed=2)
    grid = np.array(list(itertools.product(range(3), repeat=6)))
    acc = table.accuracies(grid)
    expected = np.array([_connected(table.edges, ops, 4) for ops in grid])
    assert np.array_equal(acc > table.chance, expected)
    assert np.all(acc[~expected] == table.chance)
    assert table.disconnected_share == pytest.approx(1.0 - expected.mean())


def test_an_edge_cut_off_elsewhere_does_not_matter():
    table = CellTable(4, 4, seed=3)
    rng = np.random.default_rng(0)
    base = rng.integers(1, 4, size=(40, 6))
    base[:, 0] = 0  # cut 0 -> 1: node 1 gets no input, so edges 1 -> 2 and 1 -> 3 are dead
    varied = base.copy()
    varied[:, [2, 4]] = rng.integers(0, 4, size=(40, 2))
    assert table.accuracies(base) == pytest.approx(table.accuracies(varied))
    base[:, 0] = varied[:, 0] = 2  # connected again: now they matter
    assert not np.allclose(table.accuracies(base), table.accuracies(varied))


def test_percentiles_noise_and_bad_shapes():
    table = cell_table("4x4", seed=0)
    grid = np.array(list(itertools.product(range(4), repeat=6)))
    best = table.space.architecture([int(c) for c in grid[np.argmax(table.accuracies(grid))]])
    assert table.rank_percentile(best) == 0.0
    arch = table.space.architecture([2] * 6)
    f = table.fitness(1.0, seed=4)
    assert f(arch) == f(arch) != table.fitness(1.0, seed=5)(arch)
    with pytest.raises(ValueError, match="4x5"):
        cell_table("four")
    with pytest.raises(ValueError, match="3 operations"):
        CellTable(4, 2)
    sampled = CellTable(4, 3, seed=0, exact_limit=100)
    assert not sampled.exact and len(sampled._sorted_acc) == 2**20
