"""Transforms applied consistently to an image and all of its panoptic targets, and the collate.

A transform is a callable ``(image, target) -> (image, target)`` where ``image`` is a float
``(3, H, W)`` tensor and ``target`` the dict produced by
:class:`~oneshot_panoptic.data.CocoPanoptic` (``boxes`` (N, 4) xyxy, ``labels`` (N,), ``masks``
(N, H, W) uint8, ``semantic`` (H, W), ``panoptic`` :class:`PanopticSegmentation`, ...). Maps and
masks are resized with nearest-neighbour sampling (pixel centres, like ``nearest-exact``), the
image bilinearly with antialiasing. Random draws come from ``generator`` when given, else from
torch's global generator (seeded per worker by ``DataLoader``), so runs are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from oneshot_panoptic.structures import PanopticSegmentation

__all__ = [
    "Target",
    "Compose",
    "ResizeShortestSide",
    "RandomHorizontalFlip",
    "build_transforms",
    "collate_fn",
    "segment_areas_and_boxes",
]

Target = dict[str, Any]
Transform = Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]]


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        for t in self.transforms:
            image, target = t(image, target)
        return image, target

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def _nearest_index(src: int, dst: int, device: torch.device) -> torch.Tensor:
    """Source index of each destination pixel centre (``nearest-exact``)."""
    idx = (
        ((torch.arange(dst, device=device, dtype=torch.float64) + 0.5) * (src / dst)).floor().long()
    )
    return idx.clamp_(max=src - 1)


def _resize_nearest(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Resize the last two dims of ``x`` (any dtype) by gathering ``rows`` and ``cols``."""
    return x.index_select(-2, rows).index_select(-1, cols)


def segment_areas_and_boxes(
    seg_map: torch.Tensor, ids: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel count and COCO box ``[x, y, w, h]`` of each id in an ``(H, W)`` segment-id map.

    Returns:
        ``areas`` (K,) int64 and ``boxes`` (K, 4) int64; absent ids get area 0 and a zero box.
    """
    k = len(ids)
    h, w = seg_map.shape
    if k == 0:
        return torch.zeros(0, dtype=torch.int64), torch.zeros((0, 4), dtype=torch.int64)
    ids_t = torch.as_tensor(list(ids), dtype=torch.int64, device=seg_map.device)
    order = torch.argsort(ids_t)
    sorted_ids = ids_t[order]
    flat = seg_map.reshape(-1).to(torch.int64)
    pos = torch.searchsorted(sorted_ids, flat).clamp_(max=k - 1)
    found = sorted_ids[pos] == flat
    slot = torch.where(found, order[pos], torch.full_like(pos, k))  # k = not one of ids
    areas = torch.bincount(slot, minlength=k + 1)[:k]
    ys = torch.arange(h, device=seg_map.device).repeat_interleave(w)
    xs = torch.arange(w, device=seg_map.device).repeat(h)
    big = max(h, w)
    lo_y = torch.full((k + 1,), big, dtype=torch.int64, device=seg_map.device).scatter_reduce(
        0, slot, ys, "amin"
    )
    hi_y = torch.full((k + 1,), -1, dtype=torch.int64, device=seg_map.device).scatter_reduce(
        0, slot, ys, "amax"
    )
    lo_x = torch.full((k + 1,), big, dtype=torch.int64, device=seg_map.device).scatter_reduce(
        0, slot, xs, "amin"
    )
    hi_x = torch.full((k + 1,), -1, dtype=torch.int64, device=seg_map.device).scatter_reduce(
        0, slot, xs, "amax"
    )
    boxes = torch.stack([lo_x, lo_y, hi_x - lo_x + 1, hi_y - lo_y + 1], dim=1)[:k]
    boxes[areas == 0] = 0
    return areas.cpu(), boxes.cpu()


def _updated_panoptic(
    panoptic: PanopticSegmentation, seg_map: torch.Tensor
) -> PanopticSegmentation:
    """The same segments on a new map: areas and boxes recomputed, vanished segments dropped."""
    segments = panoptic.segments
    areas, boxes = segment_areas_and_boxes(seg_map, [int(s["id"]) for s in segments])
    kept = []
    for seg, area, box in zip(segments, areas.tolist(), boxes.tolist(), strict=True):
        if area > 0:
            kept.append({**seg, "area": area, "bbox": box})
    return PanopticSegmentation(seg_map, kept)


class ResizeShortestSide:
    """Resize so the shorter side is ``short_size`` (drawn from ``short_sizes``), the longer <= ``max_size``.

    Args:
        short_sizes: one size, or several to draw from uniformly (multi-scale training).
        max_size: cap on the longer side.
        resize_panoptic: also resize ``target["panoptic"]`` (turn off to keep the ground truth at its
            original size for evaluation, with predictions resized back to ``orig_size``).
        generator: source of the random draw.
    """

    def __init__(
        self,
        short_sizes: int | Sequence[int],
        max_size: int,
        *,
        resize_panoptic: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        self.short_sizes = (short_sizes,) if isinstance(short_sizes, int) else tuple(short_sizes)
        if not self.short_sizes or min(self.short_sizes) <= 0 or max_size <= 0:
            raise ValueError("short_sizes and max_size must be positive")
        self.max_size = max_size
        self.resize_panoptic = resize_panoptic
        self.generator = generator

    def output_size(self, height: int, width: int, short_size: int) -> tuple[int, int]:
        scale = short_size / min(height, width)
        if max(height, width) * scale > self.max_size:
            scale = self.max_size / max(height, width)
        return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        from torchvision.transforms.v2 import functional as F

        if len(self.short_sizes) == 1:
            short = self.short_sizes[0]
        else:
            short = self.short_sizes[
                int(torch.randint(len(self.short_sizes), (1,), generator=self.generator))
            ]
        h, w = image.shape[-2:]
        nh, nw = self.output_size(h, w, short)
        if (nh, nw) == (h, w):
            return image, target
        image = F.resize(image, [nh, nw], antialias=True)
        rows, cols = _nearest_index(h, nh, image.device), _nearest_index(w, nw, image.device)
        target = dict(target)
        if "masks" in target:
            masks = _resize_nearest(target["masks"], rows, cols)
            keep = (
                masks.flatten(1).amax(dim=1) > 0
                if masks.numel()
                else torch.zeros(0, dtype=torch.bool)
            )
            target["masks"] = masks[keep]
            for key in ("labels", "area"):
                if key in target:
                    target[key] = target[key][keep]
            if "area" in target:
                target["area"] = target["masks"].flatten(1).sum(dim=1).to(target["area"].dtype)
            if "boxes" in target:
                scale = torch.tensor([nw / w, nh / h, nw / w, nh / h], dtype=target["boxes"].dtype)
                boxes = target["boxes"][keep] * scale
                boxes[:, 0::2] = boxes[:, 0::2].clamp(0, nw)
                boxes[:, 1::2] = boxes[:, 1::2].clamp(0, nh)
                target["boxes"] = boxes
        if "semantic" in target:
            target["semantic"] = _resize_nearest(target["semantic"], rows, cols)
        if self.resize_panoptic and "panoptic" in target:
            pan: PanopticSegmentation = target["panoptic"]
            seg_map = torch.as_tensor(pan.seg_map)
            target["panoptic"] = _updated_panoptic(
                pan, _resize_nearest(seg_map, rows.to(seg_map.device), cols.to(seg_map.device))
            )
        return image, target

    def __repr__(self) -> str:
        return f"ResizeShortestSide(short_sizes={self.short_sizes}, max_size={self.max_size})"


class RandomHorizontalFlip:
    """Mirror the image and all targets left-right with probability ``p``."""

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"flip probability must lie in [0, 1], got {p}")
        self.p = p
        self.generator = generator

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        if float(torch.rand((), generator=self.generator)) >= self.p:
            return image, target
        w = image.shape[-1]
        image = image.flip(-1)
        target = dict(target)
        if "masks" in target:
            target["masks"] = target["masks"].flip(-1)
        if "boxes" in target:
            boxes = target["boxes"].clone()
            boxes[:, 0], boxes[:, 2] = w - target["boxes"][:, 2], w - target["boxes"][:, 0]
            target["boxes"] = boxes
        if "semantic" in target:
            target["semantic"] = target["semantic"].flip(-1)
        if "panoptic" in target:
            pan: PanopticSegmentation = target["panoptic"]
            seg_map = torch.as_tensor(pan.seg_map)
            pw = seg_map.shape[-1]  # may differ from w when the ground truth kept its size
            segments = []
            for seg in pan.segments:
                seg = dict(seg)
                if "bbox" in seg:
                    x, y, bw, bh = seg["bbox"]
                    seg["bbox"] = [pw - x - bw, y, bw, bh]
                segments.append(seg)
            target["panoptic"] = PanopticSegmentation(seg_map.flip(-1), segments)
        return image, target

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def build_transforms(
    *,
    train: bool,
    short_sizes: int | Sequence[int],
    max_size: int,
    flip_prob: float = 0.5,
    generator: torch.Generator | None = None,
) -> Compose:
    """Training: random shorter side from ``short_sizes`` and horizontal flip. Evaluation: resize
    the image and training targets to the (first) shorter side, keeping the panoptic ground truth
    at its original size."""
    if train:
        return Compose(
            [
                ResizeShortestSide(short_sizes, max_size, generator=generator),
                RandomHorizontalFlip(flip_prob, generator=generator),
            ]
        )
    first = short_sizes if isinstance(short_sizes, int) else short_sizes[0]
    return Compose([ResizeShortestSide(first, max_size, resize_panoptic=False)])


def collate_fn(
    batch: Sequence[tuple[torch.Tensor, Target]],
) -> tuple[list[torch.Tensor], list[Target]]:
    """``[(image, target), ...]`` -> ``([image, ...], [target, ...])`` (images keep their sizes)."""
    images = [item[0] for item in batch]
    targets = [item[1] for item in batch]
    return images, targets
