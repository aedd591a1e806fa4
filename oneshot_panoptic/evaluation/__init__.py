"""Evaluation of panoptic outputs: the PQ counting kernel, the PQ evaluator, PQ of prediction
files, semantic confusion metrics and the task's evaluator."""

from oneshot_panoptic.evaluation.counting import PreparedGroundTruth, prepare_ground_truth
from oneshot_panoptic.evaluation.evaluator import PanopticEvalBatch, PanopticEvaluator, pq_metrics
from oneshot_panoptic.evaluation.files import evaluate_panoptic_files
from oneshot_panoptic.evaluation.pq import PanopticQuality, format_pq_table, results_to_json
from oneshot_panoptic.evaluation.semantic import SemanticConfusion

__all__ = [
    "PanopticEvalBatch",
    "PanopticEvaluator",
    "PanopticQuality",
    "PreparedGroundTruth",
    "SemanticConfusion",
    "evaluate_panoptic_files",
    "format_pq_table",
    "pq_metrics",
    "prepare_ground_truth",
    "results_to_json",
]
