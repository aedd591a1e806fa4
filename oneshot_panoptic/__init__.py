"""oneshot_panoptic: the Auto-Panoptic plug-in for oneshot (task ``panoptic``).

Subpackages: :mod:`~oneshot_panoptic.data` (COCO-panoptic and synthetic data),
:mod:`~oneshot_panoptic.modeling` (the network and its builder), :mod:`~oneshot_panoptic.evaluation`
(PQ and semantic metrics); :mod:`~oneshot_panoptic.task` is the task, :mod:`~oneshot_panoptic.cli`
the ``oneshot panoptic`` commands.
"""

from oneshot_panoptic.config import PanopticConfig
from oneshot_panoptic.data import (
    CocoPanoptic,
    build_transforms,
    collate_fn,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    split_paths,
)
from oneshot_panoptic.evaluation import (
    PanopticEvaluator,
    PanopticQuality,
    PreparedGroundTruth,
    evaluate_panoptic_files,
    format_pq_table,
    prepare_ground_truth,
)
from oneshot_panoptic.modeling import (
    BACKBONE_PRESETS,
    COCO_REFERENCE_AREA,
    DEFAULT_LR_MULTIPLIERS,
    MODEL_PRESETS,
    PUBLISHED_ARCHITECTURES,
    AutoPanoptic,
    AutoPanopticPreset,
    BackboneSpec,
    ShuffleNetV2Supernet,
    autopanoptic_search_space,
    build_autopanoptic,
    panoptic_fusion,
    param_groups,
    published_architecture,
    stuff_area_limit,
)
from oneshot_panoptic.ship import (
    DenseAutoPanoptic,
    PanopticPredictionWriter,
    build_model,
    predict_panoptic_images,
)
from oneshot_panoptic.structures import (
    IGNORE_LABEL,
    PanopticMetadata,
    PanopticSegmentation,
    SegmentInfo,
)
from oneshot_panoptic.task import PanopticTask
from oneshot_panoptic.visualize import overlay_panoptic

__all__ = [
    "AutoPanoptic",
    "AutoPanopticPreset",
    "BACKBONE_PRESETS",
    "BackboneSpec",
    "COCO_REFERENCE_AREA",
    "CocoPanoptic",
    "DenseAutoPanoptic",
    "DEFAULT_LR_MULTIPLIERS",
    "IGNORE_LABEL",
    "MODEL_PRESETS",
    "PUBLISHED_ARCHITECTURES",
    "PanopticConfig",
    "PanopticEvaluator",
    "PanopticMetadata",
    "PanopticPredictionWriter",
    "PanopticQuality",
    "PanopticSegmentation",
    "PanopticTask",
    "PreparedGroundTruth",
    "SegmentInfo",
    "ShuffleNetV2Supernet",
    "autopanoptic_search_space",
    "build_autopanoptic",
    "build_model",
    "build_transforms",
    "collate_fn",
    "ensure_synthetic_dataset",
    "evaluate_panoptic_files",
    "format_pq_table",
    "generate_synthetic_dataset",
    "overlay_panoptic",
    "panoptic_fusion",
    "param_groups",
    "predict_panoptic_images",
    "prepare_ground_truth",
    "published_architecture",
    "split_paths",
    "stuff_area_limit",
]
