"""PanopticEvaluator: the core's reset / process / evaluate contract with PQ and semantic metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oneshot.evaluation import Evaluator
from oneshot_panoptic.evaluation import (
    PanopticEvalBatch,
    PanopticEvaluator,
    prepare_ground_truth,
)
from oneshot_panoptic.structures import PanopticMetadata, PanopticSegmentation

METADATA = PanopticMetadata.from_categories([{"id": 3, "isthing": 1}, {"id": 8, "isthing": 0}])
KEYS = ["pq", "sq", "rq", "pq_th", "sq_th", "rq_th", "pq_st", "sq_st", "rq_st", "fitness", "sem_miou", "sem_acc"]


def _batch() -> tuple[PanopticEvalBatch, PanopticSegmentation]:
    seg_map = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    gt = PanopticSegmentation(seg_map, [{"id": 1, "category_id": 3}, {"id": 2, "category_id": 8}])
    semantic = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    batch = PanopticEvalBatch(
        images=[torch.zeros(3, 2, 4)],
        image_sizes=[(2, 4)],
        ground_truth=[prepare_ground_truth(gt, image_id=0)],
        semantic=[semantic],
    )
    return batch, gt


def test_perfect_outputs_score_100_and_reset_forgets() -> None:
    batch, gt = _batch()
    logits = torch.nn.functional.one_hot(batch.semantic[0], 2).permute(2, 0, 1).float()
    evaluator = PanopticEvaluator(METADATA)
    assert isinstance(evaluator, Evaluator)
    evaluator.process(batch, [{"panoptic": gt, "sem_seg": logits}])
    metrics = evaluator.evaluate()
    assert list(metrics) == KEYS
    assert all(math.isclose(metrics[k], 100.0) for k in KEYS)
    evaluator.reset()
    assert evaluator.panoptic_quality.num_images == 0 and int(evaluator.semantic.matrix.sum()) == 0


def test_outputs_must_match_the_batch() -> None:
    batch, gt = _batch()
    with pytest.raises(ValueError):
        PanopticEvaluator(METADATA).process(batch, [])
