"""Detection: box mAP through pycocotools' COCOeval (the reference implementation of COCO AP).

pycocotools is an optional dependency (``pip install pycocotools``, or the ``panoptic`` extra); it
is imported only when a box mAP is computed.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from oneshot.evaluation import Evaluator

__all__ = ["BoxMAPEvaluator", "coco_box_map"]

#: Names of COCOeval's 12 summary numbers (``COCOeval.stats``), in order.
STAT_NAMES = (
    "map", "map_50", "map_75", "map_small", "map_medium", "map_large",
    "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large",
)


def _import_cocoeval() -> tuple[Any, Any]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise ImportError("box mAP needs pycocotools: pip install pycocotools") from None
    return COCO, COCOeval


def _rows(value: Any) -> list[list[float]]:
    return torch.as_tensor(value, dtype=torch.float64).reshape(-1, 4).tolist()


def _flat(value: Any) -> list[float]:
    return torch.as_tensor(value, dtype=torch.float64).reshape(-1).tolist()


def coco_box_map(
    predictions: Sequence[Mapping[str, Any]],
    targets: Sequence[Mapping[str, Any]],
    *,
    box_format: str = "xyxy",
) -> dict[str, float]:
    """COCO box AP/AR of ``predictions`` against ``targets``, one mapping per image, in percent.

    Args:
        predictions: per image ``boxes`` ``(K, 4)``, ``scores`` ``(K,)`` and ``labels`` ``(K,)``
            (torchvision's detection output format).
        targets: per image ``boxes`` ``(M, 4)`` and ``labels`` ``(M,)``, optionally ``iscrowd``
            ``(M,)`` (crowd boxes are neither matched nor missed).
        box_format: ``"xyxy"`` (corners) or ``"xywh"`` (COCO's corner and size).

    Returns the 12 numbers of ``COCOeval.summarize()`` named as in :data:`STAT_NAMES`
    (``map`` is AP at IoU 0.50:0.95, ``map_50`` at 0.50, ...), times 100; a number COCOeval
    cannot define (no ground truth of that size) is NaN.
    """
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} images")
    if box_format not in ("xyxy", "xywh"):
        raise ValueError(f"box_format must be 'xyxy' or 'xywh', got {box_format!r}")
    COCO, COCOeval = _import_cocoeval()

    def xywh(box: list[float]) -> list[float]:
        return box if box_format == "xywh" else [box[0], box[1], box[2] - box[0], box[3] - box[1]]

    images, annotations, detections, categories = [], [], [], set()
    for image_id, (pred, target) in enumerate(zip(predictions, targets, strict=True), start=1):
        images.append({"id": image_id})
        labels = [int(v) for v in _flat(target["labels"])]
        crowd = [int(v) for v in _flat(target["iscrowd"])] if "iscrowd" in target else [0] * len(labels)
        for box, label, is_crowd in zip(_rows(target["boxes"]), labels, crowd, strict=True):
            b = xywh(box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": label,
                "bbox": b, "area": b[2] * b[3], "iscrowd": is_crowd,
            })
            categories.add(label)
        scores, pred_labels = _flat(pred["scores"]), [int(v) for v in _flat(pred["labels"])]
        for box, score, label in zip(_rows(pred["boxes"]), scores, pred_labels, strict=True):
            detections.append({"image_id": image_id, "category_id": label, "bbox": xywh(box), "score": score})
            categories.add(label)
    if not annotations:
        raise ValueError("no ground-truth boxes: box mAP is undefined")
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in sorted(categories)]}
        gt.createIndex()
        if not detections:
            return {name: (0.0 if name.startswith("ma") else math.nan) for name in STAT_NAMES}
        dt = gt.loadRes(detections)
        coco_eval = COCOeval(gt, dt, iouType="bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return {name: (100.0 * float(v) if v >= 0 else math.nan) for name, v in zip(STAT_NAMES, coco_eval.stats, strict=True)}


def _targets_of(inputs: Any) -> Any:
    return inputs[1]


class BoxMAPEvaluator(Evaluator):
    """Box mAP (COCOeval) of a detection model, as an :class:`Evaluator`.

    ``process(inputs, outputs)`` takes ``outputs`` as a list of per-image prediction mappings
    (``boxes``, ``scores``, ``labels``) and the per-image ground truth ``targets(inputs)``
    (default: ``inputs[1]``, for ``(images, targets)`` batches). ``evaluate()`` returns
    :func:`coco_box_map`'s numbers and ``fitness`` (= ``map``).
    """

    def __init__(self, *, targets: Callable[[Any], Sequence[Mapping[str, Any]]] = _targets_of, box_format: str = "xyxy") -> None:
        _import_cocoeval()  # fail at construction, not after a whole evaluation
        self._targets = targets
        self.box_format = box_format
        self.predictions: list[Mapping[str, Any]] = []
        self.ground_truth: list[Mapping[str, Any]] = []

    def reset(self) -> None:
        self.predictions, self.ground_truth = [], []

    def process(self, inputs: Any, outputs: Any) -> None:
        targets = list(self._targets(inputs))
        outputs = list(outputs)
        if len(targets) != len(outputs):
            raise ValueError(f"{len(outputs)} predictions for {len(targets)} images in a batch")
        self.predictions += [{k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in o.items()} for o in outputs]
        self.ground_truth += [{k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in t.items()} for t in targets]

    def evaluate(self) -> dict[str, float]:
        metrics = coco_box_map(self.predictions, self.ground_truth, box_format=self.box_format)
        return {"fitness": metrics["map"], **metrics}
