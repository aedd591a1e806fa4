"""Shared helpers of the PQ tests: reference data, random panoptic cases, files, panopticapi."""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from oneshot_panoptic.data import write_panoptic_png
from oneshot_panoptic.structures import PanopticSegmentation

SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
TFMODELS = SHARED_DATA / "tfmodels_deeplab_panoptic_sample"
PANOPTICAPI_SAMPLE = SHARED_DATA / "panopticapi_sample"


def parse_tfmodels_reference() -> dict[str, dict[str, float]]:
    """The full-precision ``pq_compute`` results listed in the tfmodels sample's SOURCE.txt."""
    text = (TFMODELS / "SOURCE.txt").read_text()
    out: dict[str, dict[str, float]] = {}
    for name in ("All", "Things", "Stuff"):
        m = re.search(rf"^\s*{name}\s+pq=(\S+)\s+sq=(\S+)\s+rq=(\S+)\s+n=(\d+)", text, flags=re.M)
        assert m, f"no {name} line in SOURCE.txt"
        out[name] = {"pq": float(m[1]), "sq": float(m[2]), "rq": float(m[3]), "n": int(m[4])}
    per_class = {}
    block = text[text.index("per class pq:") :]
    for cid, pq in re.findall(
        r"(?:^|[:,])\s*(\d+) [a-z-]+ ([0-9.]+)", block.split("Golden")[0], flags=re.M
    ):
        per_class[int(cid)] = float(pq)
    out["per_class_pq"] = per_class  # type: ignore[assignment]
    return out


def parse_shift_reference() -> dict[int, dict[str, dict[str, float]]]:
    """The 6-digit results of the np.roll-shifted predictions in panopticapi_sample/SOURCE.txt."""
    text = (PANOPTICAPI_SAMPLE / "SOURCE.txt").read_text()
    out: dict[int, dict[str, dict[str, float]]] = {}
    for shift, rest in re.findall(r"s=(\d+)\s*:\s*(All.*)", text):
        groups = {}
        for name, pq, sq, rq in re.findall(r"(All|Things|Stuff) pq=(\S+) sq=(\S+) rq=(\S+)", rest):
            groups[name] = {"pq": float(pq), "sq": float(sq), "rq": float(rq)}
        out[int(shift)] = groups
    assert set(out) == {8, 32, 64}, "SOURCE.txt shift cases not found"
    return out


def roll_predictions(out_dir: Path, shift: int) -> tuple[Path, Path]:
    """Write the panopticapi sample's GT PNGs rolled by ``shift`` along axis 1 (+ the same JSON)."""
    from PIL import Image

    gt = json.loads((PANOPTICAPI_SAMPLE / "panoptic_examples.json").read_text())
    folder = out_dir / f"shift{shift}"
    folder.mkdir(parents=True)
    for ann in gt["annotations"]:
        png = np.array(Image.open(PANOPTICAPI_SAMPLE / "panoptic_examples" / ann["file_name"]))
        Image.fromarray(np.roll(png, shift, axis=1)).save(folder / ann["file_name"])
    pred_json = out_dir / f"shift{shift}.json"
    pred_json.write_text(json.dumps(gt))
    return pred_json, folder


# -- random cases ----------------------------------------------------------------------------


@dataclass
class Case:
    categories: list[dict[str, Any]]
    gts: list[PanopticSegmentation]
    preds: list[PanopticSegmentation]


def _paint(rng: np.random.Generator, canvas: np.ndarray, values: list[int], n: int) -> None:
    h, w = canvas.shape
    for _ in range(n):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = int(rng.integers(y0 + 1, h + 1)), int(rng.integers(x0 + 1, w + 1))
        canvas[y0:y1, x0:x1] = values[int(rng.integers(len(values)))]


def _distinct_ids(rng: np.random.Generator, n: int, high: int) -> list[int]:
    return [int(v) for v in rng.choice(np.arange(1, high), size=n, replace=False)]


def random_case(seed: int, *, num_images: int = 2, max_side: int = 12) -> Case:
    """Random categories, ground truth and predictions with crowd, VOID, merges, misses, id 0."""
    rng = np.random.default_rng(seed)
    n_things, n_stuff = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    cat_ids = _distinct_ids(rng, n_things + n_stuff, 300)
    categories = [
        {"id": c, "name": f"c{c}", "isthing": int(i < n_things)} for i, c in enumerate(cat_ids)
    ]
    rng.shuffle(categories)
    id_high = int(rng.choice([50, 1 << 24]))
    gts, preds = [], []
    for _ in range(num_images):
        h, w = int(rng.integers(2, max_side + 1)), int(rng.integers(2, max_side + 1))
        k = int(rng.integers(1, 7))
        gt_ids = _distinct_ids(rng, k, id_high)
        gt_map = np.full((h, w), gt_ids[0] if rng.random() < 0.7 else 0, dtype=np.int64)
        _paint(rng, gt_map, [*gt_ids, 0], int(rng.integers(1, 8)))
        gt_cat = {i: int(rng.choice(cat_ids)) for i in gt_ids}
        gt_segments = [
            {
                "id": i,
                "category_id": gt_cat[i],
                "iscrowd": int(rng.random() < 0.2),
                "area": int((gt_map == i).sum()),
            }
            for i in gt_ids
            if (gt_map == i).any()
        ]
        # prediction: a relabelled copy of the ground truth (some segments merged), then damaged
        kp = int(rng.integers(1, 7))
        pred_ids = _distinct_ids(rng, kp, id_high)
        if rng.random() < 0.2:
            pred_ids[0] = 0  # a listed segment with id 0 is a real segment
        relabel = {i: pred_ids[int(rng.integers(kp))] for i in gt_ids}
        relabel[0] = 0 if rng.random() < 0.5 else pred_ids[int(rng.integers(kp))]
        pred_map = np.vectorize(relabel.__getitem__, otypes=[np.int64])(gt_map)
        unlisted_zero = [0] if pred_ids[0] != 0 else []
        _paint(rng, pred_map, [*pred_ids, *unlisted_zero], int(rng.integers(0, 5)))
        pred_cat = {}
        for i in pred_ids:
            sources = [g for g, p in relabel.items() if p == i and g in gt_cat]
            same = sources and rng.random() < 0.8
            pred_cat[i] = gt_cat[sources[0]] if same else int(rng.choice(cat_ids))
        pred_segments = [
            {"id": i, "category_id": pred_cat[i]} for i in pred_ids if (pred_map == i).any()
        ]
        gts.append(PanopticSegmentation(gt_map, gt_segments))
        preds.append(PanopticSegmentation(pred_map, pred_segments))
    return Case(categories, gts, preds)


def write_case(case: Case, root: Path) -> dict[str, Path]:
    """Write a case as COCO-panoptic files; returns the four paths of ``oneshot panoptic evaluate``."""
    paths = {
        "gt_json": root / "gt.json",
        "gt_folder": root / "gt",
        "pred_json": root / "pred.json",
        "pred_folder": root / "pred",
    }
    paths["gt_folder"].mkdir(parents=True, exist_ok=True)
    paths["pred_folder"].mkdir(parents=True, exist_ok=True)
    gt_anns, pred_anns = [], []
    for i, (gt, pred) in enumerate(zip(case.gts, case.preds, strict=True)):
        name = f"{i:04d}.png"
        write_panoptic_png(paths["gt_folder"] / name, np.asarray(gt.seg_map))
        write_panoptic_png(paths["pred_folder"] / name, np.asarray(pred.seg_map))
        gt_anns.append({"image_id": i, "file_name": name, "segments_info": gt.segments})
        pred_anns.append({"image_id": i, "file_name": name, "segments_info": pred.segments})
    paths["gt_json"].write_text(json.dumps({"annotations": gt_anns, "categories": case.categories}))
    paths["pred_json"].write_text(json.dumps({"annotations": pred_anns}))
    return paths


def panopticapi_results(paths: dict[str, Path]) -> dict[str, Any]:
    """panopticapi's numbers on files: its per-image core on one process, then its averaging.

    (``pq_compute`` itself forks one process per CPU; the single-core path is its exact body.)
    """
    from panopticapi.evaluation import pq_compute_single_core

    gt = json.loads(paths["gt_json"].read_text())
    pred = json.loads(paths["pred_json"].read_text())
    categories = {c["id"]: c for c in gt["categories"]}
    preds = {a["image_id"]: a for a in pred["annotations"]}
    pairs = [(a, preds[a["image_id"]]) for a in gt["annotations"]]
    with contextlib.redirect_stdout(io.StringIO()):
        stat = pq_compute_single_core(
            0, pairs, str(paths["gt_folder"]), str(paths["pred_folder"]), categories
        )
    results: dict[str, Any] = {}
    for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
        try:
            results[name], per_class = stat.pq_average(categories, isthing=isthing)
        except ZeroDivisionError:  # no scored category in the group: we report zeros there
            results[name] = {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}
            per_class = {cid: {"pq": 0.0, "sq": 0.0, "rq": 0.0} for cid in categories}
        if name == "All":
            results["per_class"] = per_class
    return results
