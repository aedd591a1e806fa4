"""The ``bench`` variant: deterministic, valid COCO-panoptic, and built as designed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from oneshot_panoptic.config import PRESETS, PanopticConfig
from oneshot_panoptic.data import (
    BENCH_CATEGORIES,
    BENCH_STUFF_PAIRS,
    CocoPanoptic,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    split_paths,
    synthetic_sample,
)
from oneshot_panoptic.data.synthetic_bench import stuff_texture
from tests.oneshot_panoptic.data._synthetic_cases import folder_digest, thing_and_stuff_ids

THINGS, STUFF = thing_and_stuff_ids(BENCH_CATEGORIES)


def test_deterministic_per_seed_and_distinct_from_standard(tmp_path: Path) -> None:
    kw = {"num_images": 6, "size": 48}
    generate_synthetic_dataset(tmp_path / "a", seed=3, variant="bench", **kw)
    generate_synthetic_dataset(tmp_path / "b", seed=3, variant="bench", **kw)
    generate_synthetic_dataset(tmp_path / "c", seed=4, variant="bench", **kw)
    generate_synthetic_dataset(tmp_path / "d", seed=3, **kw)
    assert folder_digest(tmp_path / "a") == folder_digest(tmp_path / "b")
    assert folder_digest(tmp_path / "a") != folder_digest(tmp_path / "c")
    assert folder_digest(tmp_path / "a") != folder_digest(tmp_path / "d")


def test_ensure_regenerates_when_the_variant_changes(tmp_path: Path) -> None:
    ensure_synthetic_dataset(tmp_path, num_images=3, size=40, seed=0)
    paths = ensure_synthetic_dataset(tmp_path, num_images=3, size=40, seed=0, variant="bench")
    data = json.loads(paths["train"].panoptic_json.read_text())
    assert data["info"]["variant"] == "bench"
    assert data["categories"] == [dict(c) for c in BENCH_CATEGORIES]
    with pytest.raises(ValueError, match="unknown synthetic variant"):
        ensure_synthetic_dataset(tmp_path, num_images=3, size=40, seed=0, variant="hard")


def test_valid_coco_panoptic(tmp_path: Path) -> None:
    paths = generate_synthetic_dataset(tmp_path, num_images=12, size=64, seed=1, variant="bench")
    for split in paths:
        ds = CocoPanoptic(*split_paths(tmp_path, split))
        assert ds.validate() == len(ds)
        assert (ds.metadata.num_things, ds.metadata.num_stuff) == (4, 4)
        for i in range(len(ds)):
            gt = ds.load_panoptic(i)
            seg_map = np.asarray(gt.seg_map)
            ids, counts = np.unique(seg_map[seg_map > 0], return_counts=True)
            info = {s["id"]: s for s in gt.segments}
            assert sorted(info) == ids.tolist()
            assert all(info[k]["area"] == c for k, c in zip(ids.tolist(), counts.tolist()))
            stuff = [s["category_id"] for s in gt.segments if s["category_id"] in STUFF]
            assert len(stuff) == len(set(stuff)) >= 1  # one segment per stuff class
            assert {s["category_id"] for s in gt.segments} <= THINGS | STUFF


def test_stuff_pairs_share_colour_statistics_but_not_structure() -> None:
    size, draws = 96, 40
    for a, b in BENCH_STUFF_PAIRS:
        ta = np.stack([stuff_texture(a, np.random.default_rng([0, i]), size) for i in range(draws)])
        tb = np.stack([stuff_texture(b, np.random.default_rng([1, i]), size) for i in range(draws)])
        # identical per-pixel colour distribution: mean, sd and quartiles per channel
        for stat in (np.mean, np.std, lambda x, axis: np.percentile(x, 25, axis=axis)):
            assert np.allclose(stat(ta.reshape(-1, 3), axis=0), stat(tb.reshape(-1, 3), axis=0), atol=3.0)
    # ...told apart at a larger scale: checkerboard cells always alternate, patchwork half the time
    cell = size // 12
    tiles, patch = (stuff_texture(c, np.random.default_rng(5), size)[..., 0] for c in (21, 22))
    centres = np.arange(cell // 2 + cell, size - cell, cell)

    def changes(t: np.ndarray) -> float:
        return float(np.mean(t[centres[:, None], centres[None, :]] != t[centres[:, None], centres[None, :] + cell]))

    assert changes(tiles) == 1.0 and 0.2 < changes(patch) < 0.8
    # ...and waves differ by their period (size / 24 vs size / 6) along the wave direction
    for cat, period in ((23, size / 24), (24, size / 6)):
        t = stuff_texture(cat, np.random.default_rng(7), size)[..., 2]
        spectrum = np.abs(np.fft.fft2(t - t.mean()))
        fy, fx = np.unravel_index(np.argmax(spectrum), spectrum.shape)
        freq = np.hypot(min(fy, size - fy), min(fx, size - fx)) / size
        assert freq == pytest.approx(1 / period, rel=0.25)


def test_thin_bars_small_things_and_clutter() -> None:
    size = 96
    bar_areas, thing_counts, small = [], [], 0
    for i in range(40):
        s = synthetic_sample(size, np.random.default_rng([2, i]), "bench")
        things = [g for g in s.panoptic.segments if g["category_id"] in THINGS and not g["iscrowd"]]
        thing_counts.append(len(things))
        bar_areas += [g["area"] for g in things if g["category_id"] == 4]
        small += sum(g["area"] < (size / 12) ** 2 for g in things)
    assert bar_areas and max(bar_areas) <= (0.05 * size + 2) * (0.4 * size + 2)
    assert max(thing_counts) >= 7 and min(thing_counts) >= 1 and np.mean(thing_counts) > 4
    assert small >= 20  # many things smaller than an 8x8 square at 96 px


def test_bench_preset_is_valid_and_tiny_unchanged() -> None:
    cfg = PanopticConfig.model_validate(PRESETS["bench"])
    # the preset that met the seed criterion: standard scenes, a retraining that converges
    assert cfg.data.synthetic.variant == "standard" and cfg.data.synthetic.size == 96
    assert cfg.retrain.schedule == "cosine" and cfg.retrain.iterations == 600
    assert PanopticConfig.model_validate({"data": {"synthetic": {"variant": "bench"}}}).data.synthetic.variant == "bench"
    assert PanopticConfig.model_validate(PRESETS["tiny"]).data.synthetic.variant == "standard"
    with pytest.raises(ValueError):
        PanopticConfig.model_validate({"data": {"synthetic": {"variant": "hard"}}})
