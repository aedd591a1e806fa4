"""A torch Dataset over any COCO-panoptic-format data (COCO, converted ADE20K / Cityscapes, custom)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oneshot.errors import DatasetError
from oneshot_panoptic.data.panoptic_io import load_panoptic_json, read_panoptic_png
from oneshot_panoptic.data.transforms import Target
from oneshot_panoptic.structures import IGNORE_LABEL, PanopticMetadata, PanopticSegmentation

__all__ = ["CocoPanoptic"]


class CocoPanoptic(torch.utils.data.Dataset):
    """COCO-panoptic images with detection, semantic and panoptic targets.

    Args:
        image_dir: folder of the images (``images[*].file_name`` of the JSON).
        panoptic_json: COCO-panoptic JSON (``images``, ``annotations``, ``categories``).
        panoptic_dir: folder of the panoptic PNGs (``annotations[*].file_name``).
        transforms: ``(image, target) -> (image, target)``, e.g. from
            :func:`~oneshot_panoptic.data.build_transforms`.

    Each sample is ``(image, target)``:

    * ``image``: float32 ``(3, H, W)`` in [0, 1];
    * ``boxes``: float32 ``(N, 4)`` xyxy of the N non-crowd things (JSON ``bbox`` as
      ``[x, y, x + w, y + h]``), ``labels``: int64 ``(N,)`` contiguous thing labels ``1..T``
      (``metadata.thing_ids[label - 1]``), ``masks``: uint8 ``(N, H, W)``, ``area``: float32 ``(N,)``;
    * ``semantic``: int64 ``(H, W)``: 0 = any thing, ``j + 1`` = ``metadata.stuff_ids[j]``,
      255 = VOID and crowd;
    * ``panoptic``: :class:`PanopticSegmentation` with the raw int64 ``(H, W)`` id map and the
      JSON's ``segments_info`` (dataset category ids), ready for PQ;
    * ``image_id`` and ``orig_size`` (int64 ``[H, W]``).

    Construction checks the JSON and the folders (cheap); :meth:`validate` reads every file.

    Raises:
        DatasetError: missing folders or JSON, malformed JSON, an unknown category, an
            annotation without image entry.
    """

    def __init__(
        self,
        image_dir: str | Path,
        panoptic_json: str | Path,
        panoptic_dir: str | Path,
        transforms: Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]] | None = None,
    ) -> None:
        self.image_dir = Path(image_dir)
        self.panoptic_json = Path(panoptic_json)
        self.panoptic_dir = Path(panoptic_dir)
        self.transforms = transforms
        for folder, what in ((self.image_dir, "image"), (self.panoptic_dir, "panoptic PNG")):
            if not folder.is_dir():
                raise DatasetError(f"{what} folder not found: {folder}")
        data = load_panoptic_json(self.panoptic_json, require_images=True)
        if not data.get("categories"):
            raise DatasetError(f"{self.panoptic_json}: no 'categories'")
        self.metadata = PanopticMetadata.from_categories(data["categories"])
        self._categories = [dict(c) for c in data["categories"]]
        self._thing_label = {cid: i + 1 for i, cid in enumerate(self.metadata.thing_ids)}
        self._stuff_class = {cid: j + 1 for j, cid in enumerate(self.metadata.stuff_ids)}
        images = {}
        for img in data["images"]:
            if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
                raise DatasetError(
                    f"{self.panoptic_json}: an image entry lacks 'id' or 'file_name'"
                )
            images[img["id"]] = img
        self._images: list[dict[str, Any]] = []
        self._annotations: list[dict[str, Any]] = []
        for ann in data["annotations"]:
            img = images.get(ann["image_id"])
            if img is None:
                raise DatasetError(
                    f"{self.panoptic_json}: annotation {ann['file_name']} has no image entry"
                )
            for seg in ann["segments_info"]:
                if (
                    int(seg["category_id"]) not in self._thing_label
                    and int(seg["category_id"]) not in self._stuff_class
                ):
                    raise DatasetError(
                        f"{self.panoptic_json}: {ann['file_name']} segment {seg['id']} "
                        f"has unknown category_id {seg['category_id']}"
                    )
            self._images.append(img)
            self._annotations.append(ann)
        annotated = {ann["image_id"] for ann in data["annotations"]}
        #: File names of the JSON's images without annotation (not used; :meth:`validate` names them).
        self.unannotated = [str(img["file_name"]) for iid, img in images.items() if iid not in annotated]

    def __len__(self) -> int:
        return len(self._annotations)

    @property
    def categories(self) -> list[dict[str, Any]]:
        """The JSON's categories in file order (pass them to ``PanopticQuality`` for averages
        summed in panopticapi's order; ``metadata.categories`` is sorted by id)."""
        return [dict(c) for c in self._categories]

    def image_path(self, index: int) -> Path:
        return self.image_dir / self._images[index]["file_name"]

    def panoptic_path(self, index: int) -> Path:
        return self.panoptic_dir / self._annotations[index]["file_name"]

    # -- reading ---------------------------------------------------------------------------

    def _read_image(self, index: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        path = self.image_path(index)
        try:
            with Image.open(path) as im:
                return np.array(im.convert("RGB"))
        except FileNotFoundError:
            raise DatasetError(f"image not found: {path}") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DatasetError(f"{path}: cannot read image ({exc})") from None

    def _check_ids(self, index: int, present: np.ndarray) -> None:
        """Ids of the PNG (sorted, unique) against the JSON's segments; raise naming the PNG."""
        listed = {int(s["id"]) for s in self._annotations[index]["segments_info"]}
        extra = sorted(set(present.tolist()) - listed - {0})
        if extra:
            raise DatasetError(
                f"{self.panoptic_path(index)}: segment id {extra[0]} is in the PNG but not in the JSON"
            )
        missing = sorted(listed - set(present.tolist()))
        if missing:
            raise DatasetError(
                f"{self.panoptic_path(index)}: segment id {missing[0]} is in the JSON but not in the PNG"
            )

    def load_panoptic(self, index: int) -> PanopticSegmentation:
        """The raw ground truth of sample ``index``: int64 ``(H, W)`` id map and ``segments_info``."""
        ids = read_panoptic_png(self.panoptic_path(index))
        self._check_ids(index, np.unique(ids))
        segments = [dict(s) for s in self._annotations[index]["segments_info"]]
        return PanopticSegmentation(torch.from_numpy(ids.astype(np.int64)), segments)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        rgb = self._read_image(index)
        ids = read_panoptic_png(self.panoptic_path(index))
        if ids.shape != rgb.shape[:2]:
            raise DatasetError(
                f"{self.panoptic_path(index)}: PNG is {ids.shape[1]}x{ids.shape[0]}, "
                f"image {self.image_path(index).name} is {rgb.shape[1]}x{rgb.shape[0]}"
            )
        present, inverse = np.unique(ids, return_inverse=True)
        self._check_ids(index, present)
        inverse = torch.from_numpy(inverse.reshape(ids.shape).astype(np.int64))
        slot = {int(v): k for k, v in enumerate(present.tolist())}

        semantic_of_slot = torch.full((len(present),), IGNORE_LABEL, dtype=torch.int64)
        thing_slots, labels, boxes, areas = [], [], [], []
        segments = [dict(s) for s in self._annotations[index]["segments_info"]]
        for seg in segments:
            cat, k = int(seg["category_id"]), slot[int(seg["id"])]
            if int(seg.get("iscrowd", 0)) == 1:
                continue  # crowd stays 255 in the semantic map and has no instance target
            if cat in self._stuff_class:
                semantic_of_slot[k] = self._stuff_class[cat]
                continue
            semantic_of_slot[k] = 0
            thing_slots.append(k)
            labels.append(self._thing_label[cat])
            areas.append(float(seg.get("area", -1)))
            boxes.append([float(v) for v in seg["bbox"]] if "bbox" in seg else None)
        semantic = semantic_of_slot[inverse]
        slots_t = torch.as_tensor(thing_slots, dtype=torch.int64)
        masks = (inverse.unsqueeze(0) == slots_t.view(-1, 1, 1)).to(torch.uint8)
        pixel_areas = masks.flatten(1).sum(dim=1)
        boxes_xyxy = torch.zeros((len(thing_slots), 4), dtype=torch.float32)
        for i, box in enumerate(boxes):
            if box is None:
                ys, xs = torch.nonzero(masks[i], as_tuple=True)
                box = [
                    float(xs.min()),
                    float(ys.min()),
                    float(xs.max() - xs.min() + 1),
                    float(ys.max() - ys.min() + 1),
                ]
            x, y, w, h = box
            boxes_xyxy[i] = torch.tensor([x, y, x + w, y + h])
        area = torch.tensor(
            [a if a >= 0 else float(p) for a, p in zip(areas, pixel_areas.tolist(), strict=True)]
        )

        image = (
            torch.from_numpy(np.ascontiguousarray(rgb))
            .permute(2, 0, 1)
            .to(torch.float32)
            .div_(255.0)
        )
        target: Target = {
            "boxes": boxes_xyxy,
            "labels": torch.as_tensor(labels, dtype=torch.int64),
            "masks": masks,
            "area": area.to(torch.float32).reshape(-1),
            "semantic": semantic,
            "panoptic": PanopticSegmentation(torch.from_numpy(ids.astype(np.int64)), segments),
            "image_id": self._annotations[index]["image_id"],
            "orig_size": torch.tensor([ids.shape[0], ids.shape[1]], dtype=torch.int64),
        }
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    # -- validation ------------------------------------------------------------------------

    def validate(self, *, max_images: int | None = None, progress: bool = False) -> int:
        """Decode every image and PNG in full; raise on the first broken file.

        Checks, per sample in order: the image exists and decodes completely (a truncated file
        fails), its size equals the JSON's ``width``/``height`` (when given) and the PNG's; the
        PNG exists and decodes; its ids equal the JSON's segment ids (0 aside). Categories were
        checked at construction. A dataset without annotated images is an error; images of the
        JSON without annotation are named in a warning (they are not used).

        Args:
            max_images: check only the first ones.
            progress: show a progress bar (a log line every few images off a terminal).

        Returns:
            The number of samples checked.

        Raises:
            DatasetError: naming the first broken file and what is wrong with it.
        """
        import logging

        from PIL import Image, UnidentifiedImageError

        from oneshot.progress import progress_bar

        if len(self) == 0:
            raise DatasetError(f"{self.panoptic_json}: no annotated images")
        if self.unannotated:
            shown = ", ".join(self.unannotated[:5]) + (", ..." if len(self.unannotated) > 5 else "")
            logging.getLogger("oneshot").warning(
                "%s: %d image(s) have no annotation and are not used: %s", self.panoptic_json, len(self.unannotated), shown
            )
        n = len(self) if max_images is None else min(len(self), max_images)
        bar = progress_bar(total=n, desc=f"validate {self.panoptic_json.name}", unit="image") if progress else None
        for index in range(n):
            path = self.image_path(index)
            try:
                with Image.open(path) as im:
                    width, height = im.size
                    im.load()  # a full decode: a truncated or corrupt file fails here
            except FileNotFoundError:
                raise DatasetError(f"image not found: {path}") from None
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                raise DatasetError(f"{path}: cannot read image ({exc})") from None
            info = self._images[index]
            if ("width" in info and int(info["width"]) != width) or (
                "height" in info and int(info["height"]) != height
            ):
                raise DatasetError(
                    f"{path}: image is {width}x{height}, the JSON says {info.get('width')}x{info.get('height')}"
                )
            ids = read_panoptic_png(self.panoptic_path(index))
            if ids.shape != (height, width):
                raise DatasetError(
                    f"{self.panoptic_path(index)}: PNG is {ids.shape[1]}x{ids.shape[0]}, image is {width}x{height}"
                )
            self._check_ids(index, np.unique(ids))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return n
