"""Pixel metrics of the semantic branch: mean IoU and pixel accuracy over its classes.

PQ hides *why* stuff is poor (a class never predicted, two classes confused, thresholds); the
semantic branch's own confusion matrix shows it. Classes are the branch's: 0 = "things", ``1..S``
stuff, ``IGNORE_LABEL`` pixels (void, crowd, padding) are skipped. The counting is the core's
:class:`oneshot.metrics.ConfusionMatrix`; this names the metrics for the panoptic reports.
"""

from __future__ import annotations

from oneshot.metrics import ConfusionMatrix
from oneshot_panoptic.structures import IGNORE_LABEL

__all__ = ["SemanticConfusion"]


class SemanticConfusion(ConfusionMatrix):
    """Accumulates a ``(C, C)`` confusion matrix (rows: ground truth, columns: prediction);
    ``update(prediction, target)`` takes ``(H, W)`` class indices or ``(C, H, W)`` logits."""

    def __init__(self, num_classes: int, *, ignore_index: int = IGNORE_LABEL) -> None:
        super().__init__(num_classes, ignore_index=ignore_index)

    def metrics(self) -> dict[str, float]:
        """``sem_miou`` (mean IoU over classes seen) and ``sem_acc`` (pixel accuracy), in percent."""
        return {"sem_miou": self.mean_iou(), "sem_acc": self.pixel_accuracy()}
