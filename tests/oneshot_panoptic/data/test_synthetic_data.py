"""The synthetic dataset: deterministic COCO-panoptic files that CocoPanoptic reads like COCO."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from oneshot.cli import cli
from oneshot.errors import DatasetError
from oneshot_panoptic.data import (
    SYNTHETIC_CATEGORIES,
    CocoPanoptic,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    split_counts,
    split_paths,
    synthetic_sample,
)
from oneshot_panoptic.evaluation import PanopticQuality
from oneshot_panoptic.structures import PanopticSegmentation
from tests.oneshot_panoptic.data._synthetic_cases import folder_digest, thing_and_stuff_ids

THINGS, STUFF = thing_and_stuff_ids(SYNTHETIC_CATEGORIES)


def test_cli_synth_round_trips_through_coco_panoptic(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = ["panoptic", "data", "synth", "--out", str(out), "--num-images", "10", "--size", "40", "--seed", "5"]
    result = CliRunner().invoke(cli, [*args, "--splits", "train=6,nas_val=2,val=2"])
    assert result.exit_code == 0, result.output
    for split, count in {"train": 6, "nas_val": 2, "val": 2}.items():
        paths = split_paths(out, split)
        assert (
            len(list(paths.image_dir.glob("*.jpg")))
            == len(list(paths.panoptic_dir.glob("*.png")))
            == count
        )
        dataset = CocoPanoptic(*paths)
        assert dataset.validate() == count
        assert (dataset.metadata.num_things, dataset.metadata.num_stuff) == (3, 4)
        data = json.loads(paths.panoptic_json.read_text())
        assert data["categories"] == [dict(c) for c in SYNTHETIC_CATEGORIES]
        for index in range(count):
            image, target = dataset[index]
            ann = data["annotations"][index]
            assert image.shape == (3, 40, 40)
            things = [
                s for s in ann["segments_info"] if s["category_id"] in THINGS and not s["iscrowd"]
            ]
            assert target["masks"].flatten(1).sum(1).tolist() == [s["area"] for s in things]
            assert target["panoptic"].segments == ann["segments_info"]
    ids = [
        img["id"]
        for s in ("train", "nas_val", "val")
        for img in json.loads(split_paths(out, s).panoptic_json.read_text())["images"]
    ]
    assert len(set(ids)) == 10  # splits are disjoint

    again = CliRunner().invoke(cli, [*args])
    assert (
        again.exit_code != 0
        and "exists already" in again.output
        and "Traceback" not in again.output
    )
    bad = CliRunner().invoke(
        cli, ["panoptic", "data", "synth", "--out", str(tmp_path / "x"), "--splits", "train=0"]
    )
    assert bad.exit_code != 0 and bad.output.startswith(
        "Error: split 'train' needs a positive weight"
    )
    check = CliRunner().invoke(
        cli,
        [
            "panoptic",
            "data",
            "validate",
            *sum(
                [
                    [f"--{k}", str(v)]
                    for k, v in zip(
                        ("image-dir", "panoptic-json", "panoptic-dir"),
                        split_paths(out, "val"),
                        strict=True,
                    )
                ],
                [],
            ),
        ],
    )
    assert check.exit_code == 0 and check.output.startswith("ok: 2 images")


def test_generation_is_deterministic_from_the_seed(tmp_path: Path) -> None:
    kwargs = {"num_images": 4, "size": 32, "splits": {"train": 3, "val": 1}}
    generate_synthetic_dataset(tmp_path / "a", seed=1, **kwargs)
    generate_synthetic_dataset(tmp_path / "b", seed=1, **kwargs)
    generate_synthetic_dataset(tmp_path / "c", seed=2, **kwargs)
    assert folder_digest(tmp_path / "a") == folder_digest(tmp_path / "b")
    assert folder_digest(tmp_path / "a") != folder_digest(tmp_path / "c")
    with pytest.raises(DatasetError, match="exists already"):
        generate_synthetic_dataset(tmp_path / "a", seed=1, **kwargs)
    generate_synthetic_dataset(tmp_path / "a", seed=2, overwrite=True, **kwargs)
    assert folder_digest(tmp_path / "a") == folder_digest(tmp_path / "c")


def test_ensure_reuses_the_same_dataset_and_regenerates_otherwise(tmp_path: Path) -> None:
    kwargs = {"num_images": 3, "size": 24, "splits": {"train": 2, "val": 1}}
    first = ensure_synthetic_dataset(tmp_path, seed=0, **kwargs)
    stamp = first["train"].panoptic_json.stat().st_mtime_ns
    assert ensure_synthetic_dataset(tmp_path, seed=0, **kwargs) == first
    assert first["train"].panoptic_json.stat().st_mtime_ns == stamp
    ensure_synthetic_dataset(tmp_path, seed=9, **kwargs)
    assert json.loads(first["train"].panoptic_json.read_text())["info"]["seed"] == 9


def test_content_is_worth_learning() -> None:
    """Several textured stuff classes, things of every class at varied sizes (>= size/16), same-class
    instances touching, occasional crowd and VOID."""
    size, n = 128, 40
    seen, sides, touching, crowd, void = set(), [], 0, 0, 0
    for i in range(n):
        sample = synthetic_sample(size, np.random.default_rng([3, i]))
        seg_map, segments = np.asarray(sample.panoptic.seg_map), sample.panoptic.segments
        cat = {s["id"]: s["category_id"] for s in segments}
        seen |= set(cat.values())
        assert sum(c in THINGS for c in cat.values()) >= 2
        assert sum(c in STUFF for c in cat.values()) >= 1
        for s in segments:
            pixels = sample.image[seg_map == s["id"]].astype(np.float64)
            if s["category_id"] in STUFF and len(pixels) > 50:
                assert pixels.std(axis=0).mean() > 4, "stuff must be textured, not flat"
            if s["category_id"] in THINGS and not s["iscrowd"]:
                sides.append(min(s["bbox"][2:]))
        crowd += any(s["iscrowd"] for s in segments)
        void += bool((seg_map == 0).any())
        pairs = set()
        for a, b in ((seg_map[:, 1:], seg_map[:, :-1]), (seg_map[1:], seg_map[:-1])):
            edge = a != b
            pairs |= set(zip(a[edge].tolist(), b[edge].tolist(), strict=True))
        touching += any(cat.get(p) == cat.get(q) and cat.get(p) in THINGS for p, q in pairs)
    assert seen == THINGS | STUFF
    assert min(sides) >= size / 16 and max(sides) >= 3 * min(sides)
    assert touching >= n // 5 and 0 < crowd < n and 0 < void < n


def test_perfect_prediction_scores_one_and_swapped_thing_classes_zero() -> None:
    categories = list(SYNTHETIC_CATEGORIES)
    perfect, swapped = PanopticQuality(categories), PanopticQuality(categories)
    rotate = {1: 2, 2: 3, 3: 1}
    for i in range(4):
        gt = synthetic_sample(48, np.random.default_rng([8, i])).panoptic
        perfect.process(gt, gt)
        wrong = [
            {**s, "category_id": rotate.get(s["category_id"], s["category_id"])}
            for s in gt.segments
        ]
        swapped.process(gt, PanopticSegmentation(gt.seg_map, wrong))
    assert perfect.evaluate()["All"]["pq"] == 1.0
    results = swapped.evaluate()
    assert results["Things"]["pq"] == 0.0 and results["Stuff"]["pq"] == 1.0


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 500), weights=st.lists(st.floats(0.01, 100), min_size=1, max_size=3))
def test_split_counts_share_out_every_image(n: int, weights: list[float]) -> None:
    splits = {f"s{i}": w for i, w in enumerate(weights)}
    counts = split_counts(n, splits)
    assert sum(counts.values()) == n and min(counts.values()) >= 1
    total = sum(weights)
    for name, w in splits.items():
        assert abs(counts[name] - n * w / total) <= len(weights) + 1
