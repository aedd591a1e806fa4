"""Random cases: PQ equals panopticapi bit for bit; properties that hold without panopticapi."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from _pq_cases import Case, panopticapi_results, random_case, write_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oneshot_panoptic.evaluation import (
    PanopticQuality,
    evaluate_panoptic_files,
    prepare_ground_truth,
)
from oneshot_panoptic.structures import PanopticSegmentation

HAS_PANOPTICAPI = importlib.util.find_spec("panopticapi") is not None
seeds = st.integers(min_value=0, max_value=2**32 - 1)
fast = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _evaluate(
    case: Case, *, torch_device: str | None = None, prepared: bool = False, backend: str = "auto"
) -> dict:
    evaluator = PanopticQuality(case.categories, backend=backend)
    for i, (gt, pred) in enumerate(zip(case.gts, case.preds, strict=True)):
        if torch_device is not None:
            pred = PanopticSegmentation(
                torch.as_tensor(np.asarray(pred.seg_map)).to(torch_device), pred.segments
            )
        evaluator.process(
            prepare_ground_truth(gt, image_id=i) if prepared else gt, pred, image_id=i
        )
    return evaluator.evaluate()


@pytest.mark.skipif(
    not HAS_PANOPTICAPI, reason="panopticapi not installed (pip install --no-deps panopticapi-lite)"
)
@fast
@given(seed=seeds, num_images=st.integers(1, 3))
def test_equals_panopticapi_exactly(seed: int, num_images: int) -> None:
    case = random_case(seed, num_images=num_images)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_case(case, Path(tmp))
        reference = panopticapi_results(paths)
        from_files = evaluate_panoptic_files(
            paths["gt_json"], paths["gt_folder"], paths["pred_json"], paths["pred_folder"]
        )
    assert _evaluate(case) == reference
    assert from_files == reference


@fast
@given(seed=seeds)
def test_torch_and_prepared_paths_equal_numpy(seed: int) -> None:
    case = random_case(seed, num_images=2)
    expected = _evaluate(case)
    assert _evaluate(case, prepared=True) == expected
    assert _evaluate(case, torch_device="cpu", backend="torch") == expected
    assert _evaluate(case, torch_device="cpu") == expected
    if torch.cuda.is_available():
        assert _evaluate(case, torch_device="cuda") == expected
    assert _evaluate(case, torch_device="cpu", backend="numpy") == expected


@fast
@given(seed=seeds)
def test_perfect_prediction_and_relabelling(seed: int) -> None:
    case = random_case(seed, num_images=2)
    perfect_preds = []  # the ground truth with crowd regions left unlabelled (VOID)
    for gt in case.gts:
        seg_map = np.asarray(gt.seg_map).copy()
        for s in gt.segments:
            if s["iscrowd"]:
                seg_map[seg_map == s["id"]] = 0
        perfect_preds.append(
            PanopticSegmentation(seg_map, [s for s in gt.segments if not s["iscrowd"]])
        )
    perfect = Case(case.categories, case.gts, perfect_preds)
    results = _evaluate(perfect)
    scored = {s["category_id"] for gt in case.gts for s in gt.segments if not s["iscrowd"]}
    for cid, values in results["per_class"].items():
        assert values == (
            {"pq": 1.0, "sq": 1.0, "rq": 1.0}
            if cid in scored
            else {"pq": 0.0, "sq": 0.0, "rq": 0.0}
        )
    assert results["All"]["n"] == len(scored)

    # renaming predicted ids (a bijection that keeps VOID) changes nothing
    rng = np.random.default_rng(seed)
    renamed = []
    for pred in case.preds:
        ids = sorted({int(s["id"]) for s in pred.segments} | {0})
        new = rng.choice(np.arange(1, 2**24), size=len(ids), replace=False)
        mapping = {i: (0 if i == 0 else int(n)) for i, n in zip(ids, new, strict=True)}
        seg_map = np.vectorize(mapping.__getitem__, otypes=[np.int64])(np.asarray(pred.seg_map))
        renamed.append(
            PanopticSegmentation(
                seg_map, [{**s, "id": mapping[int(s["id"])]} for s in pred.segments]
            )
        )
    assert _evaluate(Case(case.categories, case.gts, renamed)) == _evaluate(case)


def test_accumulation_reset_and_merge() -> None:
    case = random_case(7, num_images=3)
    whole = _evaluate(case)
    first, second = PanopticQuality(case.categories), PanopticQuality(case.categories)
    first.process(case.gts[0], case.preds[0])
    for gt, pred in zip(case.gts[1:], case.preds[1:], strict=True):
        second.process(gt, pred)
    first.merge(second)
    assert first.num_images == 3
    merged = first.evaluate()
    for group in ("All", "Things", "Stuff"):
        assert merged[group]["n"] == whole[group]["n"]
        for key in ("pq", "sq", "rq"):
            assert merged[group][key] == pytest.approx(whole[group][key], abs=1e-12)
    first.reset()
    assert first.num_images == 0
    assert all(v == {"iou": 0.0, "tp": 0, "fp": 0, "fn": 0} for v in first.stats().values())
