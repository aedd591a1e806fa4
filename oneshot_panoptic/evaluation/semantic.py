"""Pixel metrics of the semantic branch: mean IoU and pixel accuracy over its classes.

PQ hides *why* stuff is poor (a class never predicted, two classes confused, thresholds); the
semantic branch's own confusion matrix shows it. Classes are the branch's: 0 = "things", ``1..S``
stuff, ``IGNORE_LABEL`` pixels (void, crowd, padding) are skipped.
"""

from __future__ import annotations

import torch
from torch import Tensor

from oneshot_panoptic.structures import IGNORE_LABEL

__all__ = ["SemanticConfusion"]


class SemanticConfusion:
    """Accumulates a ``(C, C)`` confusion matrix (rows: ground truth, columns: prediction)."""

    def __init__(self, num_classes: int, *, ignore_index: int = IGNORE_LABEL) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        """Clear the matrix."""
        self.matrix = torch.zeros((self.num_classes, self.num_classes), dtype=torch.int64)

    def update(self, prediction: Tensor, target: Tensor) -> None:
        """Add one image: ``prediction`` ``(H, W)`` class indices (or ``(C, H, W)`` logits) and
        ``target`` ``(H, W)`` int64 of the same size."""
        if prediction.dim() == 3:
            prediction = prediction.argmax(dim=0)
        if prediction.shape != target.shape:
            raise ValueError(f"prediction is {tuple(prediction.shape)}, target {tuple(target.shape)}")
        c = self.num_classes
        target = target.to(prediction.device)
        keep = (target != self.ignore_index) & (target >= 0) & (target < c)
        index = target[keep] * c + prediction[keep].to(torch.int64)
        self.matrix += torch.bincount(index, minlength=c * c).reshape(c, c).cpu()

    def iou(self) -> Tensor:
        """Per-class IoU ``(C,)`` float64; NaN for a class absent from both prediction and truth."""
        m = self.matrix.to(torch.float64)
        tp = m.diagonal()
        union = m.sum(0) + m.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))

    def metrics(self) -> dict[str, float]:
        """``sem_miou`` (mean IoU over classes seen) and ``sem_acc`` (pixel accuracy), in percent."""
        iou = self.iou()
        seen = ~iou.isnan()
        total = int(self.matrix.sum())
        return {
            "sem_miou": 100.0 * float(iou[seen].mean()) if bool(seen.any()) else 0.0,
            "sem_acc": 100.0 * float(self.matrix.diagonal().sum()) / total if total else 0.0,
        }
