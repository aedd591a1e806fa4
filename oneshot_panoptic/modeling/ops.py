"""Candidate operations of the Auto-Panoptic search space (the paper's §3.2; docs/model.md).

Three families, each listed in its choice-index order:

* backbone units (DetNAS / ShuffleNetV2 space): ``shuffle3x3``, ``shuffle5x5``, ``shuffle7x7``,
  ``xception3x3`` (:data:`BACKBONE_CHOICES`, built by :func:`backbone_op`);
* head layers: ``dwconv3x3``, ``dwconv5x5``, ``dfconv3x3``, ``dfconv5x5``, ``atconv3x3``,
  ``atconv5x5`` (:data:`HEAD_CHOICES`, built by :func:`head_op`), each followed by GroupNorm and ReLU;
* inter-modular attention: SE-style channel attention with reduction ratio 4, 8 or 16
  (:data:`INTER_CHOICES`, :class:`ChannelAttention`).

GroupNorm uses ``gcd(32, channels)`` groups: 32 groups for the paper's widths (128, 256) and the
largest divisor of ``channels`` not above 32 for the narrow widths of the tiny presets.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from oneshot_panoptic.modeling.deform import deform_conv2d

__all__ = [
    "BACKBONE_CHOICES",
    "HEAD_CHOICES",
    "INTER_CHOICES",
    "REDUCTION_RATIOS",
    "channel_shuffle",
    "group_norm_groups",
    "ShuffleUnit",
    "XceptionUnit",
    "DWConv",
    "ATConv",
    "DFConv",
    "ChannelAttention",
    "backbone_op",
    "head_op",
]

BACKBONE_CHOICES: tuple[str, ...] = ("shuffle3x3", "shuffle5x5", "shuffle7x7", "xception3x3")
HEAD_CHOICES: tuple[str, ...] = (
    "dwconv3x3",
    "dwconv5x5",
    "dfconv3x3",
    "dfconv5x5",
    "atconv3x3",
    "atconv5x5",
)
REDUCTION_RATIOS: tuple[int, ...] = (4, 8, 16)
INTER_CHOICES: tuple[str, ...] = tuple(f"r{r}" for r in REDUCTION_RATIOS)


def channel_shuffle(x: Tensor, groups: int = 2) -> Tensor:
    """Interleave the channels of ``groups`` equal groups: ``(N, C, H, W) -> (N, C, H, W)``."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def group_norm_groups(channels: int, max_groups: int = 32) -> int:
    """Number of GroupNorm groups: ``max_groups`` when it divides ``channels``, else the largest
    divisor of ``channels`` that divides ``max_groups`` (``gcd``)."""
    return math.gcd(int(channels), int(max_groups))


def _conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, groups: int = 1, relu: bool
) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


def _projection_branch(channels: int, kernel_size: int) -> nn.Sequential:
    """Stride-2 shortcut of a ShuffleNetV2 unit: depthwise k×k s2 -> BN -> 1×1 -> BN -> ReLU."""
    return nn.Sequential(
        *_conv_bn(channels, channels, kernel_size, stride=2, groups=channels, relu=False),
        *_conv_bn(channels, channels, 1, relu=True),
    )


class _ShuffleNetV2Unit(nn.Module):
    """Two-branch ShuffleNetV2 unit; subclasses build ``main`` and set ``kernel_size``.

    Stride 1: ``(N, C, H, W) -> (N, C, H, W)``; the first half of the channels passes through, the
    main branch works on the second half. Stride 2: ``(N, C_in, H, W) -> (N, C_out, H/2, W/2)``; a
    projection branch (``C_in -> C_in``) runs beside the main branch (``C_in -> C_out - C_in``).
    The two outputs are concatenated, then the channels are shuffled (2 groups).
    """

    main: nn.Sequential
    proj: nn.Sequential | None

    def __init__(self, *, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f"a stride-1 unit keeps its width, got {in_channels} -> {out_channels}")
        if out_channels % 2 or (stride == 2 and out_channels <= in_channels):
            raise ValueError(f"invalid unit widths {in_channels} -> {out_channels} (stride {stride})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.mid_channels = out_channels // 2
        # Channels the main branch reads and writes.
        self.branch_in = in_channels if stride == 2 else in_channels // 2
        self.branch_out = out_channels - in_channels if stride == 2 else out_channels // 2

    def forward(self, x: Tensor) -> Tensor:
        if self.proj is None:
            shortcut, x = x.chunk(2, dim=1)
        else:
            shortcut = self.proj(x)
        return channel_shuffle(torch.cat((shortcut, self.main(x)), dim=1))


class ShuffleUnit(_ShuffleNetV2Unit):
    """ShuffleNetV2 unit "Shuffle k×k" (k = 3, 5, 7).

    Main branch: 1×1 -> BN -> ReLU -> depthwise k×k (stride) -> BN -> 1×1 -> BN -> ReLU, with
    ``out_channels // 2`` middle channels.
    """

    def __init__(self, *, in_channels: int, out_channels: int, stride: int, kernel_size: int) -> None:
        super().__init__(in_channels=in_channels, out_channels=out_channels, stride=stride)
        self.kernel_size = kernel_size
        mid = self.mid_channels
        self.main = nn.Sequential(
            *_conv_bn(self.branch_in, mid, 1, relu=True),
            *_conv_bn(mid, mid, kernel_size, stride=stride, groups=mid, relu=False),
            *_conv_bn(mid, self.branch_out, 1, relu=True),
        )
        self.proj = _projection_branch(in_channels, kernel_size) if stride == 2 else None


class XceptionUnit(_ShuffleNetV2Unit):
    """ShuffleNetV2 unit "Xception 3×3".

    Main branch: three times (depthwise 3×3 -> BN -> 1×1 -> BN), ReLU after the first two and at
    the end; the first depthwise conv carries the stride.
    """

    def __init__(self, *, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(in_channels=in_channels, out_channels=out_channels, stride=stride)
        self.kernel_size = 3
        mid, cin = self.mid_channels, self.branch_in
        self.main = nn.Sequential(
            *_conv_bn(cin, cin, 3, stride=stride, groups=cin, relu=False),
            *_conv_bn(cin, mid, 1, relu=True),
            *_conv_bn(mid, mid, 3, groups=mid, relu=False),
            *_conv_bn(mid, mid, 1, relu=True),
            *_conv_bn(mid, mid, 3, groups=mid, relu=False),
            *_conv_bn(mid, self.branch_out, 1, relu=True),
        )
        self.proj = _projection_branch(in_channels, 3) if stride == 2 else None


def backbone_op(name: str, *, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Build the backbone candidate ``name`` (one of :data:`BACKBONE_CHOICES`)."""
    if name == "xception3x3":
        return XceptionUnit(in_channels=in_channels, out_channels=out_channels, stride=stride)
    if name in ("shuffle3x3", "shuffle5x5", "shuffle7x7"):
        return ShuffleUnit(
            in_channels=in_channels, out_channels=out_channels, stride=stride, kernel_size=int(name[-1])
        )
    raise ValueError(f"unknown backbone op {name!r}; choose from {list(BACKBONE_CHOICES)}")


class DWConv(nn.Module):
    """Depthwise-separable conv: depthwise k×k then pointwise 1×1. ``(N, C_in, H, W) -> (N, C_out, H, W)``."""

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


class ATConv(nn.Conv2d):
    """Atrous k×k conv with dilation 2 (same spatial size). ``(N, C_in, H, W) -> (N, C_out, H, W)``."""

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 2) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
            bias=False,
        )


class DFConv(nn.Module):
    """Modulated deformable k×k conv (DCNv2).

    Uses :func:`torchvision.ops.deform_conv2d` on CUDA and the equal, vectorised
    :func:`oneshot_panoptic.modeling.deform.deform_conv2d` on CPU (torchvision's CPU backward is slow).
    A plain k×k conv predicts ``2·k²`` offsets and ``k²`` mask logits; it is zero-initialised, so
    at initialisation the op is a regular conv whose taps are weighted by ``sigmoid(0) = 0.5``.
    ``(N, C_in, H, W) -> (N, C_out, H, W)``.
    """

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.out_channels = out_channels
        taps = kernel_size * kernel_size
        self.offset_mask = nn.Conv2d(in_channels, 3 * taps, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)  # type: ignore[arg-type]  # the conv has a bias
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] == 0:  # no RoIs: deform_conv2d rejects empty batches
            return x.new_zeros((0, self.out_channels, x.shape[2], x.shape[3]))
        taps = self.kernel_size * self.kernel_size
        offset, mask = self.offset_mask(x).split((2 * taps, taps), dim=1)
        pad = self.kernel_size // 2
        return deform_conv2d(x, offset, self.weight, None, padding=(pad, pad), mask=mask.sigmoid())


def head_op(name: str, *, in_channels: int, out_channels: int) -> nn.Sequential:
    """Build the head candidate ``name`` (one of :data:`HEAD_CHOICES`) followed by GroupNorm and ReLU.

    ``(N, C_in, H, W) -> (N, C_out, H, W)``.
    """
    if name not in HEAD_CHOICES:
        raise ValueError(f"unknown head op {name!r}; choose from {list(HEAD_CHOICES)}")
    kernel_size = int(name[-1])
    conv: nn.Module
    if name.startswith("dwconv"):
        conv = DWConv(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size)
    elif name.startswith("dfconv"):
        conv = DFConv(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size)
    else:
        conv = ATConv(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size)
    return nn.Sequential(
        conv, nn.GroupNorm(group_norm_groups(out_channels), out_channels), nn.ReLU(inplace=True)
    )


class ChannelAttention(nn.Module):
    """SE-style cross-branch channel attention (paper Eq. 1) with reduction ratio ``r``.

    Maps channel statistics of one branch, ``z: (N, in_features)``, to an attention vector for the
    other branch, ``a = 1 - sigmoid(W2 · ReLU(W1 · z))`` of shape ``(N, out_channels, 1, 1)``.
    The bottleneck has ``max(1, out_channels // r)`` units (the paper's ``C_s / r``; the
    reference code uses the same width).
    """

    def __init__(self, *, in_features: int, out_channels: int, reduction: int) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction ratio must be >= 1, got {reduction}")
        self.reduction = reduction
        hidden = max(1, out_channels // reduction)
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, out_channels)

    def forward(self, z: Tensor) -> Tensor:
        a = self.fc2(torch.relu(self.fc1(z)))
        return (1.0 - torch.sigmoid(a))[:, :, None, None]
