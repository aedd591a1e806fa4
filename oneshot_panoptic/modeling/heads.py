"""Searchable heads (the paper's §3.2; docs/model.md): the 4-layer RoI mask head and the semantic branch.

Both are sequences of :class:`~oneshot.ChoiceLayer` s over :data:`~oneshot_panoptic.modeling.ops.HEAD_CHOICES`
in component ``head``: the mask head holds ``head.0`` .. ``head.3``, the semantic subnet
``head.4`` .. ``head.6``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from oneshot.space import ChoiceLayer
from oneshot_panoptic.modeling.ops import HEAD_CHOICES, head_op
from oneshot_panoptic.structures import IGNORE_LABEL

__all__ = ["searchable_head_layers", "SearchableMaskHead", "SemanticHead", "semantic_loss"]


def searchable_head_layers(
    *, in_channels: int, channels: int, num_layers: int, first_label: int, component: str = "head"
) -> list[ChoiceLayer]:
    """``num_layers`` head choice layers ``in_channels -> channels -> ... -> channels``,
    labelled ``f"{component}.{first_label + i}"``."""
    layers = []
    for i in range(num_layers):
        cin = in_channels if i == 0 else channels
        candidates = {name: head_op(name, in_channels=cin, out_channels=channels) for name in HEAD_CHOICES}
        layers.append(ChoiceLayer(candidates, label=f"{component}.{first_label + i}", component=component))
    return layers


class SearchableMaskHead(nn.Sequential):
    """Mask head of the RoI heads: ``num_layers`` searchable layers on RoI features.

    ``(R, in_channels, 14, 14) -> (R, channels, 14, 14)``; plugs into
    :class:`torchvision.models.detection.roi_heads.RoIHeads` as ``mask_head`` (followed by
    torchvision's ``MaskRCNNPredictor(channels, channels, num_classes)``).
    """

    def __init__(
        self, *, in_channels: int, channels: int = 256, num_layers: int = 4, first_label: int = 0
    ) -> None:
        super().__init__(
            *searchable_head_layers(
                in_channels=in_channels, channels=channels, num_layers=num_layers, first_label=first_label
            )
        )
        self.out_channels = channels


class SemanticHead(nn.Module):
    """Semantic branch: a searchable subnet shared by the FPN levels P2-P5, then a 1×1 classifier.

    One set of weights (and hence one architecture) serves every level, as in the reference code
    (``SHARE_SUBNET``). :meth:`subnet_levels` maps each FPN level
    ``(N, in_channels, H/s, W/s)`` to ``(N, channels, H/s, W/s)``; :meth:`predict` upsamples the
    (calibrated) levels to the finest one (stride 4), concatenates them
    (``(N, num_levels·channels, H/4, W/4)``) and returns logits ``(N, num_classes, H/4, W/4)``.
    Class 0 is "things", classes ``1..S`` are stuff.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        channels: int = 128,
        num_classes: int,
        num_layers: int = 3,
        num_levels: int = 4,
        first_label: int = 4,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.num_levels = num_levels
        self.num_classes = num_classes
        self.subnet = nn.Sequential(
            *searchable_head_layers(
                in_channels=in_channels, channels=channels, num_layers=num_layers, first_label=first_label
            )
        )
        self.classifier = nn.Conv2d(num_levels * channels, num_classes, 1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)  # type: ignore[arg-type]  # the conv has a bias

    def subnet_levels(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Run the shared subnet on each of the first ``num_levels`` feature maps."""
        if len(features) < self.num_levels:
            raise ValueError(f"semantic head needs {self.num_levels} levels, got {len(features)}")
        return [self.subnet(f) for f in features[: self.num_levels]]

    def predict(self, levels: Sequence[Tensor]) -> Tensor:
        """Logits at the finest level's resolution from the per-level subnet outputs."""
        size = levels[0].shape[-2:]
        merged = torch.cat(
            [levels[0]]
            + [F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in levels[1:]],
            dim=1,
        )
        return self.classifier(merged)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Subnet + prediction without inter-modular calibration (used by ablations and tests)."""
        return self.predict(self.subnet_levels(features))


def semantic_loss(logits: Tensor, target: Tensor, *, ignore_index: int = IGNORE_LABEL) -> Tensor:
    """Mean pixel cross-entropy over labelled pixels.

    ``logits: (N, C, H, W)``, ``target: (N, H, W)`` int64 with ``ignore_index`` for unlabelled
    pixels. Returns a scalar; 0 (with a graph) when no pixel is labelled, never NaN.
    """
    total = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="sum")
    labelled = (target != ignore_index).sum().clamp_min(1)
    return total / labelled
