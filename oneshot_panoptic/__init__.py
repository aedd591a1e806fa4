"""oneshot_panoptic: the Auto-Panoptic plug-in for oneshot (task ``panoptic``).

Subpackages: :mod:`~oneshot_panoptic.data` (COCO-panoptic and synthetic data),
:mod:`~oneshot_panoptic.modeling` (the network and its builder), :mod:`~oneshot_panoptic.evaluation`
(PQ and semantic metrics); :mod:`~oneshot_panoptic.task` is the task, :mod:`~oneshot_panoptic.cli`
the ``oneshot panoptic`` commands.
"""

from oneshot_panoptic import modeling
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
from oneshot_panoptic.modeling import *  # noqa: F403 (re-exported: modeling.__all__ below)
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
    *modeling.__all__,
    "CocoPanoptic",
    "DenseAutoPanoptic",
    "IGNORE_LABEL",
    "PanopticConfig",
    "PanopticEvaluator",
    "PanopticMetadata",
    "PanopticPredictionWriter",
    "PanopticQuality",
    "PanopticSegmentation",
    "PanopticTask",
    "PreparedGroundTruth",
    "SegmentInfo",
    "build_model",
    "build_transforms",
    "collate_fn",
    "ensure_synthetic_dataset",
    "evaluate_panoptic_files",
    "format_pq_table",
    "generate_synthetic_dataset",
    "overlay_panoptic",
    "predict_panoptic_images",
    "prepare_ground_truth",
    "split_paths",
]
