
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot.evaluation import inference_on_batches
from oneshot.metrics import ConfusionMatrix, SegmentationEvaluator
from tests.oneshot.metrics import _confusion_cases as cases

NAMES = ("miou", "pixel_acc")


def test_hand_computed_example():
    cases.check_hand_computed(ConfusionMatrix, NAMES, ignore=255)


def test_scores_reduce_by_argmax_over_the_class_dimension():
    scores = torch.tensor([[[[0.0, 1.0]], [[1.0, 0.0]]]])  # (N=1, C=2, H=1, W=2): predicts [1, 0]
    cases.check_scores_and_sizes(ConfusionMatrix, NAMES, scores, torch.tensor([[[1, 0]]]))
    cases.check_empty(ConfusionMatrix, NAMES)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_matches_numpy(num_classes, seed):
    conf, expected = cases.check_matches_numpy(ConfusionMatrix, num_classes, seed, (3, 7, 9), 255, per_image=False)
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
