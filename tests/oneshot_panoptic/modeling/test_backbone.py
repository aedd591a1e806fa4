"""Backbone supernet: presets, labels, output strides, weight sharing per choice."""

from __future__ import annotations

import pytest
import torch

from oneshot import SearchSpace, activate, active_parameters, freeze
from oneshot_panoptic.modeling.backbone import BACKBONE_PRESETS, ShuffleNetV2Supernet
from oneshot_panoptic.modeling.ops import BACKBONE_CHOICES


def test_detnas_presets() -> None:
    assert BACKBONE_PRESETS["300M"].stage_repeats == (4, 4, 8, 4)
    assert BACKBONE_PRESETS["300M"].stage_channels == (64, 160, 320, 640)
    assert BACKBONE_PRESETS["1.3G"].stage_repeats == (8, 8, 16, 8)
    assert (BACKBONE_PRESETS["1.3G"].stem_channels, BACKBONE_PRESETS["1.3G"].stage_channels) == (
        48,
        (96, 240, 480, 960),
    )
    assert (BACKBONE_PRESETS["3.8G"].stem_channels, BACKBONE_PRESETS["3.8G"].stage_channels) == (
        72,
        (172, 432, 864, 1728),
    )
    assert [BACKBONE_PRESETS[p].num_layers for p in ("tiny", "300M", "1.3G", "3.8G")] == [
        8,
        20,
        40,
        40,
    ]


@pytest.mark.parametrize("preset", ["300M", "1.3G", "3.8G"])
def test_paper_presets_on_meta_device(preset: str) -> None:
    with torch.device("meta"):
        net = ShuffleNetV2Supernet.from_spec(BACKBONE_PRESETS[preset])
        outs = net.layers[0].candidates["shuffle3x3"](
            torch.empty(1, net.stem[0].out_channels, 64, 64)
        )
    space = SearchSpace.from_module(net)
    spec = BACKBONE_PRESETS[preset]
    assert space.labels == tuple(f"backbone.{i}" for i in range(spec.num_layers))
    assert space.num_choices == (4,) * spec.num_layers
    assert outs.shape == (1, spec.stage_channels[0], 32, 32)


def test_tiny_outputs_at_strides_4_8_16_32() -> None:
    net = ShuffleNetV2Supernet.from_spec(BACKBONE_PRESETS["tiny"])
    space = SearchSpace.from_module(net)
    assert space.layers[0].choice_names == BACKBONE_CHOICES
    with activate(net, space.sample(0)):
        outs = net(torch.randn(2, 3, 96, 128))
    assert [tuple(o.shape) for o in outs] == [
        (2, 32, 24, 32),
        (2, 64, 12, 16),
        (2, 128, 6, 8),
        (2, 256, 3, 4),
    ]


def test_only_the_active_unit_runs_and_gets_gradients() -> None:
    torch.manual_seed(0)
    net = ShuffleNetV2Supernet.from_spec(BACKBONE_PRESETS["tiny"])
    arch = [3, 0, 1, 2, 3, 2, 1, 0]
    with activate(net, arch):
        sum(o.mean() for o in net(torch.randn(2, 3, 64, 64))).backward()
    for layer, choice in zip(net.layers, arch, strict=True):
        for i, name in enumerate(layer.choice_names):
            grads = [p.grad for p in layer.candidates[name].parameters()]
            if i == choice:
                assert all(g is not None for g in grads), (layer.label, name)
            else:
                assert all(g is None for g in grads), (layer.label, name)
    assert all(p.grad is not None for p in active_parameters(net, arch))


def test_frozen_backbone_matches_supernet() -> None:
    torch.manual_seed(0)
    net = ShuffleNetV2Supernet.from_spec(BACKBONE_PRESETS["tiny"]).eval()
    arch = [0, 1, 2, 3, 3, 2, 1, 0]
    x = torch.randn(1, 3, 64, 96)
    with activate(net, arch), torch.no_grad():
        expected = net(x)
    frozen = freeze(net, arch)
    with torch.no_grad():
        got = frozen(x)
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
