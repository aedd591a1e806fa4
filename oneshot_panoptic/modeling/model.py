"""The Auto-Panoptic network: parts injected by :func:`~oneshot_panoptic.modeling.builder.build_autopanoptic`
(the paper's §3.2; docs/model.md), and its post-processing.

Data flow (one batch)::

    images -> normalize + pad to a multiple of 32 (never resized)
           -> backbone (C2..C5) -> FPN (P2..P6, GroupNorm, max-pool P6)
           -> semantic subnet on P2..P5 (shared weights, head.4-6)  -> S2..S5
           -> inter-modular attention on (P2..P6, S2..S5)             (inter.0-8)
           -> RPN + RoI heads (box head, searchable mask head head.0-3) on calibrated P2..P6
           -> semantic classifier on calibrated, upsampled, concatenated S2..S5 -> logits at 1/4
              -> bilinear upsample to the padded input size
    outputs -> postprocess: resize to the original image size, panoptic fusion

Search space order (module registration order): backbone (``backbone.*``), head (mask head
``head.0-3`` then semantic subnet ``head.4-6``), inter (``inter.0-8``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork

from oneshot_panoptic.modeling.attention import InterModularAttention
from oneshot_panoptic.modeling.backbone import ShuffleNetV2Supernet
from oneshot_panoptic.modeling.fusion import COCO_REFERENCE_AREA, panoptic_fusion
from oneshot_panoptic.modeling.heads import SemanticHead, semantic_loss
from oneshot_panoptic.structures import IGNORE_LABEL, PanopticMetadata, PanopticSegmentation

__all__ = [
    "AutoPanoptic",
    "NoResizeTransform",
    "resize_outputs",
    "param_groups",
    "DEFAULT_LR_MULTIPLIERS",
]


class NoResizeTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform without resizing: normalizes each ``(3, H, W)`` image and
    pads the batch (bottom/right, zeros) to a multiple of ``size_divisible``. Targets pass
    through untouched; ``postprocess`` pastes masks at the input resolution."""

    def __init__(
        self, *, image_mean: Sequence[float], image_std: Sequence[float], size_divisible: int = 32
    ) -> None:
        super().__init__(
            min_size=1, max_size=1, image_mean=list(image_mean), image_std=list(image_std), size_divisible=size_divisible
        )

    def resize(
        self, image: Tensor, target: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor] | None]:
        return image, target

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(mean={self.image_mean}, std={self.image_std}, "
            f"size_divisible={self.size_divisible})"
        )


def resize_outputs(output: Mapping[str, Tensor], size: tuple[int, int]) -> dict[str, Tensor]:
    """One image's outputs brought from the network's input resolution to ``size = (H, W)``:
    ``sem_seg`` and ``masks`` bilinearly, ``boxes`` scaled. Unchanged when the sizes agree."""
    out = dict(output)
    sem = output["sem_seg"]
    if tuple(sem.shape[-2:]) == tuple(size):
        return out
    out["sem_seg"] = F.interpolate(sem[None], size=size, mode="bilinear", align_corners=False)[0]
    masks = output["masks"]
    if masks.numel():
        out["masks"] = F.interpolate(masks, size=size, mode="bilinear", align_corners=False)
    else:
        out["masks"] = masks.new_zeros((0, 1, *size))
    sy, sx = size[0] / sem.shape[-2], size[1] / sem.shape[-1]
    out["boxes"] = output["boxes"] * torch.tensor([sx, sy, sx, sy], device=output["boxes"].device)
    return out


class AutoPanoptic(nn.Module):
    """The Auto-Panoptic supernet (or, after :func:`oneshot.freeze`, one standalone network), from
    its parts, as torchvision's ``GeneralizedRCNN(backbone, rpn, roi_heads, transform)``;
    :func:`~oneshot_panoptic.modeling.builder.build_autopanoptic` builds them from a preset.

    Args:
        transform: normalizes and pads the images (:class:`NoResizeTransform`).
        backbone: stage outputs C2..C5 (``out_channels`` lists their widths).
        fpn: torchvision's FPN with a max-pool P6.
        rpn: torchvision's region proposal network over P2..P6.
        roi_heads: torchvision's RoI heads with the searchable mask head; its box predictor has
            ``T + 1`` classes (``T`` thing classes, 0 = background).
        semantic_head: the semantic branch with ``S + 1`` classes (``S`` stuff classes, 0 = things).
        attention: inter-modular attention between the FPN levels and the semantic levels.
        semantic_loss_weight: weight of ``loss_semantic``.

    Train mode: ``model(images, targets) -> dict[str, Tensor]`` of weighted losses
    (``loss_objectness``, ``loss_rpn_box_reg``, ``loss_classifier``, ``loss_box_reg``,
    ``loss_mask``, ``loss_semantic``); the total loss is their sum.

    * ``images``: list of ``(3, H_i, W_i)`` float tensors in ``[0, 1]``, already resized by the
      data pipeline; the model normalizes and pads them (to a multiple of 32) but never resizes.
    * ``targets``: one dict per image with ``boxes (N, 4)`` float xyxy, ``labels (N,)`` int64 in
      ``1..T``, ``masks (N, H_i, W_i)`` uint8 and ``semantic (H_i, W_i)`` int64 (0 = things,
      ``1..S`` stuff, 255 ignore).

    Eval mode: ``model(images) -> list[dict]`` per image with ``boxes (K, 4)``, ``labels (K,)``,
    ``scores (K,)``, ``masks (K, 1, H_i, W_i)`` probabilities and ``sem_seg (S + 1, H_i, W_i)``
    logits at the input resolution — the input of :meth:`postprocess`.
    """

    def __init__(
        self,
        *,
        transform: GeneralizedRCNNTransform,
        backbone: ShuffleNetV2Supernet,
        fpn: FeaturePyramidNetwork,
        rpn: RegionProposalNetwork,
        roi_heads: RoIHeads,
        semantic_head: SemanticHead,
        attention: InterModularAttention,
        semantic_loss_weight: float = 0.3,
    ) -> None:
        super().__init__()
        # Registration order = search-space order: backbone, head (mask, semantic), inter.
        self.transform = transform
        self.backbone = backbone
        self.fpn = fpn
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.semantic_head = semantic_head
        self.attention = attention
        self.semantic_loss_weight = semantic_loss_weight

    @property
    def num_things(self) -> int:
        """Number of thing classes ``T`` (detection labels ``1..T``)."""
        return int(self.roi_heads.box_predictor.cls_score.out_features) - 1

    @property
    def num_stuff(self) -> int:
        """Number of stuff classes ``S`` (semantic classes ``1..S``)."""
        return int(self.semantic_head.num_classes) - 1

    # ------------------------------------------------------------------ forward
    def forward_features(self, tensors: Tensor) -> tuple[OrderedDict[str, Tensor], list[Tensor]]:
        """Calibrated FPN levels P2-P6 ``{"0".."3", "pool"}: (N, C, H/2^k, W/2^k)`` and calibrated
        semantic levels S2-S5 ``(N, C_sem, H/2^k, W/2^k)`` for a padded batch ``(N, 3, H, W)``."""
        stages = self.backbone(tensors)
        pyramid = self.fpn(OrderedDict((str(i), x) for i, x in enumerate(stages)))
        levels = list(pyramid.values())
        semantic = self.semantic_head.subnet_levels(levels)
        levels, semantic = self.attention(levels, semantic)
        return OrderedDict(zip(pyramid.keys(), levels, strict=True)), semantic

    def forward(
        self, images: Sequence[Tensor], targets: Sequence[Mapping[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        if self.training and targets is None:
            raise ValueError("AutoPanoptic needs targets in training mode")
        images = list(images)
        sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        if targets is not None:
            targets = [dict(t) for t in targets]
            for i, (t, size) in enumerate(zip(targets, sizes, strict=True)):
                if self.training and "semantic" not in t:
                    raise ValueError(f"target {i} has no 'semantic' map")
                if "semantic" in t and tuple(t["semantic"].shape) != size:
                    raise ValueError(
                        f"target {i}: semantic map is {tuple(t['semantic'].shape)}, image is {size}"
                    )
        image_list, targets = self.transform(images, targets)
        features, semantic = self.forward_features(image_list.tensors)
        proposals, rpn_losses = self.rpn(image_list, features, targets)
        detections, roi_losses = self.roi_heads(features, proposals, image_list.image_sizes, targets)
        logits = self.semantic_head.predict(semantic)
        logits = F.interpolate(logits, size=image_list.tensors.shape[-2:], mode="bilinear", align_corners=False)
        if self.training:
            assert targets is not None
            sem_target = self._batch_semantic_targets(targets, image_list)
            losses: dict[str, Tensor] = {**rpn_losses, **roi_losses}
            losses["loss_semantic"] = self.semantic_loss_weight * semantic_loss(logits, sem_target)
            return losses
        detections = self.transform.postprocess(detections, image_list.image_sizes, sizes)
        for i, (det, (h, w)) in enumerate(zip(detections, sizes, strict=True)):
            det["sem_seg"] = logits[i, :, :h, :w]
        return detections

    @staticmethod
    def _batch_semantic_targets(targets: Sequence[Mapping[str, Tensor]], image_list: ImageList) -> Tensor:
        """``(N, H_pad, W_pad)`` int64 semantic targets, padding marked ``IGNORE_LABEL``."""
        batch = image_list.tensors
        out = torch.full(
            (batch.shape[0], batch.shape[-2], batch.shape[-1]), IGNORE_LABEL, dtype=torch.int64, device=batch.device
        )
        for i, t in enumerate(targets):
            sem = t["semantic"]
            out[i, : sem.shape[0], : sem.shape[1]] = sem
        return out

    def forward_for_bn_recalibration(self, images: Sequence[Tensor]) -> list[Tensor]:
        """Run only the parts holding BatchNorm (the backbone) on normalized, padded images.

        Every other part uses GroupNorm, so BN statistics re-estimated this way equal those of a
        full forward pass. Returns the backbone's stage outputs.
        """
        image_list, _ = self.transform(list(images))
        return self.backbone(image_list.tensors)

    @torch.no_grad()
    def postprocess(
        self,
        outputs: Sequence[Mapping[str, Tensor]],
        metadata: PanopticMetadata,
        *,
        image_sizes: Sequence[tuple[int, int]] | None = None,
        instance_score_threshold: float = 0.5,
        overlap_threshold: float = 0.5,
        stuff_area_threshold: float = 4096,
        reference_area: float | None = COCO_REFERENCE_AREA,
    ) -> list[PanopticSegmentation]:
        """Panoptic segmentations from eval-mode outputs: each image's outputs resized to its
        ``image_sizes`` entry (the original ``(H, W)``; ``None``: kept at the input size), then
        fused by :func:`~oneshot_panoptic.modeling.fusion.panoptic_fusion` with the given options.

        Raises ``ValueError`` when ``metadata`` has other class counts than the model.
        """
        if metadata.num_things != self.num_things or metadata.num_stuff != self.num_stuff:
            raise ValueError(
                f"metadata has {metadata.num_things} things / {metadata.num_stuff} stuff classes, "
                f"the model {self.num_things} / {self.num_stuff}"
            )
        if image_sizes is not None and len(image_sizes) != len(outputs):
            raise ValueError(f"{len(outputs)} outputs but {len(image_sizes)} image sizes")
        results = []
        for i, output in enumerate(outputs):
            out = resize_outputs(output, image_sizes[i]) if image_sizes is not None else output
            results.append(
                panoptic_fusion(
                    out,
                    out["sem_seg"],
                    metadata,
                    instance_score_threshold=instance_score_threshold,
                    overlap_threshold=overlap_threshold,
                    stuff_area_threshold=stuff_area_threshold,
                    reference_area=reference_area,
                )
            )
        return results

    @torch.no_grad()
    def predict_panoptic(
        self,
        images: Sequence[Tensor],
        metadata: PanopticMetadata,
        *,
        image_sizes: Sequence[tuple[int, int]] | None = None,
        **postprocess_options: Any,
    ) -> list[PanopticSegmentation]:
        """Panoptic segmentations of ``images``: an eval-mode forward pass (mode restored after)
        and :meth:`postprocess` with ``image_sizes`` and its fusion options."""
        was_training = self.training
        self.eval()
        try:
            outputs = self(images)
        finally:
            self.train(was_training)
        assert isinstance(outputs, list)
        return self.postprocess(outputs, metadata, image_sizes=image_sizes, **postprocess_options)


# ---------------------------------------------------------------------- optimisation
#: Learning-rate multipliers of the reference code (docs/model.md): a fair window of 12 paths uses a
#: backbone candidate 12/4 = 3 times, a head candidate 2, an attention candidate 4 and the shared
#: parts 12 times, so with gradients *summed* over the window each part steps with the mean of its
#: own gradients. (These equal the fair-window defaults of :func:`oneshot.train.component_param_groups`.)
DEFAULT_LR_MULTIPLIERS: dict[str, float] = {"backbone": 1 / 3, "head": 1 / 2, "inter": 1 / 4, "shared": 1 / 12}


def param_groups(
    model: nn.Module,
    base_lr: float,
    *,
    multipliers: Mapping[str, float] = DEFAULT_LR_MULTIPLIERS,
    weight_decay: float = 1e-4,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with the Auto-Panoptic per-component learning rates.

    A parameter inside a choice layer belongs to that layer's component (``backbone``, ``head``,
    ``inter``), every other one is ``shared``; each group has ``params``, ``lr = base_lr ·
    multipliers[component]``, ``weight_decay`` and ``component``. Delegates to the core's
    :func:`oneshot.train.component_param_groups`; raises ``ValueError`` for a component without
    a multiplier.
    """
    from oneshot.train import component_param_groups

    return component_param_groups(model, lr=base_lr, weight_decay=weight_decay, multipliers=dict(multipliers))
