"""Colour overlays of panoptic segmentations: segments coloured per category, instance outlines and
category labels on the image (``oneshot predict`` and the report's picture grid)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from oneshot_panoptic.structures import PanopticMetadata, PanopticSegmentation

__all__ = ["category_colors", "overlay_panoptic", "to_uint8_image"]

_PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
     [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40]],
    dtype=np.uint8,
)


def category_colors(metadata: PanopticMetadata) -> dict[int, np.ndarray]:
    """An RGB colour per dataset category id: the category's ``color`` when given, else a palette's."""
    colors = {}
    for i, cat in enumerate(metadata.categories):
        color = cat.get("color")
        colors[int(cat["id"])] = np.array(color, dtype=np.uint8) if color else _PALETTE[i % len(_PALETTE)]
    return colors


def to_uint8_image(image: Any) -> np.ndarray:
    """``(3, H, W)`` float tensor in ``[0, 1]``, PIL image or ``(H, W, 3)`` array -> ``(H, W, 3)`` uint8."""
    if isinstance(image, torch.Tensor):
        return (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    return array.astype(np.uint8)


def _boundaries(seg: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour in another segment."""
    edge = np.zeros(seg.shape, dtype=bool)
    horizontal = seg[:, :-1] != seg[:, 1:]
    vertical = seg[:-1, :] != seg[1:, :]
    edge[:, :-1] |= horizontal
    edge[:, 1:] |= horizontal
    edge[:-1, :] |= vertical
    edge[1:, :] |= vertical
    return edge


def overlay_panoptic(
    image: Any,
    segmentation: PanopticSegmentation,
    metadata: PanopticMetadata,
    *,
    alpha: float = 0.55,
    labels: bool = True,
    scale: int = 1,
) -> np.ndarray:
    """The image with each segment blended in its category's colour, outlines around every thing
    instance (white) and the category name written at each segment's centre (``scale`` enlarges
    the picture first, for legible labels on small images). Returns ``(H·scale, W·scale, 3)`` uint8."""
    from PIL import Image, ImageDraw

    rgb = to_uint8_image(image)
    seg = np.asarray(segmentation.seg_map.cpu() if isinstance(segmentation.seg_map, torch.Tensor) else segmentation.seg_map)
    if seg.shape != rgb.shape[:2]:
        raise ValueError(f"segmentation is {seg.shape}, image {rgb.shape[:2]}")
    if scale > 1:
        rgb = np.repeat(np.repeat(rgb, scale, 0), scale, 1)
        seg = np.repeat(np.repeat(seg, scale, 0), scale, 1)
    colors = category_colors(metadata)
    names: Mapping[int, str] = {int(c["id"]): str(c.get("name", c["id"])) for c in metadata.categories}
    things = set(metadata.thing_ids)
    out = rgb.astype(np.float32)
    thing_ids: list[int] = []
    for s in segmentation.segments:
        mask = seg == int(s["id"])
        cat = int(s["category_id"])
        out[mask] = (1 - alpha) * out[mask] + alpha * colors.get(cat, _PALETTE[0]).astype(np.float32)
        if cat in things:
            thing_ids.append(int(s["id"]))
    picture = np.rint(out).clip(0, 255).astype(np.uint8)
    if thing_ids:
        instance = np.where(np.isin(seg, thing_ids), seg, 0)
        picture[_boundaries(instance) & (instance > 0)] = 255  # inside each instance's border
    if labels:
        pil = Image.fromarray(picture)
        draw = ImageDraw.Draw(pil)
        for s in segmentation.segments:
            ys, xs = np.nonzero(seg == int(s["id"]))
            if len(ys) < 16 * scale * scale:
                continue
            y, x = int(np.median(ys)), int(np.median(xs))
            text = names.get(int(s["category_id"]), str(s["category_id"]))
            draw.text((x, y), text, fill=(255, 255, 255), anchor="mm", stroke_width=1, stroke_fill=(0, 0, 0))
        picture = np.asarray(pil)
    return picture
