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
# --- task (issue 6) ---
