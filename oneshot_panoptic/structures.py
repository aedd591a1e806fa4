"""Data structures shared by the panoptic data loaders, the fusion step and the PQ evaluator.

Conventions (all parts of ``oneshot_panoptic`` rely on them):

* A panoptic segmentation is an ``(H, W)`` integer map of segment ids (``0`` = VOID unless a
  segment with id 0 is listed) plus a list of segment records ``{"id", "category_id",
  "iscrowd"}`` using the *dataset's* category ids, exactly as in COCO-panoptic JSON.
* Model-side class indices are contiguous:
  - detection labels: ``0`` = background, ``i + 1`` = ``metadata.thing_ids[i]``;
  - semantic classes: ``0`` = "things" (every thing pixel), ``j + 1`` = ``metadata.stuff_ids[j]``,
    ``255`` = ignore (VOID and crowd pixels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import torch

__all__ = ["SegmentInfo", "PanopticSegmentation", "PanopticMetadata", "IGNORE_LABEL"]

IGNORE_LABEL = 255


class SegmentInfo(TypedDict, total=False):
    """One segment of a panoptic segmentation (COCO-panoptic ``segments_info`` entry)."""

    id: int
    category_id: int
    iscrowd: int
    area: int
    bbox: list[float]
    score: float


@dataclass
class PanopticSegmentation:
    """An ``(H, W)`` segment-id map and its segments.

    ``seg_map`` may be a numpy array or a torch tensor (on any device); ids are integers.
    """

    seg_map: np.ndarray | torch.Tensor
    segments: list[SegmentInfo] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.seg_map.shape[0]), int(self.seg_map.shape[1]))


@dataclass(frozen=True)
class PanopticMetadata:
    """Categories of a panoptic dataset and the contiguous model-side indices.

    Attributes:
        categories: COCO-style category dicts (``id``, ``name``, ``isthing``, optional ``color``).
        thing_ids: dataset category ids of thing classes; detection label ``i + 1`` is ``thing_ids[i]``.
        stuff_ids: dataset category ids of stuff classes; semantic class ``j + 1`` is ``stuff_ids[j]``.
    """

    categories: tuple[dict[str, Any], ...]
    thing_ids: tuple[int, ...]
    stuff_ids: tuple[int, ...]

    @classmethod
    def from_categories(cls, categories: list[dict[str, Any]]) -> PanopticMetadata:
        cats = tuple(sorted((dict(c) for c in categories), key=lambda c: int(c["id"])))
        things = tuple(int(c["id"]) for c in cats if c.get("isthing", 0))
        stuff = tuple(int(c["id"]) for c in cats if not c.get("isthing", 0))
        return cls(categories=cats, thing_ids=things, stuff_ids=stuff)

    @property
    def num_things(self) -> int:
        return len(self.thing_ids)

    @property
    def num_stuff(self) -> int:
        return len(self.stuff_ids)

    @property
    def num_semantic_classes(self) -> int:
        """Stuff classes plus the single "things" class."""
        return len(self.stuff_ids) + 1

    def thing_label_to_category(self, label: int) -> int:
        return self.thing_ids[label - 1]

    def semantic_class_to_category(self, cls_index: int) -> int:
        return self.stuff_ids[cls_index - 1]
