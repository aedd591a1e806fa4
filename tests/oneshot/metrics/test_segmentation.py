import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot.evaluation import inference_on_batches
from oneshot.metrics import ConfusionMatrix, SegmentationEvaluator


def test_hand_computed_example():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 1]])
    conf = ConfusionMatrix(4)
    conf.update(pred, target)
    # class 0: tp 1, gt 2, pred 2 -> 1/3; class 1: tp 3, gt 3, pred 4 -> 3/4; class 2: tp 1, gt 2, pred 1 -> 1/2
    iou = conf.iou()
    assert iou[:3].tolist() == pytest.approx([1 / 3, 3 / 4, 1 / 2])
    assert math.isnan(float(iou[3]))  # never seen: left out of the mean
    assert conf.metrics() == pytest.approx({"miou": 100 * (1 / 3 + 3 / 4 + 1 / 2) / 3, "pixel_acc": 100 * 5 / 7})


def test_scores_reduce_by_argmax_over_the_class_dimension():
    conf = ConfusionMatrix(2)
    scores = torch.tensor([[[[0.0, 1.0]], [[1.0, 0.0]]]])  # (N=1, C=2, H=1, W=2): predicts [1, 0]
    conf.update(scores, torch.tensor([[[1, 0]]]))
    assert conf.metrics() == {"miou": 100.0, "pixel_acc": 100.0}
    with pytest.raises(ValueError, match="prediction is"):
        conf.update(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3, 2, dtype=torch.int64))
    assert ConfusionMatrix(3).metrics() == {"miou": 0.0, "pixel_acc": 0.0}
    with pytest.raises(ValueError):
        ConfusionMatrix(0)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_matches_numpy(num_classes, seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, (3, 7, 9))
    target[rng.random(target.shape) < 0.2] = 255
    pred = rng.integers(0, num_classes, (3, 7, 9))
    conf = ConfusionMatrix(num_classes)
    conf.update(torch.from_numpy(pred), torch.from_numpy(target))
    keep = target != 255
    expected = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(expected, (target[keep], pred[keep]), 1)
    assert np.array_equal(conf.matrix.numpy(), expected)
    tp = np.diag(expected).astype(float)
    union = expected.sum(0) + expected.sum(1) - tp
    assert conf.mean_iou() == pytest.approx(100 * np.mean((tp / np.where(union > 0, union, 1))[union > 0]))


def test_evaluator_through_the_generic_loop():
    model = torch.nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([0.0, 1.0]))  # always predicts class 1
    masks = torch.tensor([[[1, 1], [0, 255]]])
    batches = [(torch.zeros(1, 3, 2, 2), masks)] * 2
    evaluator = SegmentationEvaluator(2, class_names=["background", "shape"])
    metrics = inference_on_batches(model, batches, evaluator, forward=lambda m, b: m(b[0]))
    assert metrics["iou/background"] == 0.0 and metrics["iou/shape"] == pytest.approx(100 * 2 / 3)
    assert metrics["fitness"] == metrics["miou"] == pytest.approx(100 / 3)
    assert metrics["pixel_acc"] == pytest.approx(100 * 2 / 3)
    # the loop resets the evaluator: a second run gives the same numbers
    assert inference_on_batches(model, batches, evaluator, forward=lambda m, b: m(b[0])) == metrics
