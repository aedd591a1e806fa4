"""Panoptic fusion: instance masks and semantic logits -> one segment-id map (Panoptic FPN rule).

Instances are pasted greedily by decreasing score: an instance scoring below
``instance_score_threshold`` is dropped, and one whose visible part would lose more than
``overlap_threshold`` of its mask to higher-scoring instances is dropped too; otherwise it takes
the pixels not yet taken. Stuff then fills the free pixels by the semantic argmax (class 0, the
"things" class, never becomes a segment); a stuff class whose free area is below the stuff area
limit is dropped. Dropped pixels stay VOID (segment id 0).

Stuff area limit: ``stuff_area_threshold`` (64 × 64 = 4096 pixels) is the limit panopticapi and
Panoptic FPN apply to COCO images at their original resolution (about 640 × 480 =
:data:`COCO_REFERENCE_AREA` pixels). Our images may be resized by the data pipeline, so by default
the limit is scaled by the image area: ``stuff_area_threshold * H * W / reference_area``; pass
``reference_area=None`` to apply ``stuff_area_threshold`` in pixels of the given image.

The output uses the dataset's category ids through :class:`~oneshot_panoptic.structures.PanopticMetadata`
(thing label ``i`` -> ``metadata.thing_ids[i - 1]``, semantic class ``j >= 1`` ->
``metadata.stuff_ids[j - 1]``), segment ids ``1..N`` and ``segments_info`` entries
``{"id", "category_id", "iscrowd": 0, "area"}`` (things also carry their ``"score"``): the form the
PQ evaluator takes. Everything runs on the tensors' device; the loop over instances has no host
synchronisation, and there is a single transfer at the end to build ``segments_info``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from oneshot_panoptic.structures import PanopticMetadata, PanopticSegmentation, SegmentInfo

__all__ = ["COCO_REFERENCE_AREA", "panoptic_fusion", "stuff_area_limit"]

#: Area (pixels) of a typical COCO image at its original resolution (640 × 480), at which the
#: 64 × 64 stuff area limit of panopticapi / Panoptic FPN is defined.
COCO_REFERENCE_AREA: int = 640 * 480


def stuff_area_limit(
    height: int, width: int, *, stuff_area_threshold: float = 4096, reference_area: float | None = COCO_REFERENCE_AREA
) -> float:
    """Minimum stuff area in pixels for an ``height × width`` image (see the module docstring)."""
    if reference_area is None:
        return float(stuff_area_threshold)
    if reference_area <= 0:
        raise ValueError(f"reference_area must be positive, got {reference_area}")
    return float(stuff_area_threshold) * height * width / float(reference_area)


def panoptic_fusion(
    detections: Mapping[str, Tensor],
    sem_seg_logits: Tensor,
    metadata: PanopticMetadata,
    *,
    instance_score_threshold: float = 0.5,
    overlap_threshold: float = 0.5,
    stuff_area_threshold: float = 4096,
    reference_area: float | None = COCO_REFERENCE_AREA,
    mask_threshold: float = 0.5,
) -> PanopticSegmentation:
    """Fuse one image's detections and semantic logits into a panoptic segmentation.

    Args:
        detections: ``boxes (N, 4)`` (unused), ``labels (N,)`` contiguous thing labels ``1..T``,
            ``scores (N,)``, ``masks (N, 1, H, W)`` probabilities (or ``(N, H, W)``).
        sem_seg_logits: ``(C, H, W)`` logits (or already-argmaxed ``(H, W)`` class indices);
            class 0 is "things", ``1..S`` stuff.
        metadata: categories of the dataset.
        instance_score_threshold: minimum detection score.
        overlap_threshold: drop an instance when more than this fraction of its mask is taken.
        stuff_area_threshold: stuff area limit at the reference area (64 × 64).
        reference_area: image area at which ``stuff_area_threshold`` holds; ``None``: no scaling.
        mask_threshold: probability above which a mask pixel belongs to its instance.

    Returns:
        :class:`PanopticSegmentation` with an ``(H, W)`` int64 ``seg_map`` on the input's device.
    """
    semantic = sem_seg_logits.argmax(dim=0) if sem_seg_logits.dim() == 3 else sem_seg_logits
    height, width = semantic.shape
    device = semantic.device
    seg = torch.zeros((height, width), dtype=torch.int64, device=device)

    scores = detections["scores"].to(device)
    labels = detections["labels"].to(device)
    masks = detections["masks"].to(device)
    if masks.dim() == 4:
        masks = masks[:, 0]
    if masks.shape[-2:] != (height, width):
        raise ValueError(f"instance masks are {tuple(masks.shape[-2:])}, semantic map is {(height, width)}")
    keep = scores >= instance_score_threshold
    order = torch.argsort(scores[keep], descending=True)
    scores, labels = scores[keep][order], labels[keep][order]
    binary = masks[keep][order] > mask_threshold  # (K, H, W)
    num_instances = int(binary.shape[0])

    # Greedy pasting with provisional ids k + 1; kept[k] says whether instance k was pasted.
    kept = torch.zeros(num_instances, dtype=torch.bool, device=device)
    for k in range(num_instances):
        mask = binary[k]
        area = mask.sum()
        free = mask & (seg == 0)
        free_area = free.sum()
        ok = (free_area > 0) & (area - free_area <= overlap_threshold * area)
        kept[k] = ok
        seg = torch.where(free & ok, k + 1, seg)

    # Stuff fills the remaining pixels.
    num_classes = int(sem_seg_logits.shape[0]) if sem_seg_logits.dim() == 3 else metadata.num_semantic_classes
    free = seg == 0
    stuff_area = torch.bincount(semantic[free], minlength=num_classes)  # (C,)
    limit = stuff_area_limit(height, width, stuff_area_threshold=stuff_area_threshold, reference_area=reference_area)
    stuff_kept = (stuff_area >= limit) & (stuff_area > 0)
    stuff_kept[0] = False  # the "things" class never becomes a stuff segment
    # Provisional ids for stuff: num_instances + 1 + class index.
    seg = torch.where(free & stuff_kept[semantic], num_instances + 1 + semantic, seg)

    # Relabel provisional ids to consecutive ids 1..N (instances by score, then stuff by class).
    kept_all = torch.cat([torch.zeros(1, dtype=torch.bool, device=device), kept, stuff_kept])
    new_ids = torch.cumsum(kept_all.to(torch.int64), dim=0) * kept_all
    seg = new_ids[seg]
    num_segments = int(kept_all.sum())
    areas = torch.bincount(seg.flatten(), minlength=num_segments + 1)

    # One transfer to the host to build segments_info.
    kept_cpu, stuff_kept_cpu = kept.cpu().tolist(), stuff_kept.cpu().tolist()
    labels_cpu, scores_cpu, areas_cpu = labels.cpu().tolist(), scores.cpu().tolist(), areas.cpu().tolist()
    segments: list[SegmentInfo] = []
    for k, ok in enumerate(kept_cpu):
        if ok:
            sid = len(segments) + 1
            segments.append(
                SegmentInfo(
                    id=sid,
                    category_id=metadata.thing_label_to_category(int(labels_cpu[k])),
                    iscrowd=0,
                    area=int(areas_cpu[sid]),
                    score=float(scores_cpu[k]),
                )
            )
    for cls_index, ok in enumerate(stuff_kept_cpu):
        if ok:
            sid = len(segments) + 1
            segments.append(
                SegmentInfo(
                    id=sid,
                    category_id=metadata.semantic_class_to_category(cls_index),
                    iscrowd=0,
                    area=int(areas_cpu[sid]),
                )
            )
    return PanopticSegmentation(seg_map=seg, segments=segments)

