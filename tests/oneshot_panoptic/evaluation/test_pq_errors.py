"""Bad input gives one clear error: from the evaluator, the file evaluation and ``oneshot panoptic evaluate``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from _pq_cases import Case, write_case
from click.testing import CliRunner

from oneshot.cli import cli
from oneshot.errors import DatasetError
from oneshot_panoptic.data import write_panoptic_png
from oneshot_panoptic.evaluation import PanopticQuality
from oneshot_panoptic.structures import PanopticSegmentation

CATEGORIES = [{"id": 1, "isthing": 1}, {"id": 2, "isthing": 0}]


def _case() -> Case:
    gt = PanopticSegmentation(
        np.array([[10, 10, 20], [10, 0, 20]]),
        [
            {"id": 10, "category_id": 1, "iscrowd": 0, "area": 3},
            {"id": 20, "category_id": 2, "iscrowd": 0, "area": 2},
        ],
    )
    pred = PanopticSegmentation(
        np.array([[3, 3, 4], [3, 3, 4]]), [{"id": 3, "category_id": 1}, {"id": 4, "category_id": 2}]
    )
    return Case(CATEGORIES, [gt, gt], [pred, pred])


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _drop_prediction(p: dict[str, Path]) -> None:
    _edit_json(p["pred_json"], lambda d: d["annotations"].pop())


def _unknown_pred_category(p: dict[str, Path]) -> None:
    _edit_json(
        p["pred_json"], lambda d: d["annotations"][1]["segments_info"][0].update(category_id=99)
    )


def _unknown_gt_category(p: dict[str, Path]) -> None:
    _edit_json(
        p["gt_json"], lambda d: d["annotations"][0]["segments_info"][1].update(category_id=98)
    )


def _pred_id_not_in_json(p: dict[str, Path]) -> None:
    _edit_json(p["pred_json"], lambda d: d["annotations"][1]["segments_info"].pop())


def _json_id_not_in_pred_png(p: dict[str, Path]) -> None:
    _edit_json(
        p["pred_json"],
        lambda d: d["annotations"][0]["segments_info"].append({"id": 77, "category_id": 1}),
    )


def _gt_id_not_in_json(p: dict[str, Path]) -> None:
    write_panoptic_png(p["gt_folder"] / "0001.png", np.array([[10, 10, 20], [10, 55, 20]]))


def _wrong_size(p: dict[str, Path]) -> None:
    write_panoptic_png(p["pred_folder"] / "0000.png", np.array([[3, 3, 4, 4], [3, 3, 4, 4]]))


def _missing_png(p: dict[str, Path]) -> None:
    (p["pred_folder"] / "0001.png").unlink()


def _missing_folder(p: dict[str, Path]) -> None:
    p["gt_folder"] = p["gt_folder"].with_name("nowhere")


def _missing_json(p: dict[str, Path]) -> None:
    p["pred_json"] = p["pred_json"].with_name("nothing.json")


BREAKAGES = {
    "no prediction": (_drop_prediction, "no prediction for the image with id 1"),
    "unknown pred category": (_unknown_pred_category, "unknown category_id 99"),
    "unknown gt category": (_unknown_gt_category, "unknown category_id 98"),
    "png id not in json": (
        _pred_id_not_in_json,
        "predicted segment id 4 is in the PNG but not in segments_info",
    ),
    "json id not in png": (
        _json_id_not_in_pred_png,
        "predicted segment ids [77] are in segments_info but not in the PNG",
    ),
    "gt png id not in json": (
        _gt_id_not_in_json,
        "ground-truth segment id 55 is in the PNG but not in segments_info",
    ),
    "sizes": (_wrong_size, "image 0: prediction PNG 0000.png is 4x2, ground truth is 3x2"),
    "missing png": (_missing_png, "panoptic PNG not found"),
    "missing folder": (_missing_folder, "ground-truth folder not found"),
    "missing json": (_missing_json, "panoptic JSON not found"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_cli_reports_one_line(breakage: str, tmp_path: Path) -> None:
    paths = write_case(_case(), tmp_path)
    ok = CliRunner().invoke(
        cli,
        ["panoptic", "evaluate", *[str(x) for k, v in paths.items() for x in (f"--{k.replace('_', '-')}", v)]],
    )
    assert ok.exit_code == 0, ok.output
    assert "All" in ok.output and "Things" in ok.output and "Stuff" in ok.output

    breaker, message = BREAKAGES[breakage]
    breaker(paths)
    args = [str(x) for k, v in paths.items() for x in (f"--{k.replace('_', '-')}", v)]
    result = CliRunner().invoke(cli, ["panoptic", "evaluate", *args])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message in lines[0]


@pytest.mark.parametrize(
    ("as_torch", "backend"), [(False, "auto"), (True, "torch"), (True, "auto")]
)
def test_evaluator_rejects_bad_predictions(as_torch: bool, backend: str) -> None:
    gt = _case().gts[0]
    evaluator = PanopticQuality(CATEGORIES, backend=backend)

    def pred(seg_map: list[list[int]], segments: list[dict]) -> PanopticSegmentation:
        arr = torch.tensor(seg_map) if as_torch else np.array(seg_map)
        return PanopticSegmentation(arr, segments)

    good = [{"id": 3, "category_id": 1}, {"id": 4, "category_id": 2}]
    cases = [
        (
            pred([[3, 3, 4], [3, 3, 5]], good),
            "predicted segment id 5 is in the PNG but not in segments_info",
        ),
        (
            pred([[3, 3, 3], [3, 3, 3]], good),
            "predicted segment ids [4] are in segments_info but not in the PNG",
        ),
        (pred([[3, 3], [3, 3]], good), "prediction size (2, 2) differs from ground truth (2, 3)"),
        (
            pred([[3, 3, 4], [3, 3, 4]], [good[0], {"id": 4, "category_id": 9}]),
            "unknown category_id 9",
        ),
        (pred([[3, 3, 4], [3, 3, 4]], [good[0], {"id": 4}]), "has no integer 'category_id'"),
        (pred([[3, 3, -4], [3, 3, 4]], good), "image 5: prediction has a negative segment id -4"),
        (
            pred([[3, 3, 4], [3, 3, 4]], [*good, {"id": -2, "category_id": 1}]),
            "predicted segment id -2 is negative",
        ),
        (
            pred([[3, 3, 4], [3, 3, 4]], [*good, {"id": 2**40, "category_id": 1}]),
            "are in segments_info but not in the PNG",
        ),
    ]
    for bad, message in cases:
        with pytest.raises(
            DatasetError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
        ):
            evaluator.process(gt, bad, image_id=5)
    assert evaluator.num_images == 0  # nothing half-counted


def test_lenient_ground_truth_mirrors_panopticapi() -> None:
    """panopticapi ignores ground-truth ids missing from the JSON; strict=False does the same."""
    from oneshot_panoptic.evaluation import prepare_ground_truth

    gt = PanopticSegmentation(
        np.array([[10, 10, 66]]), [{"id": 10, "category_id": 1, "iscrowd": 0}]
    )
    with pytest.raises(DatasetError, match="segment id 66 is in the PNG"):
        prepare_ground_truth(gt)
    prepared = prepare_ground_truth(gt, strict=False)
    evaluator = PanopticQuality(CATEGORIES)
    evaluator.process(
        prepared, PanopticSegmentation(np.array([[3, 3, 3]]), [{"id": 3, "category_id": 1}])
    )
    # union = 3 + 2 - 2 - 0 (pixel 66 is neither VOID nor a segment) -> IoU 2/3: a match
    assert evaluator.stats()[1] == {"iou": 2 / 3, "tp": 1, "fp": 0, "fn": 0}
