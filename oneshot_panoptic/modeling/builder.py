"""Building an :class:`~oneshot_panoptic.modeling.model.AutoPanoptic` network: its presets, the one
builder that makes every part and injects it, its search space without building it, and the
published architectures."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from oneshot.errors import ArchitectureError
from oneshot.space import Architecture, SearchSpace
from oneshot_panoptic.modeling.attention import InterModularAttention
from oneshot_panoptic.modeling.backbone import BACKBONE_PRESETS, BackboneSpec, ShuffleNetV2Supernet
from oneshot_panoptic.modeling.heads import SearchableMaskHead, SemanticHead
from oneshot_panoptic.modeling.model import AutoPanoptic, NoResizeTransform
from oneshot_panoptic.modeling.ops import (
    BACKBONE_CHOICES,
    HEAD_CHOICES,
    INTER_CHOICES,
    group_norm_groups,
)

__all__ = [
    "AutoPanopticPreset",
    "MODEL_PRESETS",
    "build_autopanoptic",
    "autopanoptic_search_space",
    "published_architecture",
    "PUBLISHED_ARCHITECTURES",
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


def _fpn_group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(group_norm_groups(channels), channels)


def resolve_preset(preset: str | AutoPanopticPreset, **overrides: Any) -> AutoPanopticPreset:
    """The preset of that name (or ``preset`` itself) with ``overrides`` of its fields or of its
    :class:`BackboneSpec`'s fields applied (lists become tuples)."""
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
    """An :class:`AutoPanoptic` supernet: every part built from the preset and injected.

    Args:
        preset: a preset name (``tiny``, ``300M``, ``1.3G``, ``3.8G``; see :data:`MODEL_PRESETS`)
            or an :class:`AutoPanopticPreset`.
        num_things: number of thing classes ``T`` (detection labels ``1..T``, 0 = background).
        num_stuff: number of stuff classes ``S`` (semantic classes ``1..S``, 0 = "things").
        overrides: fields of :class:`AutoPanopticPreset` or :class:`BackboneSpec` (e.g.
            ``fpn_channels=128`` or ``stage_repeats=(2, 2, 4, 2)``), as ``model.overrides`` in
            the task's config.

    Raises:
        ValueError: an unknown preset or option, ``num_things < 1``, ``num_stuff < 0``, or
            ``anchor_sizes`` without one size per FPN level P2-P6.
    """
    p = resolve_preset(preset, **overrides)
    if num_things < 1 or num_stuff < 0:
        raise ValueError(f"need num_things >= 1 and num_stuff >= 0, got {num_things} and {num_stuff}")
    channels = p.fpn_channels
    num_levels = len(p.anchor_sizes)
    if num_levels != 5:
        raise ValueError(f"anchor_sizes needs one size per FPN level P2-P6 (5), got {num_levels}")
    # Built in search-space order (backbone, head, inter), so default initialisation draws the
    # same random numbers as before the parts were injected.
    transform = NoResizeTransform(image_mean=p.image_mean, image_std=p.image_std, size_divisible=p.size_divisible)
    backbone = ShuffleNetV2Supernet.from_spec(p.backbone)
    fpn = FeaturePyramidNetwork(
        list(backbone.out_channels),
        channels,
        extra_blocks=LastLevelMaxPool(),
        norm_layer=_fpn_group_norm if p.fpn_norm else None,
    )
    anchors = AnchorGenerator(
        sizes=tuple((s,) for s in p.anchor_sizes),
        aspect_ratios=(tuple(p.aspect_ratios),) * num_levels,
    )
    rpn = RegionProposalNetwork(
        anchors,
        RPNHead(channels, len(p.aspect_ratios)),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=p.rpn_batch_size_per_image,
        positive_fraction=0.5,
        pre_nms_top_n={"training": p.rpn_pre_nms_top_n_train, "testing": p.rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": p.rpn_post_nms_top_n_train, "testing": p.rpn_post_nms_top_n_test},
        nms_thresh=0.7,
    )
    roi_heads = RoIHeads(
        box_roi_pool=MultiScaleRoIAlign(list(FPN_LEVELS), output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(channels * 7 * 7, p.box_representation_size),
        box_predictor=FastRCNNPredictor(p.box_representation_size, num_things + 1),
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=p.box_batch_size_per_image,
        positive_fraction=0.25,
        bbox_reg_weights=None,
        score_thresh=p.box_score_thresh,
        nms_thresh=p.box_nms_thresh,
        detections_per_img=p.detections_per_img,
        mask_roi_pool=MultiScaleRoIAlign(list(FPN_LEVELS), output_size=14, sampling_ratio=2),
        mask_head=SearchableMaskHead(
            in_channels=channels, channels=channels, num_layers=NUM_MASK_HEAD_LAYERS, first_label=0
        ),
        mask_predictor=MaskRCNNPredictor(channels, channels, num_things + 1),
    )
    semantic_head = SemanticHead(
        in_channels=channels,
        channels=p.semantic_channels,
        num_classes=num_stuff + 1,
        num_layers=NUM_SEMANTIC_LAYERS,
        num_levels=len(FPN_LEVELS),
        first_label=NUM_MASK_HEAD_LAYERS,
    )
    attention = InterModularAttention(
        fpn_channels=channels,
        semantic_channels=p.semantic_channels,
        num_fpn_levels=num_levels,
        num_semantic_levels=len(FPN_LEVELS),
        first_label=0,
    )
    return AutoPanoptic(
        transform=transform,
        backbone=backbone,
        fpn=fpn,
        rpn=rpn,
        roi_heads=roi_heads,
        semantic_head=semantic_head,
        attention=attention,
        semantic_loss_weight=p.semantic_loss_weight,
    )


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


#: Architectures published with the reference code (docs/model.md), 40-layer backbone spaces.
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
