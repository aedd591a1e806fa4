import pytest
from matplotlib.figure import Figure

from oneshot import SearchSpace
from oneshot.search import EvolutionSearcher, PathPrioritySearcher, RandomSearcher
from oneshot.search.testing import synthetic_fitness
from oneshot.viz import plot_best_so_far, plot_explored_models, plot_score_heatmap


@pytest.fixture(scope="module")
def space():
    return SearchSpace.categorical({"backbone": [4, 4, 4], "head": [6, 6], "inter": [3, 3]})


@pytest.fixture(scope="module")
def results(space):
    fitness = synthetic_fitness(space)
    return {
        "path-priority": PathPrioritySearcher(space, cycles=3).run(fitness),
        "evolution": EvolutionSearcher(space, population=10, generations=3, top_k=3, mutations=4, crossovers=4).run(fitness),
        "random": RandomSearcher(space, 20).run(fitness),
    }


def test_score_heatmap(space, results, tmp_path):
    fig = plot_score_heatmap(results["path-priority"], space, path=tmp_path / "h.png")
    assert isinstance(fig, Figure)
    assert (tmp_path / "h.png").stat().st_size > 1000
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["backbone", "head", "inter"]
    image = ax.images[0].get_array()
    assert image.shape == (6, 7)
    assert image.mask[4:, 0].all() and not image.mask[:, 3].any()  # 4-choice layer padded, 6-choice not
    assert len(ax.patches) == space.num_layers  # the argmax of every layer is outlined


def test_score_heatmap_rejects_a_result_without_table(space, results):
    with pytest.raises(ValueError, match="no score table"):
        plot_score_heatmap(results["random"], space)
    with pytest.raises(ValueError, match="layers"):
        plot_score_heatmap([[1.0, 2.0]], space)


def test_explored_models_and_best_so_far(results, tmp_path):
    fig = plot_explored_models(results, path=tmp_path / "e.svg")
    assert (tmp_path / "e.svg").exists()
    ax = fig.axes[0]
    sizes = [len(c.get_offsets()) for c in ax.collections]
    assert sum(sizes) == sum(r.num_evaluated for r in results.values()) + sum(
        r.best in {h.arch for h in r.history} for r in results.values()
    )
    fig = plot_best_so_far({k: [v, v] for k, v in results.items()}, path=tmp_path / "b.png")
    lines = fig.axes[0].get_lines()
    assert [len(line.get_xdata()) for line in lines] == [len(r.history) for r in results.values()]
    assert list(lines[2].get_ydata()) == results["random"].best_so_far()


def test_training_loss(tmp_path):
    from oneshot.viz import plot_training_loss

    losses = [3.0 / (1 + i) for i in range(100)]
    fig = plot_training_loss(losses, path=tmp_path / "loss.png")
    lines = fig.axes[0].get_lines()
    assert list(lines[0].get_ydata()) == losses
    assert len(lines[1].get_ydata()) == 100 - 5 + 1  # moving average over 5 steps
    assert (tmp_path / "loss.png").stat().st_size > 1000
    with pytest.raises(ValueError):
        plot_training_loss([])
