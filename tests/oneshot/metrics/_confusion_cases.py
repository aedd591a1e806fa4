"""Checks shared by the tests of :class:`oneshot.metrics.ConfusionMatrix` and of the classes built
on it (the panoptic plug-in's ``SemanticConfusion``), which only rename the metrics: each check
takes the class (called with the number of classes) and its two metric names (mean IoU, pixel
accuracy)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from oneshot.metrics import ConfusionMatrix

MakeConfusion = Callable[[int], ConfusionMatrix]


def check_hand_computed(make: MakeConfusion, names: tuple[str, str], ignore: int) -> None:
    """2 x 4 pixels of 4 classes, one ``ignore``d, class 3 never seen.

    Class 0: tp 1, gt 2, pred 2 -> 1/3; class 1: tp 3, gt 3, pred 4 -> 3/4; class 2: tp 1, gt 2,
    pred 1 -> 1/2; 5 of the 7 pixels counted are right.
    """
    conf = make(4)
    conf.update(torch.tensor([[0, 1, 1, 1], [2, 0, 2, 1]]), torch.tensor([[0, 0, 1, 1], [2, 2, ignore, 1]]))
    iou = conf.iou()
    assert iou[:3].tolist() == pytest.approx([1 / 3, 3 / 4, 1 / 2])
    assert math.isnan(float(iou[3]))  # never seen: left out of the mean
    assert conf.metrics() == pytest.approx({names[0]: 100 * (1 / 3 + 3 / 4 + 1 / 2) / 3, names[1]: 100 * 5 / 7})


def check_scores_and_sizes(make: MakeConfusion, names: tuple[str, str], scores: torch.Tensor, target: torch.Tensor) -> None:
    """Two-class ``scores`` reduced by argmax match ``target`` exactly; mismatched sizes raise."""
    conf = make(2)
    conf.update(scores, target)
    assert conf.metrics() == {names[0]: 100.0, names[1]: 100.0}
    with pytest.raises(ValueError, match="prediction is"):
        conf.update(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3, 2, dtype=torch.int64))


def check_empty(make: MakeConfusion, names: tuple[str, str]) -> None:
    """Nothing counted reports zeros; no classes at all is refused."""
    assert make(3).metrics() == {names[0]: 0.0, names[1]: 0.0}
    with pytest.raises(ValueError):
        make(0)


def check_matches_numpy(
    make: MakeConfusion, num_classes: int, seed: int, shape: tuple[int, ...], ignore: int, *, per_image: bool
) -> tuple[ConfusionMatrix, np.ndarray]:
    """Random labels (a fifth of the targets ``ignore``d), counted in one update or one image at a
    time, give numpy's confusion matrix; returns the confusion and that matrix."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, shape)
    target[rng.random(target.shape) < 0.2] = ignore
    pred = rng.integers(0, num_classes, shape)
    conf = make(num_classes)
    for p, t in zip(pred, target, strict=True) if per_image else [(pred, target)]:
        conf.update(torch.from_numpy(p), torch.from_numpy(t))
    keep = target != ignore
    expected = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(expected, (target[keep], pred[keep]), 1)
    assert np.array_equal(conf.matrix.numpy(), expected)
    return conf, expected
