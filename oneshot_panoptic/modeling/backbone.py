"""The DetNAS ShuffleNetV2 backbone supernet (the paper's §3.2; docs/model.md).

A 3×3 stride-2 stem (no max-pool) followed by four stages whose first unit has stride 2, so the
stage outputs lie at strides 4, 8, 16 and 32. Every unit is a :class:`~oneshot.ChoiceLayer` over
:data:`~oneshot_panoptic.modeling.ops.BACKBONE_CHOICES`, labelled ``backbone.0``, ``backbone.1``, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from oneshot.space import ChoiceLayer
from oneshot_panoptic.modeling.ops import BACKBONE_CHOICES, backbone_op

__all__ = ["BackboneSpec", "BACKBONE_PRESETS", "ShuffleNetV2Supernet"]


@dataclass(frozen=True)
class BackboneSpec:
    """Layout of a ShuffleNetV2 backbone: units per stage, stem width and stage widths."""

    stage_repeats: tuple[int, int, int, int]
    stem_channels: int
    stage_channels: tuple[int, int, int, int]

    @property
    def num_layers(self) -> int:
        return sum(self.stage_repeats)


#: DetNAS layouts (300M, 1.3G = the paper's search width, 3.8G = its retrain width) and a tiny
#: layout for CPU tests and the demo.
BACKBONE_PRESETS: dict[str, BackboneSpec] = {
    "tiny": BackboneSpec((2, 2, 2, 2), 16, (32, 64, 128, 256)),
    "300M": BackboneSpec((4, 4, 8, 4), 16, (64, 160, 320, 640)),
    "1.3G": BackboneSpec((8, 8, 16, 8), 48, (96, 240, 480, 960)),
    "3.8G": BackboneSpec((8, 8, 16, 8), 72, (172, 432, 864, 1728)),
}


class ShuffleNetV2Supernet(nn.Module):
    """ShuffleNetV2 backbone supernet with one choice layer per unit.

    Args:
        stage_repeats: units per stage (e.g. ``(8, 8, 16, 8)``).
        stem_channels: output width of the 3×3 stride-2 stem.
        stage_channels: output width of each stage.
        label_prefix: choice layers are labelled ``f"{label_prefix}.{i}"``.
        component: component name of the choice layers.

    ``forward(x: (N, 3, H, W)) -> [C2, C3, C4, C5]`` with ``Ck: (N, stage_channels[k-2], H/2^k, W/2^k)``
    (H, W divisible by 32).
    """

    def __init__(
        self,
        *,
        stage_repeats: Sequence[int],
        stem_channels: int,
        stage_channels: Sequence[int],
        label_prefix: str = "backbone",
        component: str = "backbone",
    ) -> None:
        super().__init__()
        if len(stage_repeats) != len(stage_channels) or not stage_repeats:
            raise ValueError("stage_repeats and stage_channels must have the same, non-zero length")
        self.stage_repeats = tuple(int(r) for r in stage_repeats)
        self.out_channels = tuple(int(c) for c in stage_channels)
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
        )
        layers: list[ChoiceLayer] = []
        stage_ends: list[int] = []
        in_channels = stem_channels
        for repeats, out_channels in zip(self.stage_repeats, self.out_channels, strict=True):
            for i in range(repeats):
                stride = 2 if i == 0 else 1
                candidates = {
                    name: backbone_op(name, in_channels=in_channels, out_channels=out_channels, stride=stride)
                    for name in BACKBONE_CHOICES
                }
                layers.append(ChoiceLayer(candidates, label=f"{label_prefix}.{len(layers)}", component=component))
                in_channels = out_channels
            stage_ends.append(len(layers) - 1)
        self.layers = nn.ModuleList(layers)
        self._stage_ends = frozenset(stage_ends)
        self._init_weights()

    @classmethod
    def from_spec(cls, spec: BackboneSpec, **kwargs: str) -> ShuffleNetV2Supernet:
        return cls(
            stage_repeats=spec.stage_repeats,
            stem_channels=spec.stem_channels,
            stage_channels=spec.stage_channels,
            **kwargs,
        )

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        outputs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self._stage_ends:
                outputs.append(x)
        return outputs
