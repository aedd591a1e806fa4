"""oneshot_panoptic: the Auto-Panoptic plug-in for oneshot (task ``panoptic``)."""

from oneshot_panoptic.structures import (
    IGNORE_LABEL,
    PanopticMetadata,
    PanopticSegmentation,
    SegmentInfo,
)

__all__ = ["IGNORE_LABEL", "PanopticMetadata", "PanopticSegmentation", "SegmentInfo"]

# Each part adds its public names below, in its own section.
# --- pq / data (issue 3) ---
from oneshot_panoptic.data import (  # noqa: E402
    CocoPanoptic,
    build_transforms,
    collate_fn,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    split_paths,
)
from oneshot_panoptic.pq import (  # noqa: E402
    PanopticQuality,
    PreparedGroundTruth,
    evaluate_panoptic_files,
    format_pq_table,
    prepare_ground_truth,
)

__all__ += [
    "CocoPanoptic",
    "PanopticQuality",
    "PreparedGroundTruth",
    "build_transforms",
    "collate_fn",
    "ensure_synthetic_dataset",
    "evaluate_panoptic_files",
    "format_pq_table",
    "generate_synthetic_dataset",
    "prepare_ground_truth",
    "split_paths",
]
# --- model (issue 5) ---
from oneshot_panoptic.backbone import BACKBONE_PRESETS, BackboneSpec, ShuffleNetV2Supernet  # noqa: E402
from oneshot_panoptic.fusion import COCO_REFERENCE_AREA, panoptic_fusion, stuff_area_limit  # noqa: E402
from oneshot_panoptic.model import (  # noqa: E402
    DEFAULT_LR_MULTIPLIERS,
    MODEL_PRESETS,
    PUBLISHED_ARCHITECTURES,
    AutoPanoptic,
    AutoPanopticPreset,
    autopanoptic_search_space,
    build_autopanoptic,
    param_groups,
    published_architecture,
)

__all__ += [
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
# --- task (issue 6) ---
from oneshot_panoptic.config import PanopticConfig  # noqa: E402
from oneshot_panoptic.task import PanopticTask  # noqa: E402

__all__ += ["PanopticConfig", "PanopticTask"]
