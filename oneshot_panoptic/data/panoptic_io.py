"""Reading and writing COCO-panoptic files: RGB-encoded PNGs and the annotation JSON.

A panoptic PNG stores one segment id per pixel as ``id = R + 256 * G + 256**2 * B``; ``0`` is VOID
unless a segment with id 0 is listed. The JSON holds ``images``, ``annotations`` (one per image,
with ``file_name`` of the PNG and ``segments_info``) and ``categories`` (with ``isthing``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from oneshot.errors import DatasetError

__all__ = [
    "MAX_SEGMENT_ID",
    "rgb2id",
    "id2rgb",
    "read_panoptic_png",
    "write_panoptic_png",
    "load_panoptic_json",
]

MAX_SEGMENT_ID = 256**3 - 1


def rgb2id(rgb: np.ndarray) -> np.ndarray:
    """Decode an ``(H, W, 3)`` uint8 RGB array into an ``(H, W)`` uint32 segment-id map."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise DatasetError(f"panoptic PNG must be RGB, got an array of shape {rgb.shape}")
    ids = rgb[..., 2].astype(np.uint32)
    ids <<= 8
    ids |= rgb[..., 1]
    ids <<= 8
    ids |= rgb[..., 0]
    return ids


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """Encode an ``(H, W)`` integer id map (ids in ``[0, 2**24)``) as an ``(H, W, 3)`` uint8 array."""
    ids = np.asarray(ids)
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) > MAX_SEGMENT_ID):
        raise ValueError(f"segment ids must lie in [0, {MAX_SEGMENT_ID}] to be stored in a PNG")
    ids = ids.astype(np.uint32, copy=False)
    rgb = np.empty((*ids.shape, 3), dtype=np.uint8)
    rgb[..., 0] = ids & 255
    rgb[..., 1] = (ids >> 8) & 255
    rgb[..., 2] = (ids >> 16) & 255
    return rgb


def read_panoptic_png(path: str | Path) -> np.ndarray:
    """Read a COCO-panoptic PNG into an ``(H, W)`` uint32 segment-id map.

    Raises:
        DatasetError: the file is missing, unreadable or not a colour image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.mode not in ("RGB", "RGBA"):
                raise DatasetError(f"{path}: panoptic PNG must be RGB, not mode {im.mode}")
            rgb = np.asarray(im)
    except FileNotFoundError:
        raise DatasetError(f"panoptic PNG not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"{path}: cannot read panoptic PNG ({exc})") from None
    return rgb2id(rgb)


def write_panoptic_png(path: str | Path, ids: np.ndarray) -> None:
    """Write an ``(H, W)`` segment-id map as an RGB-encoded PNG."""
    from PIL import Image

    Image.fromarray(id2rgb(ids), mode="RGB").save(Path(path), format="PNG")


def _require(cond: bool, path: Path, what: str) -> None:
    if not cond:
        raise DatasetError(f"{path}: {what}")


def load_panoptic_json(path: str | Path, *, require_images: bool = False) -> dict[str, Any]:
    """Load a COCO-panoptic JSON file and check its structure.

    Checks that ``annotations`` and ``categories`` exist, that every annotation has ``image_id``,
    ``file_name`` and ``segments_info`` whose entries have ``id`` and ``category_id``, and that
    category ids are unique. With ``require_images`` the ``images`` list must exist too.

    Raises:
        DatasetError: naming the file and the first problem found.
    """
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"panoptic JSON not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    _require(isinstance(data, dict), path, "top level must be a JSON object")
    _require(isinstance(data.get("annotations"), list), path, "missing 'annotations' list")
    if require_images:
        _require(isinstance(data.get("images"), list), path, "missing 'images' list")
    categories = data.get("categories")
    if categories is not None:
        _require(isinstance(categories, list), path, "'categories' must be a list")
        seen: set[int] = set()
        for cat in categories:
            _require(isinstance(cat, dict) and "id" in cat, path, "a category has no 'id'")
            _require(int(cat["id"]) not in seen, path, f"duplicate category id {cat['id']}")
            seen.add(int(cat["id"]))
    for ann in data["annotations"]:
        _require(isinstance(ann, dict), path, "an annotation is not a JSON object")
        for key in ("image_id", "file_name", "segments_info"):
            _require(
                key in ann, path, f"an annotation has no '{key}' ({ann.get('file_name', '?')})"
            )
        for seg in ann["segments_info"]:
            _require(
                isinstance(seg, dict) and "id" in seg and "category_id" in seg,
                path,
                f"image {ann['image_id']}: a segment lacks 'id' or 'category_id'",
            )
    return data
