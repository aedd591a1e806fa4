"""The counting kernel of panoptic quality: one joint histogram of (ground-truth segment,
predicted segment) per image, and panopticapi's matching on it.

Segment ids are mapped to small *slots*, ground truth and prediction alike:
``0`` = an id that is not listed in segments_info (and is not 0), ``1`` = id 0 when it is not
listed (VOID), ``2 + k`` = the k-th listed id (listed ids sorted ascending).

The histogram is one ``np.bincount`` over combined indices ``gt_slot * (Kp + 2) + pred_slot``,
taken over *runs*: consecutive pixels (row-major) with the same ground-truth slot and the same
predicted id are counted once, weighted by the run's length. Segmentation maps change value a
few dozen times per row, so this touches ~20x fewer elements than a per-pixel histogram, and
predicted ids are mapped to slots per run (``np.searchsorted``) instead of per pixel. Counts are
exact (float64 weights hold integers up to 2**53). Predictions given as torch tensors on an
accelerator are counted there per pixel (``torch.bincount``); only the small confusion matrix
comes back to the CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from oneshot.errors import DatasetError
from oneshot_panoptic.structures import PanopticSegmentation

__all__ = [
    "ImageStats",
    "PreparedGroundTruth",
    "confusion_numpy",
    "confusion_torch",
    "match_image",
    "prepare_ground_truth",
    "segment_categories",
]

UNLISTED = 0
VOID = 1
FIRST = 2
_LUT_SIZE = 1 << 12  # ids below this (or below the number of values) map through a table


def as_numpy_map(seg_map: np.ndarray | torch.Tensor) -> np.ndarray:
    """A 2-D integer numpy array from a numpy or torch segment-id map (any device)."""
    if isinstance(seg_map, torch.Tensor):
        seg_map = seg_map.detach().cpu().numpy()
    arr = np.asarray(seg_map)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise DatasetError(
            f"a segment-id map must be a 2-D integer array, got {arr.dtype} of shape {arr.shape}"
        )
    return arr


def runs(flat: np.ndarray, breaks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of each run of equal consecutive values of the 1-D ``flat``, also
    broken after each position in ``breaks`` (where another map of the same pixels changes)."""
    n = flat.size
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    change = flat[1:] != flat[:-1]
    if breaks is not None:
        change[breaks] = True
    last = np.flatnonzero(change)  # the last position of every run but the final one
    starts = np.empty(last.size + 1, dtype=np.intp)
    starts[0] = 0
    np.add(last, 1, out=starts[1:])
    lengths = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1] = n - starts[-1]
    return starts, lengths


def id_slots(values: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """The slot (see the module docstring) of each id in ``values``; ``sorted_ids`` are the listed ids."""
    if values.size and int(values.min()) >= 0:
        top = max(int(values.max()), int(sorted_ids[-1]) if len(sorted_ids) else 0)
        if top < max(_LUT_SIZE, values.size):  # small ids (fusion output): one gather from a table
            lut = np.zeros(top + 1, dtype=np.intp)
            lut[0] = VOID
            lut[sorted_ids] = np.arange(FIRST, FIRST + len(sorted_ids))
            return lut.take(values)
    is_zero = (values == 0).astype(np.intp)
    k = len(sorted_ids)
    if k == 0:
        return is_zero
    pos = np.searchsorted(sorted_ids, values)
    np.minimum(pos, k - 1, out=pos)
    return np.where(sorted_ids[pos] == values, pos + FIRST, is_zero)


def segments_by_id(
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


def category_of(seg: Mapping[str, Any], image_id: Any, what: str) -> int:
    try:
        return int(seg["category_id"])
    except (KeyError, TypeError, ValueError):
        raise DatasetError(
            f"image {image_id}: {what} segment {seg.get('id')} has no integer 'category_id'"
        ) from None


def segment_categories(
    segments: Iterable[Mapping[str, Any]], image_id: Any, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Listed segment ids ``(K,)`` ascending and their category ids ``(K,)``."""
    by_id = segments_by_id(segments, image_id, what)
    ids = np.array(sorted(by_id), dtype=np.int64)
    cats = np.array([category_of(by_id[int(i)], image_id, what) for i in ids], dtype=np.int64)
    return ids, cats


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
        breaks: ``(R - 1,)`` positions ``i`` where the slot changes from pixel ``i`` to ``i + 1``
            (row-major), so a prediction's runs are found with one comparison of its own.
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
        "breaks",
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
        breaks: np.ndarray,
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
        self.breaks = breaks
        self._device_slots: dict[torch.device, torch.Tensor] = {}

    @property
    def num_slots(self) -> int:
        return len(self.ids) + FIRST

    def slots_on(self, device: torch.device) -> torch.Tensor:
        """The ``(H * W,)`` slot map as a tensor on ``device`` (copied once, then kept)."""
        device = torch.device(device)
        if device not in self._device_slots:
            self._device_slots[device] = torch.from_numpy(self.slots).to(device)
        return self._device_slots[device]


def prepare_ground_truth(
    gt: PanopticSegmentation, *, image_id: Any = None, strict: bool = True
) -> PreparedGroundTruth:
    """Prepare one image's ground truth for :class:`~oneshot_panoptic.evaluation.pq.PanopticQuality`
    (do it once per split).

    Args:
        gt: ``(H, W)`` segment-id map (numpy or torch, any device) and its ``segments``
            (``id``, ``category_id``, ``iscrowd``, optional ``area``).
        image_id: shown in error messages.
        strict: raise when the map holds a non-zero id that is not listed, or a listed id has no
            pixel. panopticapi silently ignores both in ground truth; pass ``False`` to do the same.

    Returns:
        A :class:`PreparedGroundTruth` holding an ``(H * W,)`` uint8 (int32 beyond 254 segments)
        slot map; scoring on a device keeps one copy of it there.

    Raises:
        DatasetError: malformed segments, or (``strict``) ids inconsistent with the map.
    """
    seg_map = as_numpy_map(gt.seg_map)
    by_id = segments_by_id(gt.segments, image_id, "ground-truth")
    ids = np.array(sorted(by_id), dtype=np.int64)
    flat = seg_map.reshape(-1)
    if flat.size and np.issubdtype(flat.dtype, np.signedinteger) and int(flat.min()) < 0:
        raise DatasetError(f"image {image_id}: ground truth has a negative segment id {int(flat.min())}")
    starts, lengths = runs(flat)
    run_ids = flat[starts]
    run_slots = id_slots(run_ids, ids)
    # Runs of equal ids are runs of equal slots, except where two unlisted ids meet.
    breaks = (starts[1:] - 1)[run_slots[1:] != run_slots[:-1]]
    counts = np.bincount(run_slots, weights=lengths, minlength=len(ids) + FIRST).astype(np.int64)
    if strict:
        if counts[UNLISTED]:
            extra = int(run_ids[run_slots == UNLISTED].min())
            raise DatasetError(
                f"image {image_id}: ground-truth segment id {extra} is in the PNG but not in segments_info"
            )
        absent = [int(i) for i, c in zip(ids, counts[FIRST:], strict=True) if c == 0]
        if absent:
            raise DatasetError(
                f"image {image_id}: ground-truth segment ids {absent} are in segments_info but not in the PNG"
            )
    category_ids = np.array([category_of(by_id[int(i)], image_id, "ground-truth") for i in ids], dtype=np.int64)
    iscrowd = np.array([int(by_id[int(i)].get("iscrowd", 0)) == 1 for i in ids], dtype=bool)
    areas = np.array(
        [
            float(by_id[int(i)]["area"]) if "area" in by_id[int(i)] else float(c)
            for i, c in zip(ids, counts[FIRST:], strict=True)
        ],
        dtype=np.float64,
    )
    slot_of = {int(i): k + FIRST for k, i in enumerate(ids)}
    crowd: dict[int, int] = {}
    for seg_id, seg in by_id.items():  # insertion order, last crowd segment of a category wins
        if int(seg.get("iscrowd", 0)) == 1:
            crowd[category_of(seg, image_id, "ground-truth")] = slot_of[seg_id]
    slot_dtype = np.uint8 if len(ids) + FIRST <= 256 else np.int32
    return PreparedGroundTruth(
        image_id=image_id,
        shape=(int(seg_map.shape[0]), int(seg_map.shape[1])),
        slots=np.repeat(run_slots.astype(slot_dtype), lengths),
        ids=ids,
        category_ids=category_ids,
        iscrowd=iscrowd,
        areas=areas,
        void_slot=slot_of.get(0, VOID),
        crowd_slot_by_category=crowd,
        breaks=breaks,
    )


def confusion_numpy(
    gt: PreparedGroundTruth, pred_map: np.ndarray, pred_ids: np.ndarray, image_id: Any
) -> np.ndarray:
    """``(Kg + 2, Kp + 2)`` int64 pixel counts of (ground-truth slot, predicted slot), with
    panopticapi's checks of the prediction (every non-zero id listed, every listed id present)."""
    flat = pred_map.reshape(-1)
    starts, lengths = runs(flat, gt.breaks)
    run_ids = flat[starts]
    pred_slots = id_slots(run_ids, pred_ids)
    num_pred = len(pred_ids) + FIRST
    combined = gt.slots[starts].astype(np.intp) * num_pred + pred_slots
    conf = np.bincount(combined, weights=lengths, minlength=gt.num_slots * num_pred)
    conf = conf.astype(np.int64).reshape(gt.num_slots, num_pred)
    if conf[:, UNLISTED].any():
        _unlisted_error(int(run_ids[pred_slots == UNLISTED].min()), image_id)
    _check_present(conf, pred_ids, image_id)
    return conf


def confusion_torch(
    gt: PreparedGroundTruth, pred_map: torch.Tensor, pred_ids: np.ndarray, image_id: Any
) -> np.ndarray:
    """:func:`confusion_numpy` counted with ``torch.bincount`` on the prediction's device."""
    if pred_map.dim() != 2 or pred_map.dtype.is_floating_point or pred_map.dtype == torch.bool:
        raise DatasetError(f"image {image_id}: a segment-id map must be a 2-D integer tensor")
    device = pred_map.device
    num_pred = len(pred_ids) + FIRST
    flat = pred_map.reshape(-1).to(torch.int64)
    is_zero = (flat == 0).to(torch.int64)
    if len(pred_ids):
        ids_t = torch.from_numpy(pred_ids).to(device)
        pos = torch.searchsorted(ids_t, flat).clamp_(max=len(pred_ids) - 1)
        pred_slots = torch.where(ids_t[pos] == flat, pos + FIRST, is_zero)
    else:
        pred_slots = is_zero
    combined = gt.slots_on(device).to(torch.int64) * num_pred + pred_slots
    counts = torch.bincount(combined, minlength=gt.num_slots * num_pred)
    conf = counts.cpu().numpy().reshape(gt.num_slots, num_pred)
    if conf[:, UNLISTED].any():
        _unlisted_error(int(flat[pred_slots == UNLISTED].min()), image_id)
    _check_present(conf, pred_ids, image_id)
    return conf


def _unlisted_error(first: int, image_id: Any) -> None:
    if first < 0:
        raise DatasetError(f"image {image_id}: prediction has a negative segment id {first}")
    raise DatasetError(
        f"image {image_id}: predicted segment id {first} is in the PNG but not in segments_info"
    )


def _check_present(conf: np.ndarray, pred_ids: np.ndarray, image_id: Any) -> None:
    missing = pred_ids[conf[:, FIRST:].sum(axis=0) == 0].tolist()
    if missing:
        raise DatasetError(
            f"image {image_id}: predicted segment ids {missing} are in segments_info but not in the PNG"
        )


@dataclass(frozen=True)
class ImageStats:
    """What one image adds to the totals: category ids, matches in panopticapi's order."""

    match_categories: np.ndarray
    match_ious: np.ndarray
    fn_categories: np.ndarray
    fp_categories: np.ndarray


def match_image(
    gt: PreparedGroundTruth, pred_ids: np.ndarray, pred_categories: np.ndarray, conf: np.ndarray
) -> ImageStats:
    """panopticapi's matching on a ``(Kg + 2, Kp + 2)`` confusion matrix of slots."""
    inter = conf[FIRST:, FIRST:]
    pred_area = conf[:, FIRST:].sum(axis=0)
    void = conf[gt.void_slot, FIRST:]
    candidate = (inter > 0) & (gt.category_ids[:, None] == pred_categories[None, :]) & ~gt.iscrowd[:, None]
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

    ignored_px = void.copy()
    if gt.crowd_slot_by_category:
        crowd = gt.crowd_slot_by_category
        crowd_rows = np.array([crowd.get(c, -1) for c in pred_categories.tolist()], dtype=np.intp)
        cols_with_crowd = np.nonzero(crowd_rows >= 0)[0]
        ignored_px[cols_with_crowd] += conf[crowd_rows[cols_with_crowd], cols_with_crowd + FIRST]
    with np.errstate(divide="ignore", invalid="ignore"):
        ignored = ignored_px / pred_area > 0.5
    fp = pred_categories[~pred_matched & ~ignored]
    return ImageStats(gt.category_ids[rows], ious.astype(np.float64), fn, fp)
