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

Each image costs one ``bincount`` over combined (ground-truth slot, predicted slot) indices, where
segment ids are first mapped to small slots through a reusable lookup table. Matches are summed in
panopticapi's order, so the numbers are bit-identical to its single-process run. Ground truth can
be prepared once per split (:func:`prepare_ground_truth`) and scored against many candidates.
Predictions given as torch tensors on an accelerator are counted on their device
(``torch.bincount``); only the small per-image confusion matrix comes back to the CPU.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oneshot.errors import DatasetError
from oneshot_panoptic.data.panoptic_io import MAX_SEGMENT_ID, load_panoptic_json, read_panoptic_png
from oneshot_panoptic.structures import PanopticMetadata, PanopticSegmentation

__all__ = [
    "PanopticQuality",
    "PreparedGroundTruth",
    "prepare_ground_truth",
    "evaluate_panoptic_files",
    "format_pq_table",
    "results_to_json",
]

# Slot layout of a segment-id map (ground truth and prediction alike):
#   0 = an id that is not listed in segments_info (and is not 0),
#   1 = id 0 when it is not listed (VOID),
#   2 + k = the k-th listed id, listed ids sorted ascending.
_UNLISTED = 0
_VOID = 1
_FIRST = 2
_LUT_MAX_ID = 1 << 24  # ids up to this size are mapped through a lookup table


class _SlotMapper:
    """Maps segment ids to slots; owns a reusable lookup table so each image costs one gather."""

    def __init__(self) -> None:
        self._lut = np.zeros(0, dtype=np.uint16)

    def __call__(
        self,
        flat_ids: np.ndarray,
        sorted_ids: np.ndarray,
        max_id: int | None = None,
        *,
        context: str = "",
    ) -> np.ndarray:
        """Slots of ``flat_ids`` (any integer dtype, shape ``(N,)``); result uint16 or intp.

        ``max_id`` is a known bound of the ids (else computed); ``context`` prefixes errors.
        """
        k = len(sorted_ids)
        if flat_ids.size == 0:
            return np.zeros(0, dtype=np.uint16)
        if max_id is None:
            if np.issubdtype(flat_ids.dtype, np.signedinteger) and int(flat_ids.min()) < 0:
                raise DatasetError(f"{context}negative segment id {int(flat_ids.min())}")
            max_id = int(flat_ids.max())
        top = max(max_id, int(sorted_ids[-1]) if k else 0)
        if top < _LUT_MAX_ID and k + _FIRST < (1 << 16):
            return self._gather(flat_ids, sorted_ids, top)
        if k == 0:
            return (flat_ids == 0).astype(np.intp)
        pos = np.searchsorted(sorted_ids, flat_ids)
        np.minimum(pos, k - 1, out=pos)
        found = sorted_ids[pos] == flat_ids
        return np.where(found, pos + _FIRST, (flat_ids == 0).astype(np.intp))

    def _gather(self, flat_ids: np.ndarray, sorted_ids: np.ndarray, top: int) -> np.ndarray:
        if self._lut.size <= top:
            self._lut = np.zeros(top + 1, dtype=np.uint16)
        lut = self._lut
        lut[0] = _VOID
        lut[sorted_ids] = np.arange(_FIRST, _FIRST + len(sorted_ids), dtype=np.uint16)
        try:
            return lut.take(flat_ids)
        finally:
            lut[sorted_ids] = _UNLISTED
            lut[0] = _UNLISTED


def _segments_by_id(
    segments: Iterable[Mapping[str, Any]], image_id: Any, what: str
) -> dict[int, Mapping[str, Any]]:
    """``{id: segment}`` keeping the last entry of a repeated id, as panopticapi's dict does."""
    by_id: dict[int, Mapping[str, Any]] = {}
    for seg in segments:
        try:
            seg_id = int(seg["id"])
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"image {image_id}: a {what} segment has no integer 'id'") from None
        if seg_id < 0:
            raise DatasetError(f"image {image_id}: {what} segment id {seg_id} is negative")
        by_id[seg_id] = seg
    return by_id


def _category_of(seg: Mapping[str, Any], image_id: Any, what: str) -> int:
    try:
        return int(seg["category_id"])
    except (KeyError, TypeError, ValueError):
        raise DatasetError(
            f"image {image_id}: {what} segment {seg.get('id')} has no integer 'category_id'"
        ) from None


def _as_numpy_map(seg_map: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(seg_map, torch.Tensor):
        seg_map = seg_map.detach().cpu().numpy()
    arr = np.asarray(seg_map)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise DatasetError(
            f"a segment-id map must be a 2-D integer array, got {arr.dtype} of shape {arr.shape}"
        )
    return arr


class PreparedGroundTruth:
    """The ground truth of one image, prepared once and scored against many predictions.

    Attributes:
        image_id: the image's id (used in error messages), or ``None``.
        shape: ``(H, W)``.
        slots: ``(H * W,)`` per-pixel slot (0 unlisted id, 1 VOID, ``2 + k`` the k-th listed id).
        ids: ``(K,)`` listed segment ids, ascending.
        category_ids: ``(K,)`` their dataset category ids.
        iscrowd: ``(K,)`` bool.
        areas: ``(K,)`` float64, the JSON ``area`` when given, else the pixel count.
        void_slot: the slot holding the pixels of id 0.
        crowd_slot_by_category: category id -> slot of its crowd segment (the last listed one).
    """

    __slots__ = (
        "image_id",
        "shape",
        "slots",
        "ids",
        "category_ids",
        "iscrowd",
        "areas",
        "void_slot",
        "crowd_slot_by_category",
        "_device_slots",
    )

    def __init__(
        self,
        *,
        image_id: Any,
        shape: tuple[int, int],
        slots: np.ndarray,
        ids: np.ndarray,
        category_ids: np.ndarray,
        iscrowd: np.ndarray,
        areas: np.ndarray,
        void_slot: int,
        crowd_slot_by_category: dict[int, int],
    ) -> None:
        self.image_id = image_id
        self.shape = shape
        self.slots = slots
        self.ids = ids
        self.category_ids = category_ids
        self.iscrowd = iscrowd
        self.areas = areas
        self.void_slot = void_slot
        self.crowd_slot_by_category = crowd_slot_by_category
        self._device_slots: dict[torch.device, torch.Tensor] = {}

    @property
    def num_slots(self) -> int:
        return len(self.ids) + _FIRST

    def slots_on(self, device: torch.device) -> torch.Tensor:
        """The ``(H * W,)`` slot map as a tensor on ``device`` (copied once, then cached)."""
        device = torch.device(device)
        cached = self._device_slots.get(device)
        if cached is None:
            cached = torch.from_numpy(self.slots).to(device)
            self._device_slots[device] = cached
        return cached


def prepare_ground_truth(
    gt: PanopticSegmentation, *, image_id: Any = None, strict: bool = True
) -> PreparedGroundTruth:
    """Prepare one image's ground truth for :class:`PanopticQuality` (do it once per split).

    Args:
        gt: ``(H, W)`` segment-id map (numpy or torch, any device) and its ``segments``
            (``id``, ``category_id``, ``iscrowd``, optional ``area``).
        image_id: shown in error messages.
        strict: raise when the map holds a non-zero id that is not listed, or a listed id has no
            pixel. panopticapi silently ignores both in ground truth; pass ``False`` to do the same.

    Returns:
        A :class:`PreparedGroundTruth` holding an ``(H * W,)`` uint8 (int32 beyond 254 segments)
        slot map; scoring on a device caches one copy of it there.

    Raises:
        DatasetError: malformed segments, or (``strict``) ids inconsistent with the map.
    """
    return _prepare(gt, image_id=image_id, strict=strict, mapper=_SlotMapper(), max_id=None)


def _prepare(
    gt: PanopticSegmentation,
    *,
    image_id: Any,
    strict: bool,
    mapper: _SlotMapper,
    max_id: int | None,
) -> PreparedGroundTruth:
    seg_map = _as_numpy_map(gt.seg_map)
    by_id = _segments_by_id(gt.segments, image_id, "ground-truth")
    ids = np.array(sorted(by_id), dtype=np.int64)
    flat = seg_map.reshape(-1)
    slots = mapper(flat, ids, max_id, context=f"image {image_id}: ground truth has a ")
    counts = np.bincount(slots, minlength=len(ids) + _FIRST)
    if strict:
        if counts[_UNLISTED]:
            listed = set(by_id) | {0}
            extra = sorted(int(i) for i in np.unique(flat) if int(i) not in listed)
            raise DatasetError(
                f"image {image_id}: ground-truth segment id {extra[0]} is in the PNG but not in segments_info"
            )
        absent = [int(i) for i, c in zip(ids, counts[_FIRST:], strict=True) if c == 0]
        if absent:
            raise DatasetError(
                f"image {image_id}: ground-truth segment ids {absent} are in segments_info but not in the PNG"
            )
    category_ids = np.array(
        [_category_of(by_id[int(i)], image_id, "ground-truth") for i in ids], dtype=np.int64
    )
    iscrowd = np.array([int(by_id[int(i)].get("iscrowd", 0)) == 1 for i in ids], dtype=bool)
    areas = np.array(
        [
            float(by_id[int(i)]["area"]) if "area" in by_id[int(i)] else float(c)
            for i, c in zip(ids, counts[_FIRST:], strict=True)
        ],
        dtype=np.float64,
    )
    slot_of = {int(i): k + _FIRST for k, i in enumerate(ids)}
    crowd: dict[int, int] = {}
    for seg_id, seg in by_id.items():  # insertion order, last crowd segment of a category wins
        if int(seg.get("iscrowd", 0)) == 1:
            crowd[_category_of(seg, image_id, "ground-truth")] = slot_of[seg_id]
    slot_dtype = np.uint8 if len(ids) + _FIRST <= 256 else np.int32
    return PreparedGroundTruth(
        image_id=image_id,
        shape=(int(seg_map.shape[0]), int(seg_map.shape[1])),
        slots=slots.astype(slot_dtype),
        ids=ids,
        category_ids=category_ids,
        iscrowd=iscrowd,
        areas=areas,
        void_slot=slot_of.get(0, _VOID),
        crowd_slot_by_category=crowd,
    )


@dataclass(frozen=True)
class _ImageStats:
    """What one image adds to the totals; category ids, matches in panopticapi's order."""

    match_categories: np.ndarray
    match_ious: np.ndarray
    fn_categories: np.ndarray
    fp_categories: np.ndarray


def _match(
    gt: PreparedGroundTruth,
    pred_ids: np.ndarray,
    pred_categories: np.ndarray,
    conf: np.ndarray,
) -> _ImageStats:
    """panopticapi's matching on a ``(Kg + 2, Kp + 2)`` confusion matrix of slots."""
    inter = conf[_FIRST:, _FIRST:]
    pred_area = conf[:, _FIRST:].sum(axis=0)
    void = conf[gt.void_slot, _FIRST:]
    candidate = (
        (inter > 0) & (gt.category_ids[:, None] == pred_categories[None, :]) & ~gt.iscrowd[:, None]
    )
    rows, cols = np.nonzero(candidate)  # row-major: by gt id, then pred id, as panopticapi iterates
    union = pred_area[cols] + gt.areas[rows] - inter[rows, cols] - void[cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        ious = inter[rows, cols] / union
    hit = ious > 0.5
    rows, cols, ious = rows[hit], cols[hit], ious[hit]

    gt_matched = np.zeros(len(gt.ids), dtype=bool)
    gt_matched[rows] = True
    pred_matched = np.zeros(len(pred_ids), dtype=bool)
    pred_matched[cols] = True

    fn = gt.category_ids[~gt_matched & ~gt.iscrowd]

    crowd_rows = np.array(
        [gt.crowd_slot_by_category.get(int(c), -1) for c in pred_categories], dtype=np.intp
    )
    ignored_px = void.copy()
    has_crowd = crowd_rows >= 0
    if has_crowd.any():
        cols_with_crowd = np.nonzero(has_crowd)[0]
        ignored_px[cols_with_crowd] += conf[crowd_rows[cols_with_crowd], cols_with_crowd + _FIRST]
    with np.errstate(divide="ignore", invalid="ignore"):
        ignored = ignored_px / pred_area > 0.5
    fp = pred_categories[~pred_matched & ~ignored]
    return _ImageStats(gt.category_ids[rows], ious.astype(np.float64), fn, fp)


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
        self._mapper = _SlotMapper()
        self.reset()

    @property
    def categories(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self._categories]

    def reset(self) -> None:
        """Clear the accumulated statistics."""
        n = len(self._categories)
        self._iou = np.zeros(n, dtype=np.float64)
        self._tp = np.zeros(n, dtype=np.int64)
        self._fp = np.zeros(n, dtype=np.int64)
        self._fn = np.zeros(n, dtype=np.int64)
        self.num_images = 0

    # -- per image -------------------------------------------------------------------------

    def _index(self, category_ids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self._cat_sorted, category_ids)
        pos = np.minimum(pos, len(self._cat_sorted) - 1)
        return self._cat_order[pos]

    def _known(self, category_ids: np.ndarray) -> np.ndarray:
        if len(self._cat_sorted) == 0:
            return np.zeros(len(category_ids), dtype=bool)
        pos = np.minimum(np.searchsorted(self._cat_sorted, category_ids), len(self._cat_sorted) - 1)
        return self._cat_sorted[pos] == category_ids

    def _check_categories(
        self, image_id: Any, ids: np.ndarray, categories: np.ndarray, what: str
    ) -> None:
        known = self._known(categories)
        if not known.all():
            k = int(np.nonzero(~known)[0][0])
            raise DatasetError(
                f"image {image_id}: {what} segment {int(ids[k])} has unknown category_id {int(categories[k])}"
            )

    def _prediction(
        self, pred: PanopticSegmentation, image_id: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        by_id = _segments_by_id(pred.segments, image_id, "predicted")
        ids = np.array(sorted(by_id), dtype=np.int64)
        cats = np.array(
            [_category_of(by_id[int(i)], image_id, "predicted") for i in ids], dtype=np.int64
        )
        self._check_categories(image_id, ids, cats, "predicted")
        return ids, cats

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
            gt = _prepare(gt, image_id=image_id, strict=True, mapper=self._mapper, max_id=None)
        image_id = gt.image_id if gt.image_id is not None else image_id
        self._check_categories(image_id, gt.ids, gt.category_ids, "ground-truth")
        if tuple(pred.shape) != gt.shape:
            raise DatasetError(
                f"image {image_id}: prediction size {tuple(pred.shape)} differs from ground truth {gt.shape}"
            )
        pred_ids, pred_cats = self._prediction(pred, image_id)
        seg_map = pred.seg_map
        if isinstance(seg_map, torch.Tensor) and (
            self.backend == "torch" or (self.backend == "auto" and seg_map.device.type != "cpu")
        ):
            conf = self._confusion_torch(gt, pred.seg_map, pred_ids, image_id)
        else:
            conf = self._confusion_numpy(gt, _as_numpy_map(pred.seg_map), pred_ids, image_id)
        self._add(_match(gt, pred_ids, pred_cats, conf))

    def _confusion_numpy(
        self,
        gt: PreparedGroundTruth,
        pred_map: np.ndarray,
        pred_ids: np.ndarray,
        image_id: Any,
        max_id: int | None = None,
    ) -> np.ndarray:
        num_pred = len(pred_ids) + _FIRST
        flat = pred_map.reshape(-1)
        pred_slots = self._mapper(
            flat, pred_ids, max_id, context=f"image {image_id}: prediction has a "
        )
        combined = np.multiply(gt.slots, num_pred, dtype=np.intp)
        combined += pred_slots
        conf = np.bincount(combined, minlength=gt.num_slots * num_pred).reshape(
            gt.num_slots, num_pred
        )
        self._check_prediction(
            conf, pred_ids, image_id, lambda: np.unique(flat[pred_slots == _UNLISTED])
        )
        return conf

    def _confusion_torch(
        self, gt: PreparedGroundTruth, pred_map: torch.Tensor, pred_ids: np.ndarray, image_id: Any
    ) -> np.ndarray:
        if pred_map.dim() != 2 or pred_map.dtype.is_floating_point or pred_map.dtype == torch.bool:
            raise DatasetError(f"image {image_id}: a segment-id map must be a 2-D integer tensor")
        device = pred_map.device
        num_pred = len(pred_ids) + _FIRST
        flat = pred_map.reshape(-1).to(torch.int64)
        is_zero = (flat == 0).to(torch.int64)
        if len(pred_ids):
            ids_t = torch.from_numpy(pred_ids).to(device)
            pos = torch.searchsorted(ids_t, flat).clamp_(max=len(pred_ids) - 1)
            found = ids_t[pos] == flat
            pred_slots = torch.where(found, pos + _FIRST, is_zero)
        else:
            pred_slots = is_zero
        combined = gt.slots_on(device).to(torch.int64) * num_pred + pred_slots
        counts = torch.bincount(combined, minlength=gt.num_slots * num_pred)
        conf = counts.cpu().numpy().reshape(gt.num_slots, num_pred)
        self._check_prediction(
            conf,
            pred_ids,
            image_id,
            lambda: torch.unique(flat[pred_slots == _UNLISTED]).cpu().numpy(),
        )
        return conf

    @staticmethod
    def _check_prediction(
        conf: np.ndarray,
        pred_ids: np.ndarray,
        image_id: Any,
        unlisted_ids: Callable[[], np.ndarray],
    ) -> None:
        """panopticapi's sanity checks: every non-zero id of the map listed, every listed id present."""
        if conf[:, _UNLISTED].any():
            first = int(np.min(unlisted_ids()))
            if first < 0:
                raise DatasetError(
                    f"image {image_id}: prediction has a negative segment id {first}"
                )
            raise DatasetError(
                f"image {image_id}: predicted segment id {first} is in the PNG but not in segments_info"
            )
        pred_area = conf[:, _FIRST:].sum(axis=0)
        missing = [int(i) for i, a in zip(pred_ids, pred_area, strict=True) if a == 0]
        if missing:
            raise DatasetError(
                f"image {image_id}: predicted segment ids {missing} are in segments_info but not in the PNG"
            )

    def _add(self, stats: _ImageStats) -> None:
        idx = self._index(stats.match_categories)
        np.add.at(
            self._iou, idx, stats.match_ious
        )  # unbuffered, in order: same sums as panopticapi
        n = len(self._categories)
        self._tp += np.bincount(idx, minlength=n)
        self._fn += np.bincount(self._index(stats.fn_categories), minlength=n)
        self._fp += np.bincount(self._index(stats.fp_categories), minlength=n)
        self.num_images += 1

    # -- results ---------------------------------------------------------------------------

    def merge(self, other: PanopticQuality) -> None:
        """Add another evaluator's statistics (e.g. from another process) to this one."""
        if [c["id"] for c in other._categories] != [c["id"] for c in self._categories]:
            raise ValueError("cannot merge evaluators with different categories")
        self._iou += other._iou
        self._tp += other._tp
        self._fp += other._fp
        self._fn += other._fn
        self.num_images += other.num_images

    def stats(self) -> dict[int, dict[str, float | int]]:
        """Per category id: accumulated ``iou`` sum, ``tp``, ``fp``, ``fn``."""
        return {
            int(cid): {
                "iou": float(self._iou[i]),
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
        results: dict[str, Any] = {}
        for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
            pq, sq, rq, n = 0.0, 0.0, 0.0, 0
            per_class: dict[int, dict[str, float]] = {}
            for i, cat in enumerate(self._categories):
                if isthing is not None and self._isthing[i] != isthing:
                    continue
                iou, tp, fp, fn = (
                    float(self._iou[i]),
                    int(self._tp[i]),
                    int(self._fp[i]),
                    int(self._fn[i]),
                )
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


# -- files ---------------------------------------------------------------------------------


def _score_pairs(
    pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]],
    gt_folder: str,
    pred_folder: str,
    categories: list[dict[str, Any]],
) -> list[_ImageStats]:
    """Score matched (ground-truth, prediction) annotations read from PNG folders."""
    evaluator = PanopticQuality(categories)
    out: list[_ImageStats] = []
    for gt_ann, pred_ann in pairs:
        image_id = gt_ann["image_id"]
        gt_map = read_panoptic_png(Path(gt_folder) / gt_ann["file_name"])
        gt = _prepare(
            PanopticSegmentation(gt_map, gt_ann["segments_info"]),
            image_id=image_id,
            strict=True,
            mapper=evaluator._mapper,
            max_id=MAX_SEGMENT_ID,
        )
        evaluator._check_categories(image_id, gt.ids, gt.category_ids, "ground-truth")
        pred_map = read_panoptic_png(Path(pred_folder) / pred_ann["file_name"])
        if pred_map.shape != gt.shape:
            raise DatasetError(
                f"image {image_id}: prediction PNG {pred_ann['file_name']} is {pred_map.shape[1]}x{pred_map.shape[0]}, "
                f"ground truth is {gt.shape[1]}x{gt.shape[0]}"
            )
        pred_ids, pred_cats = evaluator._prediction(
            PanopticSegmentation(pred_map, pred_ann["segments_info"]), image_id
        )
        conf = evaluator._confusion_numpy(gt, pred_map, pred_ids, image_id, max_id=MAX_SEGMENT_ID)
        out.append(_match(gt, pred_ids, pred_cats, conf))
    return out


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
    and summed in that order, so the numbers do not depend on ``workers`` (processes).

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
            raise DatasetError(
                f"no prediction for the image with id {gt_ann['image_id']} in {pred_json}"
            )
        pairs.append((gt_ann, pred_ann))

    categories = gt_data["categories"]
    evaluator = PanopticQuality(categories)
    if workers <= 1 or len(pairs) < 2:
        per_image = _score_pairs(pairs, str(gt_folder), str(pred_folder), categories)
    else:
        n_chunks = min(len(pairs), workers * 4)
        size = math.ceil(len(pairs) / n_chunks)
        chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = pool.map(
                _score_pairs,
                chunks,
                [str(gt_folder)] * len(chunks),
                [str(pred_folder)] * len(chunks),
                [categories] * len(chunks),
            )
            per_image = [s for part in parts for s in part]
    for stats in per_image:
        evaluator._add(stats)
    return evaluator.evaluate()


def results_to_json(results: Mapping[str, Any]) -> str:
    """JSON text of :meth:`PanopticQuality.evaluate` results (category ids become string keys)."""
    return json.dumps(results, indent=2)
