"""Candidate operations: shapes, ShuffleNetV2 unit structure, head ops, channel attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from oneshot_panoptic.modeling.ops import (
    BACKBONE_CHOICES,
    HEAD_CHOICES,
    INTER_CHOICES,
    REDUCTION_RATIOS,
    ATConv,
    ChannelAttention,
    DFConv,
    ShuffleUnit,
    XceptionUnit,
    backbone_op,
    channel_shuffle,
    group_norm_groups,
    head_op,
)


def test_choice_orders_match_the_paper() -> None:
    assert BACKBONE_CHOICES == ("shuffle3x3", "shuffle5x5", "shuffle7x7", "xception3x3")
    assert HEAD_CHOICES == (
        "dwconv3x3",
        "dwconv5x5",
        "dfconv3x3",
        "dfconv5x5",
        "atconv3x3",
        "atconv5x5",
    )
    assert REDUCTION_RATIOS == (4, 8, 16)
    assert INTER_CHOICES == ("r4", "r8", "r16")


def test_channel_shuffle_interleaves_two_groups() -> None:
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert channel_shuffle(x).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


@pytest.mark.parametrize(
    ("channels", "groups"), [(256, 32), (128, 32), (64, 32), (32, 32), (48, 16), (20, 4)]
)
def test_group_norm_groups_divide_channels(channels: int, groups: int) -> None:
    assert group_norm_groups(channels) == groups
    assert channels % group_norm_groups(channels) == 0


@pytest.mark.parametrize("name", BACKBONE_CHOICES)
def test_backbone_op_stride2_shapes(name: str) -> None:
    op = backbone_op(name, in_channels=16, out_channels=48, stride=2)
    out = op(torch.randn(2, 16, 12, 10))
    assert out.shape == (2, 48, 6, 5)
    assert op.proj is not None and op.proj[0].kernel_size == (op.kernel_size, op.kernel_size)


@pytest.mark.parametrize("name", BACKBONE_CHOICES)
def test_backbone_op_stride1_passes_half_the_channels_through(name: str) -> None:
    op = backbone_op(name, in_channels=32, out_channels=32, stride=1).eval()
    x = torch.randn(2, 32, 8, 8)
    out = op(x)
    assert out.shape == x.shape
    # After the shuffle, even channels are the untouched first half of the input.
    torch.testing.assert_close(out[:, 0::2], x[:, :16])
    assert op.proj is None


def test_shuffle_and_xception_main_branch_layout() -> None:
    shuffle = ShuffleUnit(in_channels=16, out_channels=48, stride=2, kernel_size=7)
    convs = [m for m in shuffle.main if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [1, 7, 1]
    assert convs[1].groups == convs[1].in_channels == 24 and convs[1].stride == (2, 2)
    assert convs[2].out_channels == 48 - 16
    xception = XceptionUnit(in_channels=16, out_channels=48, stride=2)
    convs = [m for m in xception.main if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [3, 1, 3, 1, 3, 1]
    assert [c.groups > 1 for c in convs] == [True, False] * 3
    assert convs[0].stride == (2, 2) and all(c.stride == (1, 1) for c in convs[1:])
    assert sum(isinstance(m, nn.ReLU) for m in xception.main) == 3


def test_invalid_unit_widths_raise() -> None:
    with pytest.raises(ValueError):
        backbone_op("shuffle3x3", in_channels=16, out_channels=32, stride=1)
    with pytest.raises(ValueError):
        backbone_op("conv9x9", in_channels=16, out_channels=16, stride=1)


@pytest.mark.parametrize("name", HEAD_CHOICES)
def test_head_op_keeps_spatial_size_and_ends_with_groupnorm_relu(name: str) -> None:
    op = head_op(name, in_channels=24, out_channels=32)
    out = op(torch.randn(3, 24, 9, 7))
    assert out.shape == (3, 32, 9, 7)
    assert isinstance(op[1], nn.GroupNorm) and op[1].num_groups == 32
    assert isinstance(op[2], nn.ReLU)
    assert (out >= 0).all()


def test_atconv_has_dilation_two() -> None:
    op = ATConv(in_channels=4, out_channels=4, kernel_size=5)
    assert op.dilation == (2, 2) and op.padding == (4, 4)


def test_dfconv_at_initialisation_is_a_half_weighted_plain_conv() -> None:
    torch.manual_seed(0)
    op = DFConv(in_channels=6, out_channels=5, kernel_size=3)
    x = torch.randn(2, 6, 7, 8)
    expected = 0.5 * F.conv2d(x, op.weight, padding=1)
    torch.testing.assert_close(op(x), expected, rtol=1e-4, atol=1e-5)


def test_dfconv_offsets_learn_and_move_the_sampling() -> None:
    torch.manual_seed(0)
    op = DFConv(in_channels=4, out_channels=4, kernel_size=3)
    x = torch.randn(1, 4, 6, 6)
    op(x).square().sum().backward()
    assert op.offset_mask.weight.grad is not None and op.offset_mask.weight.grad.abs().sum() > 0
    before = op(x).detach()
    with torch.no_grad():
        op.offset_mask.bias[:18].fill_(0.5)  # shift every tap by half a pixel
    assert not torch.allclose(op(x), before)


def test_dfconv_accepts_an_empty_batch() -> None:
    op = head_op("dfconv5x5", in_channels=8, out_channels=8)
    assert op(torch.zeros(0, 8, 14, 14)).shape == (0, 8, 14, 14)


@pytest.mark.parametrize("reduction", REDUCTION_RATIOS)
def test_channel_attention_shapes_range_and_bottleneck(reduction: int) -> None:
    att = ChannelAttention(in_features=40, out_channels=64, reduction=reduction)
    assert att.fc1.out_features == 64 // reduction  # r16 is 16, not 6
    a = att(torch.randn(3, 40))
    assert a.shape == (3, 64, 1, 1)
    assert ((a > 0) & (a < 1)).all()
    # a = 1 - sigmoid(fc2(relu(fc1(z))))
    z = torch.randn(2, 40)
    expected = 1 - torch.sigmoid(att.fc2(torch.relu(att.fc1(z))))
    torch.testing.assert_close(att(z)[:, :, 0, 0], expected)
