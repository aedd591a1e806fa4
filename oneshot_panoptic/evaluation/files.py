"""PQ of COCO-panoptic prediction files (PNG folders + JSON), as panopticapi's ``pq_compute``:
read each image pair and feed it to :meth:`PanopticQuality.process`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from oneshot.errors import DatasetError
from oneshot_panoptic.data.panoptic_io import load_panoptic_json, read_panoptic_png
from oneshot_panoptic.evaluation.pq import PanopticQuality
from oneshot_panoptic.structures import PanopticSegmentation

__all__ = ["evaluate_panoptic_files"]

Annotation = Mapping[str, Any]


def _score_pairs(
    pairs: Sequence[tuple[Annotation, Annotation]],
    gt_folder: str,
    pred_folder: str,
    categories: list[dict[str, Any]],
) -> PanopticQuality:
    """An evaluator that processed the (ground-truth, prediction) annotation pairs in order."""
    evaluator = PanopticQuality(categories)
    for gt_ann, pred_ann in pairs:
        image_id = gt_ann["image_id"]
        gt_map = read_panoptic_png(Path(gt_folder) / gt_ann["file_name"])
        pred_map = read_panoptic_png(Path(pred_folder) / pred_ann["file_name"])
        if pred_map.shape != gt_map.shape:
            raise DatasetError(
                f"image {image_id}: prediction PNG {pred_ann['file_name']} is {pred_map.shape[1]}x{pred_map.shape[0]}, "
                f"ground truth is {gt_map.shape[1]}x{gt_map.shape[0]}"
            )
        evaluator.process(
            PanopticSegmentation(gt_map, gt_ann["segments_info"]),
            PanopticSegmentation(pred_map, pred_ann["segments_info"]),
            image_id=image_id,
        )
    return evaluator


def evaluate_panoptic_files(
    gt_json: str | Path,
    gt_folder: str | Path,
    pred_json: str | Path,
    pred_folder: str | Path,
    *,
    workers: int = 1,
) -> dict[str, Any]:
    """PQ of COCO-panoptic prediction files against ground-truth files (panopticapi's ``pq_compute``).

    Categories come from the ground-truth JSON. Images are scored in the ground-truth JSON's order
    and summed in that order (:meth:`PanopticQuality.merge` keeps it), so the numbers do not
    depend on ``workers`` (processes).

    Returns:
        The same dict as :meth:`PanopticQuality.evaluate`.

    Raises:
        DatasetError: a missing file or folder, an image without prediction, a PNG id absent from
            its JSON or the reverse, an unknown category id, or sizes that differ.
    """
    gt_data = load_panoptic_json(gt_json)
    pred_data = load_panoptic_json(pred_json)
    if not gt_data.get("categories"):
        raise DatasetError(f"{gt_json}: ground-truth JSON has no 'categories'")
    for folder, what in ((gt_folder, "ground-truth"), (pred_folder, "prediction")):
        if not Path(folder).is_dir():
            raise DatasetError(f"{what} folder not found: {folder}")
    pred_by_image = {ann["image_id"]: ann for ann in pred_data["annotations"]}
    pairs = []
    for gt_ann in gt_data["annotations"]:
        pred_ann = pred_by_image.get(gt_ann["image_id"])
        if pred_ann is None:
            raise DatasetError(f"no prediction for the image with id {gt_ann['image_id']} in {pred_json}")
        pairs.append((gt_ann, pred_ann))

    categories = gt_data["categories"]
    if workers <= 1 or len(pairs) < 2:
        return _score_pairs(pairs, str(gt_folder), str(pred_folder), categories).evaluate()
    n_chunks = min(len(pairs), workers * 4)
    size = math.ceil(len(pairs) / n_chunks)
    chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
    evaluator = PanopticQuality(categories)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(
            _score_pairs,
            chunks,
            [str(gt_folder)] * len(chunks),
            [str(pred_folder)] * len(chunks),
            [categories] * len(chunks),
        )
        for part in parts:  # in chunk order
            evaluator.merge(part)
    return evaluator.evaluate()
