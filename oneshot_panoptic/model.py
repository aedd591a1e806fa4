"""The Auto-Panoptic supernet: ShuffleNetV2 backbone, FPN, Mask R-CNN heads, semantic branch and
inter-modular attention, composed from torchvision parts (DESIGN §4).

Data flow (one batch)::

    images -> normalize + pad to a multiple of 32 (never resized)
           -> backbone (C2..C5) -> FPN (P2..P6, GroupNorm, max-pool P6)
           -> semantic subnet on P2..P5 (shared weights, head.4-6)  -> S2..S5
           -> inter-modular attention on (P2..P6, S2..S5)             (inter.0-8)
           -> RPN + RoI heads (box head, searchable mask head head.0-3) on calibrated P2..P6
           -> semantic classifier on calibrated, upsampled, concatenated S2..S5 -> logits at 1/4
              -> bilinear upsample to the padded input size

Search space order (module registration order): backbone (``backbone.*``), head (mask head
``head.0-3`` then semantic subnet ``head.4-6``), inter (``inter.0-8``).
"""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from oneshot.errors import ArchitectureError
from oneshot.space import Architecture, SearchSpace
from oneshot_panoptic.attention import InterModularAttention
from oneshot_panoptic.backbone import BACKBONE_PRESETS, BackboneSpec, ShuffleNetV2Supernet
from oneshot_panoptic.fusion import panoptic_fusion
from oneshot_panoptic.heads import SearchableMaskHead, SemanticHead, semantic_loss
from oneshot_panoptic.ops import BACKBONE_CHOICES, HEAD_CHOICES, INTER_CHOICES, group_norm_groups
from oneshot_panoptic.structures import IGNORE_LABEL, PanopticMetadata, PanopticSegmentation

__all__ = [
    "AutoPanoptic",
    "AutoPanopticPreset",
    "MODEL_PRESETS",
    "NoResizeTransform",
    "build_autopanoptic",
    "autopanoptic_search_space",
    "published_architecture",
    "PUBLISHED_ARCHITECTURES",
    "param_groups",
    "DEFAULT_LR_MULTIPLIERS",
]

NUM_MASK_HEAD_LAYERS = 4
NUM_SEMANTIC_LAYERS = 3
NUM_INTER_LAYERS = 9
FPN_LEVELS = ("0", "1", "2", "3")  # P2-P5 keys of torchvision's FPN output; P6 is "pool"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AutoPanopticPreset:
    """Every size and detector setting of an :class:`AutoPanoptic` model.

    The defaults are the paper's / torchvision Mask R-CNN's settings; the ``tiny`` preset shrinks
    widths and proposal counts for CPU tests.
    """

    backbone: BackboneSpec
    fpn_channels: int = 256
    semantic_channels: int = 128
    box_representation_size: int = 1024
    fpn_norm: bool = True  # GroupNorm in the FPN, as in the reference code (training from scratch)
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_batch_size_per_image: int = 256
    box_batch_size_per_image: int = 512
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    detections_per_img: int = 100
    semantic_loss_weight: float = 0.3
    size_divisible: int = 32
    image_mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    image_std: tuple[float, float, float] = field(default=IMAGENET_STD)


MODEL_PRESETS: dict[str, AutoPanopticPreset] = {
    "tiny": AutoPanopticPreset(
        backbone=BACKBONE_PRESETS["tiny"],
        fpn_channels=64,
        semantic_channels=32,
        box_representation_size=128,
        anchor_sizes=(16, 32, 64, 128, 256),
        rpn_pre_nms_top_n_train=200,
        rpn_pre_nms_top_n_test=100,
        rpn_post_nms_top_n_train=100,
        rpn_post_nms_top_n_test=50,
        rpn_batch_size_per_image=64,
        box_batch_size_per_image=32,
        detections_per_img=20,
    ),
    "300M": AutoPanopticPreset(backbone=BACKBONE_PRESETS["300M"]),
    "1.3G": AutoPanopticPreset(backbone=BACKBONE_PRESETS["1.3G"]),
    "3.8G": AutoPanopticPreset(backbone=BACKBONE_PRESETS["3.8G"]),
}


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


def _fpn_group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(group_norm_groups(channels), channels)


class AutoPanoptic(nn.Module):
    """The Auto-Panoptic supernet (or, after :func:`oneshot.freeze`, one standalone network).

    Args:
        num_things: number of thing classes ``T`` (detection labels ``1..T``, 0 = background).
        num_stuff: number of stuff classes ``S`` (semantic classes ``1..S``, 0 = "things").
        preset: sizes and detector settings (see :data:`MODEL_PRESETS`).

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
    logits at the input resolution — the input of :func:`~oneshot_panoptic.fusion.panoptic_fusion`.
    """

    def __init__(self, *, num_things: int, num_stuff: int, preset: AutoPanopticPreset) -> None:
        super().__init__()
        if num_things < 1 or num_stuff < 0:
            raise ValueError(f"need num_things >= 1 and num_stuff >= 0, got {num_things} and {num_stuff}")
        self.num_things = num_things
        self.num_stuff = num_stuff
        self.preset = preset
        channels = preset.fpn_channels
        num_levels = len(preset.anchor_sizes)
        if num_levels != 5:
            raise ValueError(f"anchor_sizes needs one size per FPN level P2-P6 (5), got {num_levels}")

        # Registration order = search-space order: backbone, head (mask, semantic), inter.
        self.transform = NoResizeTransform(
            image_mean=preset.image_mean, image_std=preset.image_std, size_divisible=preset.size_divisible
        )
        self.backbone = ShuffleNetV2Supernet.from_spec(preset.backbone)
        self.fpn = FeaturePyramidNetwork(
            list(self.backbone.out_channels),
            channels,
            extra_blocks=LastLevelMaxPool(),
            norm_layer=_fpn_group_norm if preset.fpn_norm else None,
        )
        anchors = AnchorGenerator(
            sizes=tuple((s,) for s in preset.anchor_sizes),
            aspect_ratios=(tuple(preset.aspect_ratios),) * num_levels,
        )
        self.rpn = RegionProposalNetwork(
            anchors,
            RPNHead(channels, len(preset.aspect_ratios)),
            fg_iou_thresh=0.7,
            bg_iou_thresh=0.3,
            batch_size_per_image=preset.rpn_batch_size_per_image,
            positive_fraction=0.5,
            pre_nms_top_n={"training": preset.rpn_pre_nms_top_n_train, "testing": preset.rpn_pre_nms_top_n_test},
            post_nms_top_n={"training": preset.rpn_post_nms_top_n_train, "testing": preset.rpn_post_nms_top_n_test},
            nms_thresh=0.7,
        )
        self.roi_heads = RoIHeads(
            box_roi_pool=MultiScaleRoIAlign(list(FPN_LEVELS), output_size=7, sampling_ratio=2),
            box_head=TwoMLPHead(channels * 7 * 7, preset.box_representation_size),
            box_predictor=FastRCNNPredictor(preset.box_representation_size, num_things + 1),
            fg_iou_thresh=0.5,
            bg_iou_thresh=0.5,
            batch_size_per_image=preset.box_batch_size_per_image,
            positive_fraction=0.25,
            bbox_reg_weights=None,
            score_thresh=preset.box_score_thresh,
            nms_thresh=preset.box_nms_thresh,
            detections_per_img=preset.detections_per_img,
            mask_roi_pool=MultiScaleRoIAlign(list(FPN_LEVELS), output_size=14, sampling_ratio=2),
            mask_head=SearchableMaskHead(
                in_channels=channels, channels=channels, num_layers=NUM_MASK_HEAD_LAYERS, first_label=0
            ),
            mask_predictor=MaskRCNNPredictor(channels, channels, num_things + 1),
        )
        self.semantic_head = SemanticHead(
            in_channels=channels,
            channels=preset.semantic_channels,
            num_classes=num_stuff + 1,
            num_layers=NUM_SEMANTIC_LAYERS,
            num_levels=len(FPN_LEVELS),
            first_label=NUM_MASK_HEAD_LAYERS,
        )
        self.attention = InterModularAttention(
            fpn_channels=channels,
            semantic_channels=preset.semantic_channels,
            num_fpn_levels=num_levels,
            num_semantic_levels=len(FPN_LEVELS),
            first_label=0,
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Any) -> AutoPanoptic:
        """Build from a mapping (or pydantic model) with ``preset``, ``num_things``, ``num_stuff``
        and optional overrides of :class:`AutoPanopticPreset` / :class:`BackboneSpec` fields, given
        at the top level or under an ``overrides`` mapping."""
        if hasattr(config, "model_dump"):
            config = config.model_dump()
        options = dict(config)
        options.update(options.pop("overrides", None) or {})
        try:
            preset = options.pop("preset", "1.3G")
            num_things = options.pop("num_things")
            num_stuff = options.pop("num_stuff")
        except KeyError as exc:
            raise ValueError(f"model config is missing {exc.args[0]!r}") from None
        return build_autopanoptic(preset, num_things=num_things, num_stuff=num_stuff, **options)

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
            losses["loss_semantic"] = self.preset.semantic_loss_weight * semantic_loss(logits, sem_target)
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
    def predict_panoptic(
        self, images: Sequence[Tensor], metadata: PanopticMetadata, **fusion_kwargs: Any
    ) -> list[PanopticSegmentation]:
        """Panoptic segmentations of ``images`` (eval mode for the call; mode restored after).

        ``fusion_kwargs`` go to :func:`~oneshot_panoptic.fusion.panoptic_fusion`.
        """
        if metadata.num_things != self.num_things or metadata.num_stuff != self.num_stuff:
            raise ValueError(
                f"metadata has {metadata.num_things} things / {metadata.num_stuff} stuff classes, "
                f"the model {self.num_things} / {self.num_stuff}"
            )
        was_training = self.training
        self.eval()
        try:
            outputs = self(images)
        finally:
            self.train(was_training)
        assert isinstance(outputs, list)
        return [panoptic_fusion(out, out["sem_seg"], metadata, **fusion_kwargs) for out in outputs]


# ---------------------------------------------------------------------- builders
def _resolve_preset(preset: str | AutoPanopticPreset, overrides: Mapping[str, Any]) -> AutoPanopticPreset:
    if isinstance(preset, str):
        if preset not in MODEL_PRESETS:
            raise ValueError(f"unknown model preset {preset!r}; choose from {list(MODEL_PRESETS)}")
        preset = MODEL_PRESETS[preset]
    model_fields = {f.name for f in dataclasses.fields(AutoPanopticPreset)} - {"backbone"}
    backbone_fields = {f.name for f in dataclasses.fields(BackboneSpec)}
    unknown = sorted(set(overrides) - model_fields - backbone_fields)
    if unknown:
        raise ValueError(
            f"unknown model option {unknown[0]!r}; options: {sorted(model_fields | backbone_fields)}"
        )
    backbone_opts = {k: _as_tuple(v) for k, v in overrides.items() if k in backbone_fields}
    model_opts = {k: _as_tuple(v) for k, v in overrides.items() if k in model_fields}
    backbone = dataclasses.replace(preset.backbone, **backbone_opts)
    return dataclasses.replace(preset, backbone=backbone, **model_opts)


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def build_autopanoptic(
    preset: str | AutoPanopticPreset = "1.3G", *, num_things: int, num_stuff: int, **overrides: Any
) -> AutoPanoptic:
    """An :class:`AutoPanoptic` supernet from a preset name (``tiny``, ``300M``, ``1.3G``,
    ``3.8G``) or an :class:`AutoPanopticPreset`, with optional field overrides (e.g.
    ``fpn_channels=128`` or ``stage_repeats=(2, 2, 4, 2)``)."""
    return AutoPanoptic(num_things=num_things, num_stuff=num_stuff, preset=_resolve_preset(preset, overrides))


def autopanoptic_search_space(preset: str | int = "1.3G") -> SearchSpace:
    """The search space of an :class:`AutoPanoptic` supernet without building one.

    ``preset``: a preset name or the number of backbone layers. Equal to
    ``SearchSpace.from_module(model)`` for that preset (labels, components and choice names).
    """
    if isinstance(preset, str):
        if preset not in MODEL_PRESETS:
            raise ValueError(f"unknown model preset {preset!r}; choose from {list(MODEL_PRESETS)}")
        num_backbone = MODEL_PRESETS[preset].backbone.num_layers
    else:
        num_backbone = int(preset)
    num_head = NUM_MASK_HEAD_LAYERS + NUM_SEMANTIC_LAYERS
    return SearchSpace.categorical(
        {
            "backbone": [len(BACKBONE_CHOICES)] * num_backbone,
            "head": [len(HEAD_CHOICES)] * num_head,
            "inter": [len(INTER_CHOICES)] * NUM_INTER_LAYERS,
        },
        choice_names={
            "backbone": [BACKBONE_CHOICES] * num_backbone,
            "head": [HEAD_CHOICES] * num_head,
            "inter": [INTER_CHOICES] * NUM_INTER_LAYERS,
        },
    )


#: Architectures published with the reference code (DESIGN §4.6), 40-layer backbone spaces.
PUBLISHED_ARCHITECTURES: tuple[str, ...] = ("coco", "ade20k")


def published_architecture(name: str, space: SearchSpace | nn.Module | None = None) -> Architecture:
    """The published ``coco`` or ``ade20k`` architecture, validated against ``space`` (a search
    space or a model; default: the 40-layer Auto-Panoptic space)."""
    if name not in PUBLISHED_ARCHITECTURES:
        raise ArchitectureError(f"unknown published architecture {name!r}; choose from {list(PUBLISHED_ARCHITECTURES)}")
    if space is None:
        space = autopanoptic_search_space("1.3G")
    elif isinstance(space, nn.Module):
        space = SearchSpace.from_module(space)
    text = (resources.files("oneshot_panoptic") / "architectures" / f"{name}.json").read_text()
    try:
        return space.from_json(json.loads(text))
    except ArchitectureError as exc:
        raise ArchitectureError(f"published architecture {name!r}: {exc}") from None


# ---------------------------------------------------------------------- optimisation
#: Learning-rate multipliers of the reference code (DESIGN §4.4): a fair window of 12 paths uses a
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
