"""The ``bench`` variant of the synthetic panoptic data: scenes on which the architecture matters.

The standard scenes (:mod:`oneshot_panoptic.data.synthetic`) are told apart by colour alone, so
every architecture of the search space learns them about equally well. These scenes make each
searched choice earn its place:

* **stuff classes told apart only beyond a small receptive field.** Two pairs of classes, each
  pair drawn with the same colour distribution, so a pixel's colour (and a small window) says
  little about the class:

  - ``tiles`` (21) vs ``patchwork`` (22): square cells of side ``size / 12`` in two colours of
    one palette; tiles alternate them as a checkerboard, patchwork draws each cell at random.
    Inside one cell both look the same; telling them apart needs a view of 2-3 cells
    (a large kernel, dilation, depth);
  - ``ripples`` (23) vs ``swell`` (24): the same sinusoidal waves in the same colours, with a
    period of ``size / 24`` vs ``size / 6`` (texture scale): the per-pixel colour distribution
    is identical, the period has to be measured.

* **small and thin things.** Discs, rectangles and triangles from ``size / 22`` (radius) up to
  ``0.15 size``, and ``bar`` (4): thin rotated bars 2-5 % of the side wide and a quarter to
  two fifths of it long (mask resolution, deformable sampling).
* **occlusion and clutter.** 3-8 things, later ones covering earlier ones down to 40 % of
  their area, some touching an instance of their class; grey distractor shapes that belong to
  the stuff beneath them; a VOID clutter blob in about 30 % of the images and a crowd region in
  about 15 %.

Everything else (ids, segments, determinism per ``(seed, image_id)``) is as in the standard
variant, which draws and writes these scenes through ``variant="bench"``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from oneshot_panoptic.data import synthetic as _std
from oneshot_panoptic.structures import PanopticSegmentation

__all__ = ["BENCH_CATEGORIES", "BENCH_STUFF_PAIRS", "bench_sample", "stuff_texture"]

BENCH_CATEGORIES: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "disc", "supercategory": "shape", "isthing": 1, "color": [235, 185, 40]},
    {"id": 2, "name": "rectangle", "supercategory": "shape", "isthing": 1, "color": [150, 60, 190]},
    {"id": 3, "name": "triangle", "supercategory": "shape", "isthing": 1, "color": [215, 45, 45]},
    {"id": 4, "name": "bar", "supercategory": "shape", "isthing": 1, "color": [40, 200, 200]},
    {"id": 21, "name": "tiles", "supercategory": "cells", "isthing": 0, "color": [120, 130, 140]},
    {"id": 22, "name": "patchwork", "supercategory": "cells", "isthing": 0, "color": [150, 110, 130]},
    {"id": 23, "name": "ripples", "supercategory": "waves", "isthing": 0, "color": [60, 120, 110]},
    {"id": 24, "name": "swell", "supercategory": "waves", "isthing": 0, "color": [40, 90, 150]},
)

#: Stuff classes drawn with identical colour statistics (told apart by arrangement / scale only).
BENCH_STUFF_PAIRS: tuple[tuple[int, int], ...] = ((21, 22), (23, 24))

_THING_IDS = (1, 2, 3, 4)
_STUFF_IDS = (21, 22, 23, 24)
_COLOR = {c["id"]: np.array(c["color"], dtype=np.float32) for c in BENCH_CATEGORIES}
_REACH = {1: 0.95, 2: 0.8, 3: 0.7, 4: 0.5}
# The two palettes (one per pair): a colour pair for the cells, a base and an amplitude for waves.
_CELL_COLORS = (np.array([95, 105, 120], np.float32), np.array([175, 165, 140], np.float32))
_WAVE_BASE = np.array([55, 110, 130], np.float32)
_WAVE_AMP = np.array([30, 38, 45], np.float32)


def stuff_texture(cat: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """``(size, size, 3)`` float32 texture of a bench stuff class (both members of a pair share
    the colour draws; only the arrangement or the scale differs)."""
    jitter = rng.uniform(-15, 15, 3).astype(np.float32)
    if cat in (21, 22):
        cell = max(size // 12, 2)
        n = size // cell + 2
        oy, ox = (int(v) for v in rng.integers(0, cell, 2))
        if cat == 21:  # checkerboard
            pattern = (np.arange(n)[:, None] + np.arange(n)[None, :]) % 2
        else:  # independent cells, half of each colour on average
            pattern = rng.integers(0, 2, (n, n))
        rows = (np.arange(size) + oy) // cell
        cols = (np.arange(size) + ox) // cell
        which = pattern[rows[:, None], cols[None, :]].astype(bool)
        a, b = (c + jitter for c in _CELL_COLORS)
        if rng.random() < 0.5:
            a, b = b, a
        return np.where(which[..., None], a, b).astype(np.float32)
    period = size / (24.0 if cat == 23 else 6.0)
    angle = rng.uniform(0, math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    t = xx * math.cos(angle) + yy * math.sin(angle)
    phase = rng.uniform(0, 2 * math.pi)
    waves = np.sin(2 * math.pi * t / period + phase)
    return (_WAVE_BASE + jitter + _WAVE_AMP * waves[..., None]).astype(np.float32)


def bench_sample(size: int, rng: np.random.Generator) -> _std.SyntheticSample:
    """Draw one ``bench`` scene; same contract as :func:`~oneshot_panoptic.data.synthetic_sample`."""
    if size < 32:
        raise ValueError(f"bench images need size >= 32, got {size}")
    labels = _std._Labels(size)
    stuff = [int(c) for c in rng.choice(_STUFF_IDS, size=int(rng.integers(2, 4)), replace=False)]
    fields = [_std._smooth_noise(rng, size, 2) + 0.3 * _std._smooth_noise(rng, size, 8) for _ in stuff]
    region = np.argmax(np.stack(fields), axis=0)
    image = np.empty((size, size, 3), dtype=np.float32)
    for k, cat in enumerate(stuff):
        where = region == k
        if where.any():
            labels.map[where] = labels.new(cat)
            np.copyto(image, stuff_texture(cat, rng, size), where=where[..., None])

    # Distractors: grey shapes that belong to the stuff they lie on.
    for _ in range(int(rng.integers(0, 3))):
        r = size * rng.uniform(0.05, 0.12)
        shape = _std._Shape(
            int(rng.choice((1, 2, 3))), *rng.uniform(r, size - r, 2), r,
            rng.uniform(0, 2 * math.pi), rng.uniform(0.75, 1.3),
        )  # fmt: skip
        (y0, x0, y1, x1), mask = shape.raster(size)
        grey = np.float32(rng.uniform(70, 190))
        image[y0:y1, x0:x1][mask] = grey

    if rng.random() < 0.3:  # VOID clutter blob
        r = size * rng.uniform(0.07, 0.14)
        cy, cx = rng.uniform(r, size - r, 2)
        dist = np.hypot(np.arange(size)[:, None] + 0.5 - cy, np.arange(size)[None, :] + 0.5 - cx) / r
        blob = dist + 0.35 * _std._smooth_noise(rng, size, 12) < 1.0
        labels.map[blob] = 0
        image[blob] = rng.normal(128, 40, (int(blob.sum()), 3)).astype(np.float32)

    if rng.random() < 0.15:  # crowd: a packed cluster of small objects, one iscrowd segment
        cat = int(rng.choice((1, 2, 3)))
        spread = size * 0.1
        ccy, ccx = rng.uniform(spread + size * 0.05, size - spread - size * 0.05, 2)
        crowd = np.zeros((size, size), dtype=bool)
        for _ in range(int(rng.integers(7, 13))):
            shape = _std._Shape(
                cat, ccy + rng.uniform(-spread, spread), ccx + rng.uniform(-spread, spread),
                size * rng.uniform(0.025, 0.04), rng.uniform(0, 2 * math.pi), rng.uniform(0.85, 1.15),
            )  # fmt: skip
            box, mask = shape.raster(size)
            _paint(image, box, mask, cat, rng)
            crowd[box[0] : box[2], box[1] : box[3]] |= mask
        labels.map[crowd] = labels.new(cat, iscrowd=1)

    _place_things(image, labels, rng, size)
    image += 5.0 * rng.standard_normal(image.shape, dtype=np.float32)
    np.clip(image, 0, 255, out=image)
    seg_map, segments = _std._segments_info(labels, rng)
    return _std.SyntheticSample(image.astype(np.uint8), PanopticSegmentation(seg_map, segments))


def _paint(image: np.ndarray, box: tuple[int, int, int, int], mask: np.ndarray, cat: int, rng: np.random.Generator) -> None:
    y0, x0, y1, x1 = box
    fill = _COLOR[cat] + rng.uniform(-25, 25, 3).astype(np.float32)
    region = image[y0:y1, x0:x1]
    region[mask] = fill
    region[_std._boundary(mask)] *= 0.6


def _bar_raster(cy: float, cx: float, length: float, width: float, angle: float, size: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
    r = 0.5 * length + width
    y0, x0 = max(int(cy - r), 0), max(int(cx - r), 0)
    y1, x1 = min(int(math.ceil(cy + r)) + 1, size), min(int(math.ceil(cx + r)) + 1, size)
    y = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
    x = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    return (y0, x0, y1, x1), (np.abs(u) <= 0.5 * length) & (np.abs(v) <= 0.5 * width)


def _place_things(image: np.ndarray, labels: _std._Labels, rng: np.random.Generator, size: int) -> None:
    """Paint 3-8 things; each keeps >= 40 % of its area; about a third touch one of their class."""
    owner = np.full((size, size), -1, dtype=np.int32)
    full_area: list[int] = []
    visible: list[int] = []
    placed: list[tuple[int, float, float, float]] = []  # category, cy, cx, radius
    min_radius = size / 22
    for _ in range(int(rng.integers(3, 9))):
        for _attempt in range(12):
            if placed and rng.random() < 0.35:
                cat, oy, ox, orad = placed[int(rng.integers(len(placed)))]
                radius = size * rng.uniform(0.045, 0.15)
                phi = rng.uniform(0, 2 * math.pi)
                dist = _REACH[cat] * (orad + radius)
                cy, cx = oy + dist * math.sin(phi), ox + dist * math.cos(phi)
            else:
                cat = int(rng.choice(_THING_IDS))
                radius = size * rng.uniform(0.045, 0.15)
                cy, cx = rng.uniform(radius, size - radius, 2)
            radius = max(radius, min_radius)
            if cat == 4:
                radius = size * rng.uniform(0.12, 0.2)
            if not (radius <= cy <= size - radius and radius <= cx <= size - radius):
                continue
            if cat == 4:
                width = max(size * rng.uniform(0.02, 0.05), 2.0)
                box, mask = _bar_raster(cy, cx, 2 * radius, width, rng.uniform(0, math.pi), size)
            else:
                shape = _std._Shape(cat, float(cy), float(cx), float(radius), rng.uniform(0, 2 * math.pi), rng.uniform(0.75, 1.3))
                box, mask = shape.raster(size)
            y0, x0, y1, x1 = box
            covered = owner[y0:y1, x0:x1][mask]
            lost = np.bincount(covered[covered >= 0], minlength=len(placed))
            after = np.asarray(visible, dtype=np.int64) - lost
            if np.any(after < 0.4 * np.asarray(full_area, dtype=np.float64)) or not mask.any():
                continue
            _paint(image, box, mask, cat, rng)
            owner[y0:y1, x0:x1][mask] = len(placed)
            labels.map[y0:y1, x0:x1][mask] = labels.new(cat)
            placed.append((cat, float(cy), float(cx), float(radius)))
            visible = [*after.tolist(), int(mask.sum())]
            full_area.append(visible[-1])
            break
