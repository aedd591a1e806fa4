"""Panoptic quality (PQ = SQ x RQ), computed exactly as panopticapi's ``pq_compute``.

Rules (cocodataset/panopticapi ``evaluation.py``), all reproduced here:

* ids are ``R + 256 G + 256**2 B`` in PNGs; ``0`` is VOID unless a segment with id 0 is listed
  (a listed id-0 prediction is a real segment; VOID overlap is always that of ground-truth id 0);
* a ground-truth segment and a predicted segment match when they have the same category, the
  ground truth is not crowd and ``IoU > 0.5`` (strict), with
  ``union = area(pred) + area(gt) - intersection - overlap(pred, VOID)``; the ground-truth area is
  the ``area`` of its JSON entry when given (as panopticapi does), its pixel count otherwise;
* unmatched non-crowd ground truth counts as FN; an unmatched prediction is ignored when
  ``(overlap with VOID + overlap with the crowd segment of its category) / area > 0.5``,
  else it is an FP;
* per category ``PQ = sum IoU / (TP + FP/2 + FN/2)``, ``SQ = sum IoU / TP``, ``RQ = TP / (...)``;
  categories without TP, FP and FN are left out of the averages; All / Things / Stuff split by the
  categories' ``isthing``.

Each image costs one joint histogram (:mod:`oneshot_panoptic.evaluation.counting`). Matched IoUs
are summed in panopticapi's order (image by image, also across :meth:`PanopticQuality.merge`), so
the numbers are bit-identical to its single-process run. Ground truth can be prepared once per
split (:func:`~oneshot_panoptic.evaluation.counting.prepare_ground_truth`) and scored against
many candidates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from oneshot.errors import DatasetError
from oneshot_panoptic.evaluation.counting import (
    ImageStats,
    PreparedGroundTruth,
    as_numpy_map,
    confusion_numpy,
    confusion_torch,
    match_image,
    prepare_ground_truth,
    segment_categories,
)
from oneshot_panoptic.structures import PanopticMetadata, PanopticSegmentation

__all__ = ["PanopticQuality", "format_pq_table", "results_to_json"]


class PanopticQuality:
    """Panoptic-quality evaluator with ``reset / process / evaluate`` (numbers equal panopticapi's).

    Args:
        categories: COCO category dicts (``id``, ``isthing``; order as in the ground-truth JSON,
            which fixes the summation order of the averages) or a :class:`PanopticMetadata`.
        backend: how predicted maps are counted. ``"auto"``: torch tensors on an accelerator are
            counted there (``torch.bincount``), numpy arrays and CPU tensors with numpy (faster
            on a CPU); ``"torch"``: every tensor with torch on its device; ``"numpy"``: always
            numpy (tensors are copied to the CPU). All give the same numbers.

    Example::

        pq = PanopticQuality(metadata)
        prepared = {i: prepare_ground_truth(gt, image_id=i) for i, gt in gts.items()}  # once
        pq.reset()
        for image_id, pred in predictions.items():  # each candidate
            pq.process(prepared[image_id], pred)
        results = pq.evaluate()  # {"All": {"pq", "sq", "rq", "n"}, "Things", "Stuff", "per_class"}
    """

    def __init__(
        self, categories: Sequence[Mapping[str, Any]] | PanopticMetadata, *, backend: str = "auto"
    ) -> None:
        if backend not in ("auto", "torch", "numpy"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'numpy', got {backend!r}")
        self.backend = backend
        cats = categories.categories if isinstance(categories, PanopticMetadata) else categories
        self._categories = [dict(c) for c in cats]
        ids = [int(c["id"]) for c in self._categories]
        if len(set(ids)) != len(ids):
            raise DatasetError("duplicate category ids in the categories")
        self._cat_ids = np.array(ids, dtype=np.int64)
        self._cat_order = np.argsort(self._cat_ids, kind="stable")
        self._cat_sorted = self._cat_ids[self._cat_order]
        self._isthing = [int(c.get("isthing", 0)) == 1 for c in self._categories]
        self.reset()

    @property
    def categories(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self._categories]

    def reset(self) -> None:
        """Clear the accumulated statistics."""
        n = len(self._categories)
        # Matches are kept per image (category index, IoU) and summed at the end, in order, so
        # that merged evaluators sum exactly as one that saw every image.
        self._matches: list[tuple[np.ndarray, np.ndarray]] = []
        self._tp = np.zeros(n, dtype=np.int64)
        self._fp = np.zeros(n, dtype=np.int64)
        self._fn = np.zeros(n, dtype=np.int64)
        self.num_images = 0

    # -- per image -------------------------------------------------------------------------

    def _index(self, category_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self._cat_sorted, category_ids)
        pos = np.minimum(pos, len(self._cat_sorted) - 1)
        return self._cat_order[pos]

    def _check_categories(
        self, image_id: Any, ids: np.ndarray, categories: np.ndarray, what: str
    ) -> None:
        if len(self._cat_sorted) == 0:
            known = np.zeros(len(categories), dtype=bool)
        else:
            pos = np.minimum(np.searchsorted(self._cat_sorted, categories), len(self._cat_sorted) - 1)
            known = self._cat_sorted[pos] == categories
        if not known.all():
            k = int(np.nonzero(~known)[0][0])
            raise DatasetError(
                f"image {image_id}: {what} segment {int(ids[k])} has unknown category_id {int(categories[k])}"
            )

    def process(
        self,
        gt: PanopticSegmentation | PreparedGroundTruth,
        pred: PanopticSegmentation,
        *,
        image_id: Any = None,
    ) -> None:
        """Add one image.

        Args:
            gt: the ground truth, raw or prepared by :func:`prepare_ground_truth` (reuse it across
                candidates).
            pred: ``(H, W)`` segment-id map (numpy, or torch on any device: then the counting runs
                there) and its segments (``id``, ``category_id``).
            image_id: for error messages when ``gt`` is raw.

        Raises:
            DatasetError: sizes differ, a predicted id is in the map but not in the segments or the
                reverse, or a category id is unknown.
        """
        if not isinstance(gt, PreparedGroundTruth):
            gt = prepare_ground_truth(gt, image_id=image_id, strict=True)
        image_id = gt.image_id if gt.image_id is not None else image_id
        self._check_categories(image_id, gt.ids, gt.category_ids, "ground-truth")
        if tuple(pred.shape) != gt.shape:
            raise DatasetError(
                f"image {image_id}: prediction size {tuple(pred.shape)} differs from ground truth {gt.shape}"
            )
        pred_ids, pred_cats = segment_categories(pred.segments, image_id, "predicted")
        self._check_categories(image_id, pred_ids, pred_cats, "predicted")
        seg_map = pred.seg_map
        if isinstance(seg_map, torch.Tensor) and (
            self.backend == "torch" or (self.backend == "auto" and seg_map.device.type != "cpu")
        ):
            conf = confusion_torch(gt, seg_map, pred_ids, image_id)
        else:
            conf = confusion_numpy(gt, as_numpy_map(seg_map), pred_ids, image_id)
        self._add(match_image(gt, pred_ids, pred_cats, conf))

    def _add(self, stats: ImageStats) -> None:
        n = len(self._categories)
        idx = self._index(stats.match_categories)
        self._matches.append((idx, stats.match_ious))
        self._tp += np.bincount(idx, minlength=n)
        self._fn += np.bincount(self._index(stats.fn_categories), minlength=n)
        self._fp += np.bincount(self._index(stats.fp_categories), minlength=n)
        self.num_images += 1

    # -- results ---------------------------------------------------------------------------

    def merge(self, other: PanopticQuality) -> None:
        """Add another evaluator's images (e.g. from another process) after this one's; the
        result equals one evaluator that processed both in that order."""
        if [c["id"] for c in other._categories] != [c["id"] for c in self._categories]:
            raise ValueError("cannot merge evaluators with different categories")
        self._matches.extend(other._matches)
        self._tp += other._tp
        self._fp += other._fp
        self._fn += other._fn
        self.num_images += other.num_images

    def _iou_sums(self) -> np.ndarray:
        iou = np.zeros(len(self._categories), dtype=np.float64)
        for idx, ious in self._matches:
            np.add.at(iou, idx, ious)  # unbuffered, in order: the same sums as panopticapi
        return iou

    def stats(self) -> dict[int, dict[str, float | int]]:
        """Per category id: accumulated ``iou`` sum, ``tp``, ``fp``, ``fn``."""
        iou = self._iou_sums()
        return {
            int(cid): {
                "iou": float(iou[i]),
                "tp": int(self._tp[i]),
                "fp": int(self._fp[i]),
                "fn": int(self._fn[i]),
            }
            for i, cid in enumerate(self._cat_ids)
        }

    def evaluate(self) -> dict[str, Any]:
        """Results in panopticapi's form.

        Returns:
            ``{"All" | "Things" | "Stuff": {"pq", "sq", "rq", "n"}, "per_class": {category_id:
            {"pq", "sq", "rq"}}}``; values are fractions in [0, 1]. A group with no scored
            category gets zeros and ``n = 0`` (panopticapi divides by zero there).
        """
        iou_sums = self._iou_sums()
        results: dict[str, Any] = {}
        for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
            pq, sq, rq, n = 0.0, 0.0, 0.0, 0
            per_class: dict[int, dict[str, float]] = {}
            for i, cat in enumerate(self._categories):
                if isthing is not None and self._isthing[i] != isthing:
                    continue
                iou, tp, fp, fn = float(iou_sums[i]), int(self._tp[i]), int(self._fp[i]), int(self._fn[i])
                if tp + fp + fn == 0:
                    per_class[int(cat["id"])] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
                    continue
                n += 1
                pq_class = iou / (tp + 0.5 * fp + 0.5 * fn)
                sq_class = iou / tp if tp != 0 else 0.0
                rq_class = tp / (tp + 0.5 * fp + 0.5 * fn)
                per_class[int(cat["id"])] = {"pq": pq_class, "sq": sq_class, "rq": rq_class}
                pq += pq_class
                sq += sq_class
                rq += rq_class
            results[name] = (
                {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}
                if n
                else {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}
            )
            if name == "All":
                results["per_class"] = per_class
        return results


def format_pq_table(results: Mapping[str, Any]) -> str:
    """panopticapi's printed table: All / Things / Stuff rows with PQ SQ RQ (in %) and n."""
    lines = [
        "{:10s}| {:>5s}  {:>5s}  {:>5s} {:>5s}".format("", "PQ", "SQ", "RQ", "N"),
        "-" * (10 + 7 * 4),
    ]
    for name in ("All", "Things", "Stuff"):
        r = results[name]
        lines.append(
            "{:10s}| {:5.1f}  {:5.1f}  {:5.1f} {:5d}".format(
                name, 100 * r["pq"], 100 * r["sq"], 100 * r["rq"], r["n"]
            )
        )
    return "\n".join(lines)


def results_to_json(results: Mapping[str, Any]) -> str:
    """JSON text of :meth:`PanopticQuality.evaluate` results (category ids become string keys)."""
    return json.dumps(results, indent=2)
