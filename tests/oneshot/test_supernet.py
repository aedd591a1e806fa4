import pytest
import torch
from torch import nn

from oneshot import ChoiceLayer, SearchSpace, activate, count_flops_params, freeze, recalibrate_bn


def test_freeze_equals_supernet_and_has_no_choice_layer(toy_supernet):
    space = SearchSpace.from_module(toy_supernet)
    x = torch.randn(4, 3, 12, 12)
    toy_supernet.eval()
    for seed in range(5):
        arch = space.sample(seed)
        with activate(toy_supernet, arch):
            expected = toy_supernet(x)
        frozen = freeze(toy_supernet, arch)
        assert not any(isinstance(m, ChoiceLayer) for m in frozen.modules())
        torch.testing.assert_close(frozen(x), expected, rtol=0, atol=0)
        n_frozen = sum(p.numel() for p in frozen.parameters())
        assert n_frozen < sum(p.numel() for p in toy_supernet.parameters())


def test_freeze_copies_weights(toy_supernet):
    arch = SearchSpace.from_module(toy_supernet).sample(0)
    frozen = freeze(toy_supernet, arch)
    with torch.no_grad():
        for p in frozen.parameters():
            p.add_(1.0)
    # the supernet is untouched
    frozen2 = freeze(toy_supernet, arch)
    for a, b in zip(frozen.parameters(), frozen2.parameters()):
        assert not torch.equal(a, b)


def test_freeze_nested_choice_layers():
    inner = ChoiceLayer({"a": nn.Linear(2, 2), "b": nn.Identity()}, label="inner", component="c")
    outer = ChoiceLayer({"x": nn.Sequential(inner), "y": nn.Tanh()}, label="outer", component="c")
    model = nn.Sequential(outer)
    space = SearchSpace.from_module(model)
    assert space.labels == ("outer", "inner")
    frozen = freeze(model, [0, 1])
    assert isinstance(frozen[0][0], nn.Identity)
    x = torch.randn(3, 2)
    with activate(model, [0, 1]):
        torch.testing.assert_close(frozen(x), model(x))


def test_recalibrate_bn_cumulative_average_only_active_path(toy_supernet):
    space = SearchSpace.from_module(toy_supernet)
    arch = space.architecture([0, 1, 2, 0])
    batches = [torch.randn(8, 3, 10, 10) * 3 + 1 for _ in range(4)]
    untouched = toy_supernet.body[0].candidates["conv5"][1]
    before = untouched.running_mean.clone()
    toy_supernet.eval()
    with activate(toy_supernet, arch):
        used = recalibrate_bn(toy_supernet, batches)
    assert used == 4
    assert torch.equal(untouched.running_mean, before)
    assert not toy_supernet.training and not untouched.training
    stem_bn = toy_supernet.stem[1]
    assert stem_bn.momentum == 0.1
    # cumulative average == mean of per-batch means of the stem output (conv before BN)
    with torch.no_grad():
        means = torch.stack([toy_supernet.stem[0](b).mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    torch.testing.assert_close(stem_bn.running_mean, means, rtol=1e-4, atol=1e-5)
    assert int(stem_bn.num_batches_tracked) == 4


def test_recalibrate_bn_num_batches(toy_supernet):
    arch = SearchSpace.from_module(toy_supernet).sample(1)
    with activate(toy_supernet, arch):
        assert recalibrate_bn(toy_supernet, (torch.randn(2, 3, 8, 8) for _ in range(10)), num_batches=3) == 3


def test_count_flops_params_runs_only_chosen_path(toy_supernet):
    space = SearchSpace.from_module(toy_supernet)
    x = torch.randn(1, 3, 16, 16)
    skip = count_flops_params(toy_supernet, space.architecture([2, 2, 2, 0]), x)
    conv5 = count_flops_params(toy_supernet, space.architecture([1, 1, 1, 0]), x)
    conv3 = count_flops_params(toy_supernet, space.architecture([0, 0, 0, 0]), x)
    assert skip.flops < conv3.flops < conv5.flops
    # a 3x3 conv 8->8 on 16x16: 2 * 8*8*9 * 256 FLOPs per layer
    assert conv3.flops - skip.flops == 3 * 2 * 8 * 8 * 9 * 256
    frozen = freeze(toy_supernet, space.architecture([0, 0, 0, 0]))
    assert conv3.params == sum(p.numel() for p in frozen.parameters())


def test_activate_validates(toy_supernet):
    with pytest.raises(ValueError, match="out of range"):
        with activate(toy_supernet, [0, 0, 3, 0]):
            pass


def test_choice_layers_are_cached_and_refreshed(toy_supernet):
    from oneshot import ChoiceLayer, SearchSpace
    from oneshot.supernet import clear_layer_cache

    with activate(toy_supernet, [0, 0, 0, 0]):
        pass
    toy_supernet.extra = ChoiceLayer({"a": nn.Identity(), "b": nn.Identity()}, label="extra.0", component="extra")
    with activate(toy_supernet, [0, 0, 0, 0, 1]):  # a new top-level child is picked up
        assert toy_supernet.extra.active == 1
    toy_supernet.body[0].candidates["conv3"].append(ChoiceLayer({"x": nn.Identity()}, label="deep", component="body"))
    clear_layer_cache(toy_supernet)  # deeper restructuring needs an explicit refresh
    assert SearchSpace.from_module(toy_supernet).num_layers == 6
    with activate(toy_supernet, [0, 0, 0, 0, 0, 1]):
        pass
