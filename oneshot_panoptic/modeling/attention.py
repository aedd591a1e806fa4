"""Bidirectional inter-modular attention between the FPN and the semantic branch (the paper's §3.2; docs/model.md).

Nine choice layers over reduction ratios 4, 8, 16 (component ``inter``):

* ``inter.0`` .. ``inter.3`` — foreground -> background, one per semantic level: statistics from
  all five FPN levels P2-P6 (paper Eq. 1; the reference code read only P3-P6), attention applied
  to the semantic level (``semantic_channels`` wide);
* ``inter.4`` .. ``inter.8`` — background -> foreground, one per FPN level P2-P6: statistics from
  the four semantic levels, attention applied to the FPN level (``fpn_channels`` wide).

The statistics of a branch are the global average pool of the concatenation of its levels after
bilinearly upsampling the coarser ones to the finest size (:func:`upsampled_mean`, computed exactly
without materialising the upsampled maps). Both directions read the features as they were before
either calibration. Calibration is residual: ``x' = x + a ⊗ x``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from oneshot.space import ChoiceLayer
from oneshot_panoptic.modeling.ops import INTER_CHOICES, REDUCTION_RATIOS, ChannelAttention

__all__ = ["upsampled_mean", "InterModularAttention"]


def _linear_upsample_mean_weights(n_in: int, n_out: int, *, like: Tensor) -> Tensor:
    """Weight of each of ``n_in`` input positions in the mean of its 1-D linear upsampling to
    ``n_out`` positions (``align_corners=False``): a ``(n_in,)`` vector summing to 1."""
    eye = torch.eye(n_in, dtype=like.dtype, device=like.device).unsqueeze(0)  # (1, n_in, n_in)
    upsampled = F.interpolate(eye, size=n_out, mode="linear", align_corners=False)  # (1, n_in, n_out)
    return upsampled[0].mean(dim=1)


def upsampled_mean(features: Sequence[Tensor]) -> Tensor:
    """Global average pool of ``cat([upsample(f) for f in features], dim=1)``.

    ``features[k]: (N, C_k, H_k, W_k)``; every map is bilinearly upsampled (``align_corners=False``)
    to ``(H_0, W_0)``, the size of the first (finest) map. Returns ``(N, sum C_k)``.

    Bilinear upsampling is separable (``U = A_h · X · A_wᵀ``), so the mean of the upsampled map is
    ``a_hᵀ · X · a_w`` with ``a = A.mean(rows)``: exact, at the cost of pooling the small map.
    """
    height, width = features[0].shape[-2:]
    pooled = []
    for f in features:
        h, w = f.shape[-2:]
        if (h, w) == (height, width):
            pooled.append(f.mean(dim=(2, 3)))
            continue
        wh = _linear_upsample_mean_weights(h, height, like=f)
        ww = _linear_upsample_mean_weights(w, width, like=f)
        pooled.append(torch.einsum("nchw,h,w->nc", f, wh, ww))
    return torch.cat(pooled, dim=1)


def _attention_layer(*, in_features: int, out_channels: int, label: str) -> ChoiceLayer:
    candidates = {
        name: ChannelAttention(in_features=in_features, out_channels=out_channels, reduction=r)
        for name, r in zip(INTER_CHOICES, REDUCTION_RATIOS, strict=True)
    }
    return ChoiceLayer(candidates, label=label, component="inter")


class InterModularAttention(nn.Module):
    """Searchable bidirectional attention between ``num_fpn_levels`` FPN and
    ``num_semantic_levels`` semantic feature maps.

    ``forward(fpn, semantic)`` takes ``fpn[i]: (N, fpn_channels, H_i, W_i)`` (finest first, P2-P6)
    and ``semantic[j]: (N, semantic_channels, H_j, W_j)`` (finest first) and returns both lists
    calibrated, shapes unchanged.
    """

    def __init__(
        self,
        *,
        fpn_channels: int,
        semantic_channels: int,
        num_fpn_levels: int = 5,
        num_semantic_levels: int = 4,
        first_label: int = 0,
    ) -> None:
        super().__init__()
        self.num_fpn_levels = num_fpn_levels
        self.num_semantic_levels = num_semantic_levels
        self.fg_to_bg = nn.ModuleList(
            _attention_layer(
                in_features=num_fpn_levels * fpn_channels,
                out_channels=semantic_channels,
                label=f"inter.{first_label + i}",
            )
            for i in range(num_semantic_levels)
        )
        self.bg_to_fg = nn.ModuleList(
            _attention_layer(
                in_features=num_semantic_levels * semantic_channels,
                out_channels=fpn_channels,
                label=f"inter.{first_label + num_semantic_levels + i}",
            )
            for i in range(num_fpn_levels)
        )

    def forward(self, fpn: Sequence[Tensor], semantic: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        if len(fpn) != self.num_fpn_levels or len(semantic) != self.num_semantic_levels:
            raise ValueError(
                f"expected {self.num_fpn_levels} FPN and {self.num_semantic_levels} semantic levels, "
                f"got {len(fpn)} and {len(semantic)}"
            )
        fpn_stats = upsampled_mean(fpn)  # (N, 5·C_fpn)
        semantic_stats = upsampled_mean(semantic)  # (N, 4·C_sem)
        semantic_out = [s + layer(fpn_stats) * s for layer, s in zip(self.fg_to_bg, semantic, strict=True)]
        fpn_out = [f + layer(semantic_stats) * f for layer, f in zip(self.bg_to_fg, fpn, strict=True)]
        return fpn_out, semantic_out
