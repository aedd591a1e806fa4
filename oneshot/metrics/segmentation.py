"""Semantic segmentation: a confusion matrix over classes, mean IoU and pixel accuracy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from oneshot.evaluation import Evaluator

__all__ = ["ConfusionMatrix", "SegmentationEvaluator"]


class ConfusionMatrix:
    """Accumulates a ``(C, C)`` confusion matrix (rows: ground truth, columns: prediction).

    Pixels whose target is ``ignore_index`` or outside ``[0, C)`` are skipped.
    """

    def __init__(self, num_classes: int, *, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros((num_classes, num_classes), dtype=torch.int64)

    def reset(self) -> None:
        self.matrix.zero_()

    def update(self, prediction: Tensor, target: Tensor) -> None:
        """Add pixels: ``target`` holds class indices (``(H, W)``, ``(N, H, W)``, ...);
        ``prediction`` holds class indices of the same shape, or scores with one more dimension,
        the class dimension just before the two spatial ones (``(C, H, W)``, ``(N, C, H, W)``),
        reduced by argmax."""
        if prediction.dim() == target.dim() + 1:
            prediction = prediction.argmax(dim=prediction.dim() - 3)
        if prediction.shape != target.shape:
            raise ValueError(f"prediction is {tuple(prediction.shape)}, target {tuple(target.shape)}")
        c = self.num_classes
        target = target.to(prediction.device)
        keep = (target != self.ignore_index) & (target >= 0) & (target < c)
        index = target[keep].to(torch.int64) * c + prediction[keep].to(torch.int64)
        self.matrix += torch.bincount(index, minlength=c * c).reshape(c, c).cpu()

    def iou(self) -> Tensor:
        """Per-class IoU ``(C,)`` float64; NaN for a class absent from both prediction and truth."""
        m = self.matrix.to(torch.float64)
        tp = m.diagonal()
        union = m.sum(0) + m.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))

    def mean_iou(self) -> float:
        """Mean IoU over the classes seen (in truth or prediction), in percent; 0 when empty."""
        iou = self.iou()
        seen = ~iou.isnan()
        return 100.0 * float(iou[seen].mean()) if bool(seen.any()) else 0.0

    def pixel_accuracy(self) -> float:
        """Correct pixels over counted pixels, in percent; 0 when empty."""
        total = int(self.matrix.sum())
        return 100.0 * float(self.matrix.diagonal().sum()) / total if total else 0.0

    def metrics(self) -> dict[str, float]:
        """``miou`` and ``pixel_acc``, in percent."""
        return {"miou": self.mean_iou(), "pixel_acc": self.pixel_accuracy()}


def _second(inputs: Any) -> Any:
    return inputs[1]


def _identity(outputs: Any) -> Any:
    return outputs


class SegmentationEvaluator(Evaluator):
    """Mean IoU and pixel accuracy of a segmentation model, as an :class:`Evaluator`.

    Args:
        num_classes: number of classes ``C``.
        ignore_index: target value of pixels to skip.
        class_names: optional names; each class's IoU is then reported as ``iou/<name>``
            (NaN when the class was neither present nor predicted).
        target: ``target(inputs)`` -> class indices ``(N, H, W)`` (default: ``inputs[1]``, for
            ``(images, masks)`` batches).
        prediction: ``prediction(outputs)`` -> scores ``(N, C, H, W)`` or indices ``(N, H, W)``
            (default: the outputs themselves).

    ``evaluate()`` returns ``miou``, ``pixel_acc`` (percent) and ``fitness`` (= ``miou``).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        target: Callable[[Any], Tensor] = _second,
        prediction: Callable[[Any], Tensor] = _identity,
    ) -> None:
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.confusion = ConfusionMatrix(num_classes, ignore_index=ignore_index)
        self.class_names = list(class_names) if class_names is not None else None
        self._target = target
        self._prediction = prediction

    def reset(self) -> None:
        self.confusion.reset()

    def process(self, inputs: Any, outputs: Any) -> None:
        self.confusion.update(self._prediction(outputs).detach(), self._target(inputs))

    def evaluate(self) -> dict[str, float]:
        metrics = self.confusion.metrics()
        if self.class_names is not None:
            metrics.update({f"iou/{n}": 100.0 * float(v) for n, v in zip(self.class_names, self.confusion.iou(), strict=True)})
        return {"fitness": metrics["miou"], **metrics}
