"""COCO-panoptic data: file I/O, the dataset, transforms and the synthetic dataset."""

from oneshot_panoptic.data.panoptic_io import (
    id2rgb,
    load_panoptic_json,
    read_panoptic_png,
    rgb2id,
    write_panoptic_png,
)

__all__ = ["id2rgb", "load_panoptic_json", "read_panoptic_png", "rgb2id", "write_panoptic_png"]
