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
    assert [t.get_text() for t in ax.texts[:3]] == ["backbone", "head", "inter"]
    assert len(ax.texts) == 3 + sum(space.num_choices)  # every layer's candidates are named
    image = ax.images[0].get_array()
    assert image.shape == (6, 7)
    assert image.mask[4:, 0].all() and not image.mask[:, 3].any()  # 4-choice layer padded, 6-choice not
    assert len(ax.patches) == space.num_layers  # the argmax of every layer is outlined


def test_score_heatmap_groups_interleaved_components():
    # A U-Net's registration order: decoder and fusion layers alternate.
    from oneshot.space import LayerSpec

    layers = [
        LayerSpec("enc.0", "encoder", ("k3", "k5", "k7")),
        LayerSpec("dec.0", "decoder", ("bilinear", "transposed")),
        LayerSpec("fuse.0", "fusion", ("add", "concat", "gate")),
        LayerSpec("dec.1", "decoder", ("nearest", "transposed")),
        LayerSpec("fuse.1", "fusion", ("add", "concat", "gate")),
        LayerSpec("head", "head", ("conv1", "conv3")),
    ]
    space = SearchSpace(layers)
    table = [[float(10 * layer + c) for c in range(n)] for layer, n in enumerate(space.num_choices)]
    ax = plot_score_heatmap(table, space).axes[0]
    order = [0, 1, 3, 2, 4, 5]  # encoder, decoder (layers 1, 3), fusion (2, 4), head
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(i) for i in order]
    grid = ax.images[0].get_array()
    for column, layer in enumerate(order):
        assert list(grid[: space.num_choices[layer], column]) == table[layer]
    titles = {t.get_text(): t.get_position()[0] for t in ax.texts[:4]}
    assert titles == {"encoder": 0.0, "decoder": 1.5, "fusion": 3.5, "head": 5.0}
    # each layer's own candidate names sit in its column, including the narrower layers' and
    # the decoder layers whose names differ ("bilinear" vs "nearest")
    cells = {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text() for t in ax.texts[4:]}
    assert cells[(1, 0)] == "bilinear" and cells[(2, 0)] == "nearest" and cells[(5, 1)] == "conv3"
    assert [ax.patches[i].get_xy()[0] + 0.5 for i in range(6)] == list(range(6))


def test_viz_is_an_attribute_of_a_plain_import():
    import subprocess
    import sys

    code = "import oneshot; print(oneshot.viz.plot_score_heatmap.__name__, oneshot.metrics.ConfusionMatrix.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["plot_score_heatmap", "ConfusionMatrix"]


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
