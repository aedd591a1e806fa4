import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from oneshot import Architecture, ArchitectureError, ChoiceLayer, SearchSpace, activate

PAPER = {"backbone": [4] * 40, "head": [6] * 7, "inter": [3] * 9}


def test_paper_space_size_and_window():
    space = SearchSpace.categorical(PAPER)
    assert space.size == 4**40 * 6**7 * 3**9
    assert isinstance(space.size, int)
    assert space.window_size == 12
    assert space.num_layers == 56
    assert list(space.components) == ["backbone", "head", "inter"]
    assert [len(v) for v in space.components.values()] == [40, 7, 9]


def test_architecture_json_round_trip_and_hash():
    space = SearchSpace.categorical(PAPER)
    arch = space.sample(3)
    obj = arch.to_json()
    assert list(obj) == ["backbone", "head", "inter"]
    assert [len(v) for v in obj.values()] == [40, 7, 9]
    again = Architecture.from_json(space, json.loads(json.dumps(obj)))
    assert again == arch and hash(again) == hash(arch)
    assert len({arch, again}) == 1
    assert space.from_json(json.dumps(obj)) == arch
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.choices = (0,)  # immutable


def test_save_load(tmp_path):
    space = SearchSpace.categorical(PAPER)
    arch = space.sample(0)
    arch.save(tmp_path / "a.json")
    assert Architecture.load(space, tmp_path / "a.json") == arch


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"backbone": [0] * 39, "head": [0] * 7, "inter": [0] * 9}, "component 'backbone' has 39 choices"),
        ({"backbone": [0] * 40, "head": [0] * 6 + [6], "inter": [0] * 9}, "layer 'head.6': choice 6 out of range 0..5"),
        ({"backbone": [0] * 40, "head": [0] * 7, "inter": [0] * 9, "neck": [0]}, "unknown component 'neck'"),
        ({"backbone": [0] * 40, "head": [0] * 7}, "missing component 'inter'"),
        ([0] * 55, "architecture has 55 choices, the search space has 56 layers"),
        ({"backbone": [0] * 40, "head": [0] * 7, "inter": [0] * 8 + [-1]}, "layer 'inter.8': choice -1 out of range 0..2"),
        ({"backbone": [0] * 40, "head": [0] * 7, "inter": [0] * 8 + ["x"]}, "choice must be an integer"),
        ("{not json", "not valid JSON"),
        (3, "must be a dict grouped by component or a list"),
    ],
)
def test_invalid_architectures_give_one_clear_error(obj, message):
    space = SearchSpace.categorical(PAPER)
    with pytest.raises(ValueError, match=None) as info:
        space.from_json(obj)
    assert isinstance(info.value, ArchitectureError)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_load_reports_path(tmp_path):
    space = SearchSpace.categorical({"a": [2, 2]})
    p = tmp_path / "bad.json"
    p.write_text("[0, 5]")
    with pytest.raises(ArchitectureError, match="bad.json: layer 'a.1': choice 5 out of range 0..1"):
        Architecture.load(space, p)
    with pytest.raises(ArchitectureError, match="cannot read architecture file"):
        Architecture.load(space, tmp_path / "missing.json")


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.l0 = ChoiceLayer({"c3": nn.Conv2d(4, 4, 3, padding=1), "c5": nn.Conv2d(4, 4, 5, padding=2)}, label="body.0", component="body")
        self.l1 = ChoiceLayer({"id": nn.Identity(), "relu": nn.ReLU(), "tanh": nn.Tanh()}, label="head.0", component="head")

    def forward(self, x):
        return self.l1(self.l0(self.stem(x)))


def test_from_module_order_and_names():
    space = SearchSpace.from_module(Toy())
    assert space.labels == ("body.0", "head.0")
    assert space.num_choices == (2, 3)
    assert space.layers[0].choice_names == ("c3", "c5")
    assert space.window_size == 6


def test_choice_layer_without_active_choice_raises():
    model = Toy()
    with pytest.raises(RuntimeError, match="choice layer 'body.0' has no active choice"):
        model(torch.zeros(1, 3, 8, 8))
    arch = SearchSpace.from_module(model).architecture([1, 2])
    with activate(model, arch):
        assert model.l0.active == 1 and model.l1.active == 2
        model(torch.zeros(1, 3, 8, 8))
    assert model.l0.active is None


def test_duplicate_labels_rejected():
    class Dup(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = ChoiceLayer({"x": nn.Identity()}, label="l", component="c")
            self.b = ChoiceLayer({"x": nn.Identity()}, label="l", component="c")

    with pytest.raises(ValueError, match="duplicate choice-layer labels"):
        SearchSpace.from_module(Dup())


def test_sample_is_uniform_and_reproducible():
    space = SearchSpace.categorical({"a": [3] * 4})
    assert space.sample(7) == space.sample(7)
    rng = np.random.default_rng(0)
    counts = np.zeros(3)
    for _ in range(3000):
        counts += np.bincount(space.sample(rng).choices, minlength=3)
    assert np.all(np.abs(counts / counts.sum() - 1 / 3) < 0.02)


def test_to_graph():
    space = SearchSpace.categorical({"backbone": [4] * 3, "head": [6] * 2})
    g = space.to_graph()
    layers = [n for n, d in g.nodes(data=True) if d["kind"] == "layer"]
    choices = [n for n, d in g.nodes(data=True) if d["kind"] == "choice"]
    assert len(layers) == 5 and len(choices) == 4 * 3 + 6 * 2
    assert g.has_edge("backbone.0", "backbone.1") and not g.has_edge("backbone.2", "head.0")
    assert g.graph["size"] == math.prod([4] * 3 + [6] * 2)
