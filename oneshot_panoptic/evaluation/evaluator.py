"""The panoptic task's evaluator: PQ of the fused panoptic outputs and the semantic branch's
confusion metrics, behind the core's ``reset / process / evaluate`` contract."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from oneshot.evaluation import Evaluator
from oneshot_panoptic.evaluation.counting import PreparedGroundTruth
from oneshot_panoptic.evaluation.pq import PanopticQuality
from oneshot_panoptic.evaluation.semantic import SemanticConfusion
from oneshot_panoptic.structures import PanopticMetadata

__all__ = ["PanopticEvalBatch", "PanopticEvaluator", "pq_metrics"]


@dataclass(frozen=True)
class PanopticEvalBatch:
    """One evaluation batch: what the model sees and what its outputs are scored against.

    Attributes:
        images: ``(3, H_i, W_i)`` float images at the network's input size.
        image_sizes: the original ``(H, W)`` of each image (the ground truth's size).
        ground_truth: each image's prepared panoptic ground truth (at the original size).
        semantic: each image's ``(H_i, W_i)`` int64 semantic target at the input size.
    """

    images: Sequence[Tensor]
    image_sizes: Sequence[tuple[int, int]]
    ground_truth: Sequence[PreparedGroundTruth]
    semantic: Sequence[Tensor]


def pq_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """Flatten :meth:`PanopticQuality.evaluate` results into percent metrics; ``fitness`` is PQ (All)."""
    out: dict[str, float] = {}
    for group, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        for key in ("pq", "sq", "rq"):
            out[f"{key}{suffix}"] = 100.0 * float(results[group][key])
    out["fitness"] = out["pq"]
    return out


class PanopticEvaluator(Evaluator):
    """PQ (panopticapi's numbers) and semantic mean IoU / pixel accuracy of a model's outputs.

    ``process(inputs, outputs)`` takes a :class:`PanopticEvalBatch` and one dict per image with
    ``panoptic`` (a :class:`~oneshot_panoptic.structures.PanopticSegmentation` at the original
    size, as :meth:`AutoPanoptic.postprocess` returns) and ``sem_seg`` (``(S + 1, H_i, W_i)``
    logits at the input size). ``evaluate()`` returns ``pq, sq, rq, pq_th, sq_th, rq_th, pq_st,
    sq_st, rq_st, fitness (= pq), sem_miou, sem_acc``, all in percent.
    """

    def __init__(self, metadata: PanopticMetadata) -> None:
        self.metadata = metadata
        self.panoptic_quality = PanopticQuality(metadata)
        self.semantic = SemanticConfusion(metadata.num_stuff + 1)

    def reset(self) -> None:
        self.panoptic_quality.reset()
        self.semantic.reset()

    def process(self, inputs: PanopticEvalBatch, outputs: Sequence[Mapping[str, Any]]) -> None:
        for gt, semantic, out in zip(inputs.ground_truth, inputs.semantic, outputs, strict=True):
            self.semantic.update(out["sem_seg"], semantic)
            self.panoptic_quality.process(gt, out["panoptic"])

    def evaluate(self) -> dict[str, float]:
        return {**pq_metrics(self.panoptic_quality.evaluate()), **self.semantic.metrics()}
