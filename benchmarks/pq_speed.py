"""Speed of panoptic quality: oneshot vs panopticapi, side by side, with identical numbers.

Writes ``--images`` synthetic ground-truth / prediction pairs (COCO-panoptic PNG + JSON) of
``--width`` x ``--height`` into a temporary folder, then times, on one process:

1. panopticapi ``pq_compute`` (forced to one worker process) on the files;
2. ``oneshot panoptic evaluate``'s path (:func:`evaluate_panoptic_files`, one process) on the same files;
3. panopticapi's per-image computation with decoding excluded (PNG decoding and ``rgb2id``
   replaced by a lookup of the already decoded id maps) vs the in-memory evaluator
   (:class:`PanopticQuality` with ground truth prepared once, predictions as id maps in memory);
4. the torch path (predictions as tensors on the CPU, and on the GPU when there is one).

Each pair of contenders runs in turn within every repeat, so both see the same machine load.
All results must be equal (checked, the run fails otherwise). Prints a markdown table.

Usage: ``python benchmarks/pq_speed.py [--images 200] [--width 640] [--height 480] [--repeats 3]``
(needs ``pip install --no-deps panopticapi-lite``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oneshot_panoptic.data import read_panoptic_png, write_panoptic_png
from oneshot_panoptic.evaluation import (
    PanopticQuality,
    evaluate_panoptic_files,
    prepare_ground_truth,
)
from oneshot_panoptic.structures import PanopticSegmentation

THINGS = list(range(1, 81))
STUFF = list(range(92, 145))
CATEGORIES = [{"id": c, "name": f"c{c}", "isthing": int(c in THINGS)} for c in THINGS + STUFF]


def _ellipse(h: int, w: int, rng: np.random.Generator) -> tuple[slice, slice, np.ndarray]:
    ry, rx = rng.integers(8, h // 5), rng.integers(8, w // 5)
    cy, cx = rng.integers(ry, h - ry), rng.integers(rx, w - rx)
    yy = np.arange(cy - ry, cy + ry)[:, None]
    xx = np.arange(cx - rx, cx + rx)[None, :]
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    return slice(cy - ry, cy + ry), slice(cx - rx, cx + rx), mask


def make_pair(
    h: int, w: int, rng: np.random.Generator
) -> tuple[np.ndarray, list, np.ndarray, list]:
    """A COCO-like ground truth (large colour-coded ids, ~25 segments, crowd, VOID) and a
    fusion-like prediction (small ids, shifted borders, merges, misses and false positives)."""
    # stuff: a coarse random label grid, nearest-upsampled (blocky irregular regions)
    grid = rng.integers(0, 5, (6, 8))
    label = np.kron(grid, np.ones((h // 6 + 1, w // 8 + 1), dtype=np.int64))[:h, :w]
    stuff_cats = rng.choice(STUFF, 5, replace=False)
    gt_ids = rng.choice(np.arange(1, 2**24), 40, replace=False)
    gt = gt_ids[label].astype(np.uint32)
    segs = {int(gt_ids[k]): int(stuff_cats[k]) for k in range(5)}
    crowd = set()
    for k in range(5, 5 + int(rng.integers(12, 30))):
        ys, xs, mask = _ellipse(h, w, rng)
        gt[ys, xs][mask] = gt_ids[k]
        segs[int(gt_ids[k])] = int(rng.choice(THINGS[:10]))
        if rng.random() < 0.05:
            crowd.add(int(gt_ids[k]))
    gt[rng.integers(0, h, 20)[:, None], rng.integers(0, w, 200)[None, :]] = 0  # VOID speckles
    present = set(np.unique(gt).tolist()) - {0}
    gt_info = [
        {"id": i, "category_id": segs[i], "iscrowd": int(i in crowd), "area": int((gt == i).sum())}
        for i in sorted(present)
    ]
    # prediction: relabel to small ids, shift, damage
    pred_of = {i: n + 1 for n, i in enumerate(sorted(present))}
    for i in list(pred_of)[:: int(rng.integers(5, 9))]:
        pred_of[i] = pred_of[next(iter(pred_of))]  # merges
    lut_keys = np.array([0, *pred_of]), np.array([0, *pred_of.values()])
    order = np.argsort(lut_keys[0])
    pred = lut_keys[1][order][np.searchsorted(lut_keys[0][order], gt)]
    pred = np.roll(pred, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
    extra = max(pred_of.values()) + 1
    for k in range(int(rng.integers(2, 6))):
        ys, xs, mask = _ellipse(h, w, rng)
        pred[ys, xs][mask] = extra + k
    cat_of_pred = {p: segs[g] for g, p in pred_of.items()}
    for k in range(6):
        cat_of_pred[extra + k] = int(rng.choice(THINGS[:10]))
    pred_info = [
        {"id": int(p), "category_id": cat_of_pred[int(p)]} for p in np.unique(pred) if p != 0
    ]
    return gt, gt_info, pred.astype(np.uint32), pred_info


def write_dataset(root: Path, n: int, h: int, w: int, seed: int) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    paths = {
        "gt_json": root / "gt.json",
        "gt_folder": root / "gt",
        "pred_json": root / "pred.json",
        "pred_folder": root / "pred",
    }
    paths["gt_folder"].mkdir()
    paths["pred_folder"].mkdir()
    gt_anns, pred_anns = [], []
    for i in range(n):
        gt, gt_info, pred, pred_info = make_pair(h, w, rng)
        name = f"{i:06d}.png"
        write_panoptic_png(paths["gt_folder"] / name, gt)
        write_panoptic_png(paths["pred_folder"] / name, pred)
        gt_anns.append({"image_id": i, "file_name": name, "segments_info": gt_info})
        pred_anns.append({"image_id": i, "file_name": name, "segments_info": pred_info})
    paths["gt_json"].write_text(json.dumps({"annotations": gt_anns, "categories": CATEGORIES}))
    paths["pred_json"].write_text(json.dumps({"annotations": pred_anns}))
    return paths


def environment() -> str:
    """CPU model, core count and library versions, printed next to the timings."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    libs = []
    for name in ("numpy", "torch", "pillow", "panopticapi-lite"):
        with contextlib.suppress(PackageNotFoundError):
            libs.append(f"{name} {version(name)}")
    return f"{cpu}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}; " + ", ".join(libs)


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def best_of_each(repeats: int, *fns: Callable[[], Any]) -> list[tuple[float, Any]]:
    """Best time and result of each function, the functions run in turn in every repeat (so a
    change of machine load hits all of them alike)."""
    best = [float("inf")] * len(fns)
    results: list[Any] = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            results[i] = fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return list(zip(best, results, strict=True))


def _averages(stat: Any, categories: dict[int, dict]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
        results[name], per_class = stat.pq_average(categories, isthing=isthing)
        if name == "All":
            results["per_class"] = per_class
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument(
        "--repeats", type=int, default=3, help="best of this many runs per measurement"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one process, one core, for every contender

    import panopticapi.evaluation as pe

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_dataset(Path(tmp), args.images, args.height, args.width, args.seed)
        gt_json = json.loads(paths["gt_json"].read_text())
        pred_json = json.loads(paths["pred_json"].read_text())
        categories = {c["id"]: c for c in gt_json["categories"]}
        pairs = list(zip(gt_json["annotations"], pred_json["annotations"], strict=True))

        # 1-2. panopticapi pq_compute (one worker process) and oneshot panoptic evaluate's file
        # path (one process), interleaved so that both see the same machine load
        def api_files() -> dict[str, Any]:
            original_cpu_count = pe.multiprocessing.cpu_count
            pe.multiprocessing.cpu_count = lambda: 1
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    return pe.pq_compute(
                        str(paths["gt_json"]),
                        str(paths["pred_json"]),
                        str(paths["gt_folder"]),
                        str(paths["pred_folder"]),
                    )
            finally:
                pe.multiprocessing.cpu_count = original_cpu_count

        (t_pq_compute, ref_files), (t_files, ours_files) = best_of_each(
            args.repeats,
            api_files,
            lambda: evaluate_panoptic_files(
                paths["gt_json"], paths["gt_folder"], paths["pred_json"], paths["pred_folder"]
            ),
        )

        # 3. decoding excluded: panopticapi's per-image computation on decoded id maps vs the
        # in-memory evaluator on the same maps (ground truth prepared once), interleaved
        decoded = {
            str(p): read_panoptic_png(p)
            for folder in ("gt_folder", "pred_folder")
            for p in paths[folder].glob("*.png")
        }
        t_prepare, prepared = best_of(
            1,
            lambda: [
                prepare_ground_truth(
                    PanopticSegmentation(
                        decoded[str(paths["gt_folder"] / g["file_name"])], g["segments_info"]
                    ),
                    image_id=g["image_id"],
                )
                for g, _ in pairs
            ],
        )
        preds = [
            PanopticSegmentation(
                decoded[str(paths["pred_folder"] / p["file_name"])], p["segments_info"]
            )
            for _, p in pairs
        ]

        def in_memory(
            pred_list: list[PanopticSegmentation], backend: str = "auto"
        ) -> dict[str, Any]:
            evaluator = PanopticQuality(gt_json["categories"], backend=backend)
            for gt, pred in zip(prepared, pred_list, strict=True):
                evaluator.process(gt, pred)
            if (
                pred_list
                and isinstance(pred_list[0].seg_map, torch.Tensor)
                and pred_list[0].seg_map.is_cuda
            ):
                torch.cuda.synchronize()
            return evaluator.evaluate()

        original_open, original_rgb2id = pe.Image.open, pe.rgb2id
        pe.Image.open, pe.rgb2id = (lambda path: decoded[str(path)]), (lambda ids: ids)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                (t_api_core, stat), (t_memory, ours_memory) = best_of_each(
                    args.repeats,
                    lambda: pe.pq_compute_single_core(
                        0, pairs, str(paths["gt_folder"]), str(paths["pred_folder"]), categories
                    ),
                    lambda: in_memory(preds),
                )
        finally:
            pe.Image.open, pe.rgb2id = original_open, original_rgb2id
        ref_core = _averages(stat, categories)

        # 4. torch path: counting with torch on the tensors' device
        torch_rows = []
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for device in devices:
            tensors = [
                PanopticSegmentation(
                    torch.from_numpy(p.seg_map.astype(np.int64)).to(device), p.segments
                )
                for p in preds
            ]
            in_memory(
                tensors, "torch"
            )  # warm-up (device copies of the prepared ground truth are cached)
            t_torch, ours_torch = best_of(
                args.repeats, lambda tensors=tensors: in_memory(tensors, "torch")
            )
            assert ours_torch == ref_core, f"torch path on {device} differs from panopticapi"
            name = torch.cuda.get_device_name() if device == "cuda" else "1 thread"
            torch_rows.append(
                (f"in-memory evaluator, torch counting on {device} ({name})", t_torch)
            )

    assert ref_files == ref_core, "panopticapi's pq_compute and its core disagree"
    assert ours_files == ref_core, "oneshot file evaluation differs from panopticapi"
    assert ours_memory == ref_core, "oneshot in-memory evaluation differs from panopticapi"

    n = args.images
    r = ref_core["All"]
    print(
        f"{n} images of {args.width}x{args.height}; torch threads 1; load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(environment())
    print(
        f"identical results everywhere: PQ {100 * r['pq']:.3f} SQ {100 * r['sq']:.3f} RQ {100 * r['rq']:.3f} n {r['n']}"
    )
    print()
    print("| measurement | total (s) | per image (ms) | speed-up |")
    print("|---|---:|---:|---:|")
    rows = [
        ("panopticapi `pq_compute`, 1 process, files", t_pq_compute, None),
        ("`oneshot panoptic evaluate` path, 1 process, files", t_files, t_pq_compute / t_files),
        ("panopticapi per-image computation, decoding excluded", t_api_core, None),
        ("in-memory evaluator, prepared ground truth, numpy", t_memory, t_api_core / t_memory),
    ]
    rows += [(label, t, t_api_core / t) for label, t in torch_rows]
    for label, t, speedup in rows:
        ratio = f"{speedup:.1f}x" if speedup else "1.0x (ref)"
        print(f"| {label} | {t:.3f} | {1000 * t / n:.2f} | {ratio} |")
    print(
        f"| ground-truth preparation, once per split (not in the above) | {t_prepare:.3f} | {1000 * t_prepare / n:.2f} | |"
    )


if __name__ == "__main__":
    main()
