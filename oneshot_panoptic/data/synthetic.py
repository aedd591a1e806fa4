"""A synthetic panoptic dataset written as real COCO-panoptic files (the embedded default data).

Scenes: 2-3 textured stuff regions with irregular borders (sky, grass, water, wall), on top of
which 2-6 things (disc, rectangle, triangle) are painted at varied scales and rotations. Things
differ by form and by colour; some instances of one class touch each other, later instances
partly occlude earlier ones (each keeps most of its area), some images hold a crowd region (a
cluster of small objects labelled as one ``iscrowd`` segment) or a VOID clutter blob (id 0).

Layout written by :func:`generate_synthetic_dataset`, one folder per split::

    DIR/{split}/images/{image_id:06d}.jpg     RGB JPEG
    DIR/{split}/panoptic/{image_id:06d}.png   RGB PNG, id = R + 256 G + 256**2 B, 0 = VOID
    DIR/{split}/panoptic.json                 images, annotations (segments_info), categories

Every image is drawn from its own generator seeded by ``(seed, image_id)``, so the files depend
only on the seed, the size, the split sizes and the variant (``bench``: harder scenes, drawn by
:mod:`oneshot_panoptic.data.synthetic_bench`). Not split, at about 600 lines: the scene drawing
and the file writing share private helpers that the bench variant reuses, and the drawing of one
scene reads best in one place.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

import numpy as np

from oneshot.errors import DatasetError
from oneshot_panoptic.data.panoptic_io import MAX_SEGMENT_ID, write_panoptic_png
from oneshot_panoptic.structures import PanopticSegmentation, SegmentInfo

__all__ = [
    "SYNTHETIC_CATEGORIES",
    "VARIANTS",
    "Variant",
    "categories_of",
    "DEFAULT_SPLITS",
    "SplitPaths",
    "SyntheticSample",
    "split_paths",
    "split_counts",
    "synthetic_sample",
    "generate_synthetic_dataset",
    "ensure_synthetic_dataset",
]

GENERATOR_VERSION = 1

SYNTHETIC_CATEGORIES: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "disc", "supercategory": "shape", "isthing": 1, "color": [235, 185, 40]},
    {"id": 2, "name": "rectangle", "supercategory": "shape", "isthing": 1, "color": [150, 60, 190]},
    {"id": 3, "name": "triangle", "supercategory": "shape", "isthing": 1, "color": [215, 45, 45]},
    {
        "id": 11,
        "name": "sky",
        "supercategory": "background",
        "isthing": 0,
        "color": [140, 195, 235],
    },
    {
        "id": 12,
        "name": "grass",
        "supercategory": "background",
        "isthing": 0,
        "color": [70, 145, 55],
    },
    {
        "id": 13,
        "name": "water",
        "supercategory": "background",
        "isthing": 0,
        "color": [35, 85, 150],
    },
    {
        "id": 14,
        "name": "wall",
        "supercategory": "background",
        "isthing": 0,
        "color": [160, 120, 95],
    },
)

Variant = Literal["standard", "bench"]
#: ``standard``: the scenes described above; ``bench``: harder scenes on which the architecture
#: matters (:mod:`oneshot_panoptic.data.synthetic_bench`).
VARIANTS: tuple[str, ...] = get_args(Variant)


def categories_of(variant: str = "standard") -> tuple[dict[str, Any], ...]:
    """The COCO ``categories`` of a variant's images."""
    _check_variant(variant)
    if variant == "bench":
        from oneshot_panoptic.data.synthetic_bench import BENCH_CATEGORIES

        return BENCH_CATEGORIES
    return SYNTHETIC_CATEGORIES


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown synthetic variant {variant!r}; choose from {list(VARIANTS)}")


DEFAULT_SPLITS: dict[str, float] = {"train": 0.7, "nas_val": 0.15, "val": 0.15}

_THING_IDS = (1, 2, 3)
_STUFF_IDS = (11, 12, 13, 14)
# How far a shape reaches from its centre, relative to its radius (to place touching instances).
_REACH = {1: 0.95, 2: 0.8, 3: 0.7}
_COLOR = {c["id"]: np.array(c["color"], dtype=np.float32) for c in SYNTHETIC_CATEGORIES}


class SplitPaths(NamedTuple):
    """Where one split lives: the arguments of :class:`~oneshot_panoptic.data.CocoPanoptic`."""

    image_dir: Path
    panoptic_json: Path
    panoptic_dir: Path


def split_paths(root: str | Path, split: str) -> SplitPaths:
    """Paths of ``split`` under a dataset root in the layout of this module."""
    base = Path(root) / split
    return SplitPaths(base / "images", base / "panoptic.json", base / "panoptic")


@dataclass(frozen=True)
class SyntheticSample:
    """One synthetic image: ``image`` (H, W, 3) uint8 and its panoptic ground truth."""

    image: np.ndarray
    panoptic: PanopticSegmentation


# -- textures ------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """``(size, size)`` float32 noise, smooth at the scale ``size / cells``, roughly unit variance."""
    from PIL import Image

    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(
        Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    )


def _stuff_texture(cat: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """``(size, size, 3)`` float32 texture of a stuff class."""
    yy = np.arange(size, dtype=np.float32)[:, None] / size
    base = _COLOR[cat] + rng.uniform(-12, 12, 3).astype(np.float32)
    if cat == 11:  # sky: vertical gradient and soft clouds
        clouds = np.clip(_smooth_noise(rng, size, 4), 0, None)[..., None]
        tex = base * (1.05 - 0.2 * yy)[..., None] + 45 * clouds
    elif cat == 12:  # grass: fine blades (noise stretched vertically)
        from PIL import Image

        blades = rng.standard_normal((max(size // 6, 2), size)).astype(np.float32)
        blades = np.asarray(
            Image.fromarray(blades, mode="F").resize((size, size), Image.Resampling.BILINEAR)
        )
        tex = base + (np.array([10, 28, 8], dtype=np.float32) * blades[..., None])
    elif cat == 13:  # water: horizontal waves with a wobbling phase
        period = size / rng.uniform(6, 10)
        phase = 2.5 * _smooth_noise(rng, size, 3)
        waves = np.sin(2 * math.pi * yy * size / period + phase)
        tex = base + np.array([14, 20, 28], dtype=np.float32) * waves[..., None]
    else:  # wall: bricks with mortar lines
        brick_h = max(int(size / rng.uniform(10, 14)), 3)
        brick_w = 2 * brick_h
        rows = np.arange(size)[:, None] // brick_h
        cols = np.arange(size)[None, :] + (rows % 2) * (brick_w // 2)
        mortar = (np.arange(size)[:, None] % brick_h == 0) | (cols % brick_w == 0)
        shade = rng.uniform(-18, 18, (size // brick_h + 2, size // brick_w + 3)).astype(np.float32)
        tex = base + shade[rows, cols // brick_w][..., None]
        tex = np.where(mortar[..., None], np.float32(205), tex)
    return tex.astype(np.float32)


# -- shapes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    category: int
    cy: float
    cx: float
    radius: float  # half-extent of the shape's bounding square
    angle: float
    aspect: float

    def box(self, size: int) -> tuple[int, int, int, int]:
        r = self.radius
        y0, x0 = max(int(self.cy - r), 0), max(int(self.cx - r), 0)
        y1, x1 = (
            min(int(math.ceil(self.cy + r)) + 1, size),
            min(int(math.ceil(self.cx + r)) + 1, size),
        )
        return y0, x0, y1, x1

    def raster(self, size: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
        """Bounding box ``(y0, x0, y1, x1)`` and the boolean mask inside it."""
        y0, x0, y1, x1 = self.box(size)
        y = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - self.cy
        x = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - self.cx
        c, s = math.cos(self.angle), math.sin(self.angle)
        u, v = c * x + s * y, -s * x + c * y
        r = self.radius
        if self.category == 1:  # disc (slightly elliptic)
            minor = r * min(self.aspect, 1.0 / self.aspect)
            mask = (u / r) ** 2 + (v / minor) ** 2 <= 1.0
        elif self.category == 2:  # rectangle, half-diagonal 0.98 r so any rotation fits the box
            a = 0.98 * r / math.sqrt(1.0 + self.aspect**2)
            mask = (np.abs(u) <= a) & (np.abs(v) <= a * self.aspect)
        else:  # triangle, circumradius r
            mask = np.ones(u.shape, dtype=bool)
            for k in range(3):
                t = math.pi / 2 + 2 * math.pi * k / 3
                mask &= u * math.cos(t) + v * math.sin(t) >= -0.5 * r
        return (y0, x0, y1, x1), mask


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it."""
    padded = np.pad(mask, 1)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def _paint_shape(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    mask: np.ndarray,
    cat: int,
    rng: np.random.Generator,
) -> None:
    y0, x0, y1, x1 = box
    color = _COLOR[cat] + rng.uniform(-22, 22, 3).astype(np.float32)
    h, w = mask.shape
    gy, gx = rng.uniform(-1, 1, 2)
    shading = 1.0 + 0.18 * (
        gy * np.linspace(-1, 1, h, dtype=np.float32)[:, None]
        + gx * np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    )
    fill = color * shading[..., None]
    fill[_boundary(mask)] *= 0.55
    region = image[y0:y1, x0:x1]
    region[mask] = fill[mask]


#: Paints a thing: ``(image, box, mask, category, rng)``.
_Painter = Callable[[np.ndarray, tuple[int, int, int, int], np.ndarray, int, np.random.Generator], None]


# -- one image -------------------------------------------------------------------------------


class _Labels:
    """Segments being drawn: a small per-pixel label map (0 = VOID) and each label's class."""

    def __init__(self, size: int) -> None:
        self.map = np.zeros((size, size), dtype=np.uint8)
        self.kinds: list[tuple[int, int]] = []  # label k + 1 -> (category id, iscrowd)

    def new(self, category: int, iscrowd: int = 0) -> int:
        self.kinds.append((category, iscrowd))
        return len(self.kinds)


def synthetic_sample(size: int, rng: np.random.Generator, variant: str = "standard") -> SyntheticSample:
    """Draw one synthetic panoptic image.

    Args:
        size: side of the square image in pixels (64-512 is sensible; things stay >= ~size/16).
        rng: the random generator (the image depends on nothing else).
        variant: ``standard`` or ``bench`` (see :data:`VARIANTS`).

    Returns:
        ``image`` (size, size, 3) uint8 and ``panoptic`` with an (size, size) uint32 id map and
        segments (``id``, ``category_id``, ``iscrowd``, ``area``, ``bbox`` = [x, y, w, h]); ids
        are distinct random values in ``[1, 2**24)``, like COCO's colour-coded ids.
    """
    _check_variant(variant)
    if variant == "bench":
        from oneshot_panoptic.data.synthetic_bench import bench_sample

        return bench_sample(size, rng)
    if size < 16:
        raise ValueError(f"synthetic images need size >= 16, got {size}")
    labels = _Labels(size)

    # Stuff: 2-3 classes, each region the argmax of a smooth random field with a rough border.
    stuff = [int(c) for c in rng.choice(_STUFF_IDS, size=int(rng.integers(2, 4)), replace=False)]
    yy = np.linspace(1, -1, size, dtype=np.float32)[:, None]
    fields = []
    for cat in stuff:
        field = _smooth_noise(rng, size, 2) + 0.3 * _smooth_noise(rng, size, 10)
        if cat == 11:
            field = field + 0.9 * yy
        elif cat == 13:
            field = field - 0.6 * yy
        fields.append(field)
    image = _paint_stuff(labels, stuff, fields, _stuff_texture, rng)

    _void_blob(image, labels, rng, size)
    _crowd(image, labels, rng, size, _paint_shape)

    _place_things(image, labels, rng, size)

    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= 4.0
    image += noise
    np.clip(image, 0, 255, out=image)
    seg_map, segments = _segments_info(labels, rng)
    return SyntheticSample(image.astype(np.uint8), PanopticSegmentation(seg_map, segments))


def _paint_stuff(
    labels: _Labels,
    stuff: list[int],
    fields: list[np.ndarray],
    texture: Callable[[int, np.random.Generator, int], np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """A new float image split among the ``stuff`` classes: each pixel goes to the class whose
    ``field`` is highest there, labelled and filled with that class's ``texture``."""
    size = labels.map.shape[0]
    region = np.argmax(np.stack(fields), axis=0)
    image = np.empty((size, size, 3), dtype=np.float32)
    for k, cat in enumerate(stuff):
        where = region == k
        if where.any():
            labels.map[where] = labels.new(cat)
            np.copyto(image, texture(cat, rng, size), where=where[..., None])
    return image


def _void_blob(image: np.ndarray, labels: _Labels, rng: np.random.Generator, size: int) -> None:
    """VOID, in about 30 % of the images: an irregular clutter blob of unlabelled grey pixels."""
    if rng.random() < 0.3:
        r = size * rng.uniform(0.07, 0.14)
        cy, cx = rng.uniform(r, size - r, 2)
        dist = (
            np.hypot(np.arange(size)[:, None] + 0.5 - cy, np.arange(size)[None, :] + 0.5 - cx) / r
        )
        blob = dist + 0.35 * _smooth_noise(rng, size, 12) < 1.0
        labels.map[blob] = 0
        image[blob] = rng.normal(128, 40, (int(blob.sum()), 3)).astype(np.float32)


def _crowd(image: np.ndarray, labels: _Labels, rng: np.random.Generator, size: int, paint: _Painter) -> None:
    """In about 15 % of the images, a packed cluster of small things of one class (disc,
    rectangle or triangle) labelled as a single crowd segment; each drawn by ``paint``."""
    if rng.random() < 0.15:
        cat = int(rng.choice(_THING_IDS))
        spread = size * 0.1
        ccy, ccx = rng.uniform(spread + size * 0.05, size - spread - size * 0.05, 2)
        crowd = np.zeros((size, size), dtype=bool)
        for _ in range(int(rng.integers(7, 13))):
            shape = _Shape(
                cat, ccy + rng.uniform(-spread, spread), ccx + rng.uniform(-spread, spread),
                size * rng.uniform(0.025, 0.04), rng.uniform(0, 2 * math.pi), rng.uniform(0.85, 1.15),
            )  # fmt: skip
            box, mask = shape.raster(size)
            paint(image, box, mask, cat, rng)
            crowd[box[0] : box[2], box[1] : box[3]] |= mask
        labels.map[crowd] = labels.new(cat, iscrowd=1)


def _place_things(image: np.ndarray, labels: _Labels, rng: np.random.Generator, size: int) -> None:
    """Paint 2-6 things; each keeps >= 55 % of its area, some touch one of their class."""
    owner = np.full((size, size), -1, dtype=np.int32)  # thing index per pixel
    full_area: list[int] = []
    visible: list[int] = []
    shapes: list[_Shape] = []
    for _ in range(int(rng.integers(2, 7))):
        for _attempt in range(12):
            radius = size * rng.uniform(0.06, 0.17)
            if shapes and rng.random() < 0.35:  # touch an earlier instance of the same class
                other = shapes[int(rng.integers(len(shapes)))]
                cat = other.category
                phi = rng.uniform(0, 2 * math.pi)
                dist = _REACH[cat] * (other.radius + radius)
                cy, cx = other.cy + dist * math.sin(phi), other.cx + dist * math.cos(phi)
            else:
                cat = int(rng.choice(_THING_IDS))
                cy, cx = rng.uniform(radius, size - radius, 2)
            if not (radius <= cy <= size - radius and radius <= cx <= size - radius):
                continue
            shape = _Shape(
                cat,
                float(cy),
                float(cx),
                float(radius),
                rng.uniform(0, 2 * math.pi),
                rng.uniform(0.75, 1.3),
            )
            box, mask = shape.raster(size)
            y0, x0, y1, x1 = box
            covered = owner[y0:y1, x0:x1][mask]
            lost = np.bincount(covered[covered >= 0], minlength=len(shapes))
            after = np.asarray(visible, dtype=np.int64) - lost
            if np.any(after < 0.55 * np.asarray(full_area, dtype=np.float64)):
                continue
            _paint_shape(image, box, mask, cat, rng)
            owner[y0:y1, x0:x1][mask] = len(shapes)
            labels.map[y0:y1, x0:x1][mask] = labels.new(cat)
            shapes.append(shape)
            visible = [*after.tolist(), int(mask.sum())]
            full_area.append(visible[-1])
            break


def _segments_info(
    labels: _Labels, rng: np.random.Generator
) -> tuple[np.ndarray, list[SegmentInfo]]:
    """The uint32 id map and COCO ``segments_info`` (area, bbox [x, y, w, h]) of present labels."""
    label_map = labels.map
    n = len(labels.kinds) + 1
    counts = np.bincount(label_map.ravel(), minlength=n)
    rows_any = np.zeros((n, label_map.shape[0]), dtype=bool)
    cols_any = np.zeros((n, label_map.shape[1]), dtype=bool)
    rows_any[label_map, np.arange(label_map.shape[0])[:, None]] = True
    cols_any[label_map, np.arange(label_map.shape[1])[None, :]] = True
    ids = np.zeros(n, dtype=np.uint32)
    taken: set[int] = set()
    segments: list[SegmentInfo] = []
    for k in range(1, n):
        if counts[k] == 0:
            continue
        seg_id = int(rng.integers(1, MAX_SEGMENT_ID + 1))
        while seg_id in taken:
            seg_id = int(rng.integers(1, MAX_SEGMENT_ID + 1))
        taken.add(seg_id)
        ids[k] = seg_id
        ys, xs = np.nonzero(rows_any[k])[0], np.nonzero(cols_any[k])[0]
        cat, crowd = labels.kinds[k - 1]
        segments.append(
            SegmentInfo(
                id=seg_id,
                category_id=cat,
                iscrowd=crowd,
                area=int(counts[k]),
                bbox=[int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)],
            )
        )
    return ids[label_map], segments


# -- dataset ---------------------------------------------------------------------------------


def split_counts(num_images: int, splits: Mapping[str, float]) -> dict[str, int]:
    """Share ``num_images`` out by positive weights (largest remainder; every split gets >= 1 image)."""
    if not splits:
        raise ValueError("at least one split is needed")
    if any(w <= 0 or not math.isfinite(w) for w in splits.values()):
        raise ValueError(f"split weights must be positive numbers, got {dict(splits)}")
    if num_images < len(splits):
        raise ValueError(f"{num_images} images cannot fill {len(splits)} splits")
    total = sum(splits.values())
    exact = {name: num_images * w / total for name, w in splits.items()}
    counts = {name: int(math.floor(x)) for name, x in exact.items()}
    left = num_images - sum(counts.values())
    for name in sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)[:left]:
        counts[name] += 1
    for name in counts:  # every split gets an image, taken from the largest split
        if counts[name] == 0:
            counts[max(counts, key=counts.__getitem__)] -= 1
            counts[name] = 1
    return counts


def _info(size: int, seed: int, counts: Mapping[str, int], split: str, variant: str) -> dict[str, Any]:
    info = {
        "description": "oneshot synthetic panoptic dataset",
        "generator_version": GENERATOR_VERSION,
        "size": size,
        "seed": seed,
        "splits": dict(counts),
        "split": split,
    }
    if variant != "standard":  # standard datasets written before variants existed stay valid
        info["variant"] = variant
    return info


def generate_synthetic_dataset(
    out_dir: str | Path,
    *,
    num_images: int = 300,
    size: int = 128,
    seed: int = 0,
    splits: Mapping[str, float] | None = None,
    overwrite: bool = False,
    jpeg_quality: int = 92,
    variant: str = "standard",
) -> dict[str, SplitPaths]:
    """Write the synthetic dataset in COCO-panoptic format, one folder per split.

    Args:
        out_dir: dataset root (see the module docstring for the layout).
        num_images: images over all splits.
        size: side of the square images in pixels.
        seed: the only source of randomness; the same arguments give the same files.
        splits: split name -> weight (default ``train 0.7, nas_val 0.15, val 0.15``).
        overwrite: replace existing split folders instead of refusing.
        variant: ``standard`` or ``bench`` (see :data:`VARIANTS`).

    Returns:
        split name -> :class:`SplitPaths`.

    Raises:
        DatasetError: a split folder exists already and ``overwrite`` is false.
    """
    from PIL import Image

    _check_variant(variant)
    counts = split_counts(num_images, dict(splits or DEFAULT_SPLITS))
    root = Path(out_dir)
    for split in counts:
        if (root / split).exists() and any((root / split).iterdir()):
            if not overwrite:
                raise DatasetError(
                    f"{root / split} exists already (overwrite=True or --overwrite replaces it)"
                )
            shutil.rmtree(root / split)
    result: dict[str, SplitPaths] = {}
    image_id = 0
    for split, count in counts.items():
        paths = split_paths(root, split)
        paths.image_dir.mkdir(parents=True, exist_ok=True)
        paths.panoptic_dir.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for _ in range(count):
            image_id += 1
            sample = synthetic_sample(size, np.random.default_rng([seed, image_id]), variant)
            stem = f"{image_id:06d}"
            Image.fromarray(sample.image).save(
                paths.image_dir / f"{stem}.jpg", quality=jpeg_quality
            )
            write_panoptic_png(
                paths.panoptic_dir / f"{stem}.png", np.asarray(sample.panoptic.seg_map)
            )
            images.append(
                {"id": image_id, "file_name": f"{stem}.jpg", "width": size, "height": size}
            )
            annotations.append(
                {
                    "image_id": image_id,
                    "file_name": f"{stem}.png",
                    "segments_info": sample.panoptic.segments,
                }
            )
        data = {
            "info": _info(size, seed, counts, split, variant),
            "images": images,
            "annotations": annotations,
            "categories": [dict(c) for c in categories_of(variant)],
        }
        paths.panoptic_json.write_text(json.dumps(data), encoding="utf-8")
        result[split] = paths
    return result


def ensure_synthetic_dataset(
    out_dir: str | Path,
    *,
    num_images: int = 300,
    size: int = 128,
    seed: int = 0,
    splits: Mapping[str, float] | None = None,
    variant: str = "standard",
) -> dict[str, SplitPaths]:
    """Return the dataset under ``out_dir``, generating it unless the same one is already there."""
    counts = split_counts(num_images, dict(splits or DEFAULT_SPLITS))
    paths = {split: split_paths(out_dir, split) for split in counts}
    try:
        found = all(
            json.loads(p.panoptic_json.read_text(encoding="utf-8")).get("info")
            == _info(size, seed, counts, s, variant)
            for s, p in paths.items()
        )
    except (OSError, json.JSONDecodeError):
        found = False
    if found:
        return paths
    return generate_synthetic_dataset(
        out_dir, num_images=num_images, size=size, seed=seed, splits=splits, overwrite=True, variant=variant
    )
