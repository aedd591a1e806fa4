"""The digits supernet, also the one ``examples/classification_digits.py`` searches.

Three components: ``stem`` (1 layer: conv3 / conv5), ``body`` (4 layers: conv3 / sep5 / dil3 /
skip, residual) and ``head`` (1 layer: avg / avgmax / flatten). Input ``(N, 1, 8, 8)``, output
``(N, 10)`` logits.
"""

from __future__ import annotations

import torch
from torch import nn

from oneshot import ChoiceLayer

__all__ = ["DigitsSupernet"]


def _conv(c_in: int, c_out: int, kernel: int, *, stride: int = 1, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _Residual(nn.Module):
    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class _PoolHead(nn.Module):
    def __init__(self, channels: int, num_classes: int, *, with_max: bool) -> None:
        super().__init__()
        self.with_max = with_max
        self.fc = nn.Linear(channels * (2 if with_max else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))
        if self.with_max:
            pooled = torch.cat([pooled, x.amax(dim=(2, 3))], dim=1)
        return self.fc(pooled)


def _body(label: str, width: int) -> ChoiceLayer:
    return ChoiceLayer(
        {
            "conv3": _Residual(_conv(width, width, 3)),
            "sep5": _Residual(nn.Sequential(_conv(width, width, 5, groups=width), _conv(width, width, 1))),
            "dil3": _Residual(_conv(width, width, 3, dilation=2)),
            "skip": nn.Identity(),
        },
        label=label,
        component="body",
    )


class DigitsSupernet(nn.Module):
    """A small CNN supernet for ``(N, 1, 8, 8)`` images, output ``(N, num_classes)`` logits.

    ``stem.0`` (component ``stem``): {conv3, conv5}, 1 -> ``width`` channels at 8x8;
    ``body.0`` .. ``body.3`` (component ``body``): {conv3, sep5, dil3, skip}, residual; ``body.0-1``
    at 8x8 with ``width`` channels, then a fixed (shared) stride-2 conv to ``2 * width`` channels
    at 4x4, then ``body.2-3``; ``head.0`` (component ``head``): {avg: global average pool + linear,
    avgmax: average and max pool + linear, flatten: the 4x4 map flattened + linear}.
    """

    def __init__(self, *, width: int = 16, num_classes: int = 10) -> None:
        super().__init__()
        wide = 2 * width
        self.stem = ChoiceLayer({"conv3": _conv(1, width, 3), "conv5": _conv(1, width, 5)}, label="stem.0", component="stem")
        self.body_8x8 = nn.Sequential(_body("body.0", width), _body("body.1", width))
        self.reduce = _conv(width, wide, 3, stride=2)  # shared by every path
        self.body_4x4 = nn.Sequential(_body("body.2", wide), _body("body.3", wide))
        self.head = ChoiceLayer(
            {
                "avg": _PoolHead(wide, num_classes, with_max=False),
                "avgmax": _PoolHead(wide, num_classes, with_max=True),
                "flatten": nn.Sequential(nn.Flatten(), nn.Linear(wide * 16, num_classes)),
            },
            label="head.0",
            component="head",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body_4x4(self.reduce(self.body_8x8(self.stem(x)))))
