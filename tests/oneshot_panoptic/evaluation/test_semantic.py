import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot_panoptic.evaluation.semantic import SemanticConfusion
from oneshot_panoptic.structures import IGNORE_LABEL


def test_hand_computed_example():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, IGNORE_LABEL, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 1]])
    conf = SemanticConfusion(4)
    conf.update(pred, target)
    # class 0: tp 1, gt 2, pred 2 -> 1/3; class 1: tp 3, gt 3, pred 4 -> 3/4; class 2: tp 1, gt 2, pred 1 -> 1/2
    iou = conf.iou()
    assert iou[:3].tolist() == pytest.approx([1 / 3, 3 / 4, 1 / 2])
    assert math.isnan(float(iou[3]))  # never seen: left out of the mean
    m = conf.metrics()
    assert m["sem_miou"] == pytest.approx(100 * (1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert m["sem_acc"] == pytest.approx(100 * 5 / 7)


def test_logits_are_reduced_by_argmax_and_sizes_must_match():
    conf = SemanticConfusion(2)
    logits = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]])  # (C=2, H=1, W=2): predicts [1, 0]
    conf.update(logits, torch.tensor([[1, 0]]))
    assert conf.metrics() == {"sem_miou": 100.0, "sem_acc": 100.0}
    with pytest.raises(ValueError, match="prediction is"):
        conf.update(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3, 2, dtype=torch.int64))


def test_empty_confusion_reports_zero():
    assert SemanticConfusion(3).metrics() == {"sem_miou": 0.0, "sem_acc": 0.0}
    with pytest.raises(ValueError):
        SemanticConfusion(0)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_matches_numpy_confusion(num_classes, seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, (2, 7, 9))
    target[rng.random(target.shape) < 0.2] = IGNORE_LABEL
    pred = rng.integers(0, num_classes, (2, 7, 9))
    conf = SemanticConfusion(num_classes)
    for t, p in zip(target, pred, strict=True):
        conf.update(torch.from_numpy(p), torch.from_numpy(t))
    keep = target != IGNORE_LABEL
    expected = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(expected, (target[keep], pred[keep]), 1)
    assert np.array_equal(conf.matrix.numpy(), expected)
