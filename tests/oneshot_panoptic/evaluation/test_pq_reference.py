"""PQ reproduces the reference values shipped with the shared samples (evaluator, torch path, CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _pq_cases import (
    PANOPTICAPI_SAMPLE,
    TFMODELS,
    parse_shift_reference,
    parse_tfmodels_reference,
    roll_predictions,
)
from click.testing import CliRunner

from oneshot.cli import cli
from oneshot_panoptic.data import load_panoptic_json, read_panoptic_png
from oneshot_panoptic.evaluation import (
    PanopticQuality,
    evaluate_panoptic_files,
    prepare_ground_truth,
)
from oneshot_panoptic.structures import PanopticSegmentation

needs_tfmodels = pytest.mark.skipif(
    not (TFMODELS / "SOURCE.txt").exists(), reason=f"shared sample data absent: {TFMODELS}"
)
needs_panopticapi_sample = pytest.mark.skipif(
    not (PANOPTICAPI_SAMPLE / "SOURCE.txt").exists(),
    reason=f"shared sample data absent: {PANOPTICAPI_SAMPLE}",
)


def _in_memory(
    gt_json: Path, gt_folder: Path, pred_json: Path, pred_folder: Path, *, device: str | None = None
) -> dict:
    """Decode the files, then score through the in-memory evaluator (prepared GT, numpy or torch)."""
    gt, pred = load_panoptic_json(gt_json), load_panoptic_json(pred_json)
    evaluator = PanopticQuality(gt["categories"], backend="auto" if device is None else "torch")
    preds = {a["image_id"]: a for a in pred["annotations"]}
    for ann in gt["annotations"]:
        prepared = prepare_ground_truth(
            PanopticSegmentation(
                read_panoptic_png(gt_folder / ann["file_name"]), ann["segments_info"]
            ),
            image_id=ann["image_id"],
        )
        p = preds[ann["image_id"]]
        seg_map = read_panoptic_png(pred_folder / p["file_name"])
        if device is not None:
            seg_map = torch.from_numpy(seg_map.astype("int64")).to(device)
        evaluator.process(prepared, PanopticSegmentation(seg_map, p["segments_info"]))
    return evaluator.evaluate()


def _cli_json(gt_json: Path, gt_folder: Path, pred_json: Path, pred_folder: Path) -> dict:
    args = ["panoptic", "evaluate", "--gt-json", gt_json, "--gt-folder", gt_folder, "--pred-json", pred_json]
    result = CliRunner().invoke(
        cli, [str(a) for a in [*args, "--pred-folder", pred_folder, "--json"]]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _devices() -> list[str | None]:
    return [None, "cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@needs_tfmodels
@pytest.mark.parametrize("device", _devices())
def test_tfmodels_sample_matches_pq_compute(device: str | None) -> None:
    ref = parse_tfmodels_reference()
    d = TFMODELS
    results = _in_memory(
        d / "coco_gt.json", d / "coco_gt", d / "coco_pred.json", d / "coco_pred", device=device
    )
    for name in ("All", "Things", "Stuff"):
        assert results[name]["n"] == ref[name]["n"]
        for key in ("pq", "sq", "rq"):
            assert results[name][key] == pytest.approx(ref[name][key], abs=1e-15), (name, key)
    for cid, pq in ref["per_class_pq"].items():
        assert results["per_class"][cid]["pq"] == pytest.approx(pq, abs=5e-7)
    assert results["per_class"][2] == {"pq": 0.0, "sq": 0.0, "rq": 0.0}  # umbrella: FN only


@needs_tfmodels
def test_tfmodels_sample_through_files_and_cli() -> None:
    ref = parse_tfmodels_reference()
    d = TFMODELS
    paths = (d / "coco_gt.json", d / "coco_gt", d / "coco_pred.json", d / "coco_pred")
    from_files = evaluate_panoptic_files(*paths)
    assert (
        evaluate_panoptic_files(*paths, workers=2) == from_files
    )  # processes do not change the sums
    from_cli = _cli_json(*paths)
    for name in ("All", "Things", "Stuff"):
        for key in ("pq", "sq", "rq", "n"):
            assert from_files[name][key] == pytest.approx(ref[name][key], abs=1e-15)
            assert from_cli[name][key] == from_files[name][key]
    assert set(from_cli["per_class"]) == {str(c) for c in from_files["per_class"]}


@pytest.mark.parametrize("device", _devices())
def test_listed_prediction_id_zero_is_a_real_segment(device: str | None) -> None:
    """A predicted id 0 listed in segments_info is a segment (as in the tfmodels team image)."""
    categories = [{"id": 7, "isthing": 1}]
    gt = PanopticSegmentation(
        np.array([[5, 5, 5], [5, 5, 0]]), [{"id": 5, "category_id": 7, "iscrowd": 0}]
    )
    zeros = (
        torch.zeros((2, 3), dtype=torch.int64, device=device)
        if device
        else np.zeros((2, 3), dtype=np.int64)
    )
    listed = PanopticQuality(categories, backend="torch")
    listed.process(gt, PanopticSegmentation(zeros, [{"id": 0, "category_id": 7}]))
    assert listed.stats()[7] == {
        "iou": 5 / 5,
        "tp": 1,
        "fp": 0,
        "fn": 0,
    }  # union drops the VOID pixel
    unlisted = PanopticQuality(categories, backend="torch")
    unlisted.process(gt, PanopticSegmentation(zeros, []))
    assert unlisted.stats()[7] == {"iou": 0.0, "tp": 0, "fp": 0, "fn": 1}


@needs_panopticapi_sample
def test_identity_prediction_is_perfect() -> None:
    d = PANOPTICAPI_SAMPLE
    paths = (d / "panoptic_examples.json", d / "panoptic_examples") * 2
    results = evaluate_panoptic_files(*paths)
    assert [results[g]["n"] for g in ("All", "Things", "Stuff")] == [8, 4, 4]
    for group in ("All", "Things", "Stuff"):
        assert results[group]["pq"] == results[group]["sq"] == results[group]["rq"] == 1.0


@needs_panopticapi_sample
@pytest.mark.parametrize("shift", [8, 32, 64])
def test_shifted_predictions_match_reference(shift: int, tmp_path: Path) -> None:
    ref = parse_shift_reference()[shift]
    d = PANOPTICAPI_SAMPLE
    pred_json, pred_folder = roll_predictions(tmp_path, shift)
    paths = (d / "panoptic_examples.json", d / "panoptic_examples", pred_json, pred_folder)
    evaluated = {
        "files": evaluate_panoptic_files(*paths),
        "memory": _in_memory(*paths),
        "torch": _in_memory(*paths, device=_devices()[-1]),
        "cli": _cli_json(*paths),
    }
    for how, results in evaluated.items():
        for name, values in ref.items():
            for key, value in values.items():
                assert results[name][key] == pytest.approx(value, abs=5e-7), (how, name, key)
    assert evaluated["memory"] == evaluated["files"] == evaluated["torch"]
