import builtins
import math

import pytest
import torch

from oneshot.metrics import BoxMAPEvaluator, coco_box_map

pytest.importorskip("pycocotools")

GT = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]]), "labels": torch.tensor([1, 1])}


def test_perfect_detections_score_100():
    pred = {**GT, "scores": torch.tensor([0.9, 0.8])}
    m = coco_box_map([pred], [GT])
    assert m["map"] == pytest.approx(100.0) and m["map_50"] == pytest.approx(100.0)
    assert math.isnan(m["map_large"])  # no large ground truth: COCOeval cannot define it


def test_one_of_two_found_is_half_recall():
    # one box right, one far off: precision 1 up to recall 0.5, i.e. 51 of COCO's 101 recall points
    pred = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [60.0, 60.0, 70.0, 70.0]]), "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([1, 1])}
    m = coco_box_map([pred], [GT])
    assert m["map_50"] == pytest.approx(100 * 51 / 101)
    assert m["mar_100"] == pytest.approx(50.0)
    # the same in COCO's xywh format
    xywh = lambda b: torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], 1)  # noqa: E731
    m2 = coco_box_map([{**pred, "boxes": xywh(pred["boxes"])}], [{**GT, "boxes": xywh(GT["boxes"])}], box_format="xywh")
    assert m2 == pytest.approx(m, nan_ok=True)


def test_evaluator_accumulates_batches_and_errors():
    ev = BoxMAPEvaluator()
    pred = {**GT, "scores": torch.tensor([0.9, 0.8])}
    ev.process((None, [GT]), [pred])
    ev.process((None, [GT]), [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}])
    metrics = ev.evaluate()
    assert metrics["fitness"] == metrics["map"] and metrics["mar_100"] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="predictions for"):
        ev.process((None, [GT, GT]), [pred])
    with pytest.raises(ValueError, match="no ground-truth"):
        coco_box_map([pred], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}])


def test_clear_error_without_pycocotools(monkeypatch):
    real_import = builtins.__import__

    def no_pycocotools(name, *args, **kwargs):
        if name.startswith("pycocotools"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pycocotools)
    with pytest.raises(ImportError, match="pip install pycocotools"):
        coco_box_map([], [])
    with pytest.raises(ImportError, match="pip install pycocotools"):
        BoxMAPEvaluator()
