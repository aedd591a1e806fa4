"""Task-agnostic metrics: semantic segmentation (confusion matrix, mean IoU, pixel accuracy) and
detection (box mAP through pycocotools' COCOeval, an optional dependency).

Each comes as a plain accumulator and as an :class:`oneshot.evaluation.Evaluator` for
:func:`oneshot.evaluation.inference_on_batches`.
"""

from oneshot.metrics.detection import BoxMAPEvaluator, coco_box_map
from oneshot.metrics.segmentation import ConfusionMatrix, SegmentationEvaluator

__all__ = ["BoxMAPEvaluator", "ConfusionMatrix", "SegmentationEvaluator", "coco_box_map"]
