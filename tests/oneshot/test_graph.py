import torch
from torch import nn

from oneshot.graph import component_graph, layer_graph, plot_component_graph
from oneshot.space import ChoiceLayer
from oneshot.testing import ToySupernet


def _choice(label: str, component: str, width: int = 4) -> ChoiceLayer:
    return ChoiceLayer(
        {"conv3": nn.Conv2d(width, width, 3, padding=1), "conv1": nn.Conv2d(width, width, 1)},
        label=label,
        component=component,
    )


class TwoBranches(nn.Module):
    """Encoder -> (decoder, context) -> fusion, with registration order unlike the forward order."""

    def __init__(self) -> None:
        super().__init__()
        self.fusion = _choice("fusion.0", "fusion")  # registered first, runs last
        self.enc = nn.ModuleList([_choice("enc.0", "encoder"), _choice("enc.1", "encoder")])
        self.dec = _choice("dec.0", "decoder")
        self.ctx = _choice("ctx.0", "context")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.enc:
            x = torch.relu(layer(x))
        a = self.dec(x)
        b = nn.functional.interpolate(self.ctx(nn.functional.avg_pool2d(x, 2)), scale_factor=2.0)
        return self.fusion(a + b)


def test_toy_supernet_is_a_chain():
    g = layer_graph(ToySupernet(), torch.randn(1, 3, 8, 8))
    assert sorted(g.edges()) == [("body.0", "body.1"), ("body.1", "body.2"), ("body.2", "head.0")]
    c = component_graph(g)
    assert c["body"]["head"] == {"connections": 1, "inter_modular": True}
    assert c["body"]["body"]["connections"] == 2 and c.nodes["body"]["num_layers"] == 3


def test_branches_and_fusion_are_traced_through_unsearchable_ops():
    model = TwoBranches()
    g = layer_graph(model, torch.randn(1, 4, 8, 8))
    assert set(g.edges()) == {
        ("enc.0", "enc.1"), ("enc.1", "dec.0"), ("enc.1", "ctx.0"), ("dec.0", "fusion.0"), ("ctx.0", "fusion.0")
    }
    c = component_graph(g)
    assert {(a, b) for a, b, d in c.edges(data=True) if d["inter_modular"]} == {
        ("encoder", "decoder"), ("encoder", "context"), ("decoder", "fusion"), ("context", "fusion")
    }
    assert all(p.grad is None for p in model.parameters())


def test_plot_component_graph_writes_a_png(tmp_path):
    c = component_graph(layer_graph(TwoBranches(), torch.randn(1, 4, 8, 8)))
    plot_component_graph(c, path=str(tmp_path / "g.png"))
    assert (tmp_path / "g.png").stat().st_size > 1000
