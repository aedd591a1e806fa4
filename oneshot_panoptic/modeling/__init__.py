"""The Auto-Panoptic network: candidate operations, backbone, heads, inter-modular attention,
panoptic fusion, the model and its builder."""

from oneshot_panoptic.modeling.backbone import BACKBONE_PRESETS, BackboneSpec, ShuffleNetV2Supernet
from oneshot_panoptic.modeling.builder import (
    MODEL_PRESETS,
    PUBLISHED_ARCHITECTURES,
    AutoPanopticPreset,
    autopanoptic_search_space,
    build_autopanoptic,
    published_architecture,
)
from oneshot_panoptic.modeling.fusion import COCO_REFERENCE_AREA, panoptic_fusion, stuff_area_limit
from oneshot_panoptic.modeling.model import DEFAULT_LR_MULTIPLIERS, AutoPanoptic, param_groups

__all__ = [
    "AutoPanoptic",
    "AutoPanopticPreset",
    "BACKBONE_PRESETS",
    "BackboneSpec",
    "COCO_REFERENCE_AREA",
    "DEFAULT_LR_MULTIPLIERS",
    "MODEL_PRESETS",
    "PUBLISHED_ARCHITECTURES",
    "ShuffleNetV2Supernet",
    "autopanoptic_search_space",
    "build_autopanoptic",
    "panoptic_fusion",
    "param_groups",
    "published_architecture",
    "stuff_area_limit",
]
