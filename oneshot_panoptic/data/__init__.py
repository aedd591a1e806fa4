"""COCO-panoptic data: file I/O, the dataset, transforms and the synthetic dataset."""

from oneshot_panoptic.data.coco_panoptic import CocoPanoptic
from oneshot_panoptic.data.panoptic_io import (
    id2rgb,
    load_panoptic_json,
    read_panoptic_png,
    rgb2id,
    write_panoptic_png,
)
from oneshot_panoptic.data.synthetic import (
    DEFAULT_SPLITS,
    SYNTHETIC_CATEGORIES,
    VARIANTS,
    SplitPaths,
    SyntheticSample,
    categories_of,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    split_counts,
    split_paths,
    synthetic_sample,
)
from oneshot_panoptic.data.synthetic_bench import BENCH_CATEGORIES, BENCH_STUFF_PAIRS
from oneshot_panoptic.data.transforms import (
    Compose,
    RandomHorizontalFlip,
    ResizeShortestSide,
    Target,
    build_transforms,
    collate_fn,
    segment_areas_and_boxes,
)

__all__ = [
    "BENCH_CATEGORIES",
    "BENCH_STUFF_PAIRS",
    "CocoPanoptic",
    "Compose",
    "DEFAULT_SPLITS",
    "RandomHorizontalFlip",
    "ResizeShortestSide",
    "SYNTHETIC_CATEGORIES",
    "SplitPaths",
    "SyntheticSample",
    "Target",
    "VARIANTS",
    "build_transforms",
    "categories_of",
    "collate_fn",
    "ensure_synthetic_dataset",
    "generate_synthetic_dataset",
    "id2rgb",
    "load_panoptic_json",
    "read_panoptic_png",
    "rgb2id",
    "segment_areas_and_boxes",
    "split_counts",
    "split_paths",
    "synthetic_sample",
    "write_panoptic_png",
]
