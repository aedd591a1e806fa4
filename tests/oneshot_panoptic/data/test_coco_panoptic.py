"""CocoPanoptic on the two real COCO val images of the shared panopticapi sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from oneshot.errors import DatasetError
from oneshot_panoptic.data import CocoPanoptic, collate_fn, read_panoptic_png, write_panoptic_png
from oneshot_panoptic.structures import IGNORE_LABEL

SAMPLE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "panopticapi_sample"
pytestmark = pytest.mark.skipif(
    not (SAMPLE / "panoptic_examples.json").exists(), reason=f"shared sample absent: {SAMPLE}"
)


def _dataset(root: Path = SAMPLE) -> CocoPanoptic:
    return CocoPanoptic(
        root / "input_images", root / "panoptic_examples.json", root / "panoptic_examples"
    )


def _json() -> dict:
    return json.loads((SAMPLE / "panoptic_examples.json").read_text())


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "sample"
    for name in ("input_images", "panoptic_examples"):
        shutil.copytree(SAMPLE / name, root / name)
    shutil.copy(SAMPLE / "panoptic_examples.json", root / "panoptic_examples.json")
    return root


def test_targets_match_the_json() -> None:
    dataset = _dataset()
    data = _json()
    cats = {c["id"]: c for c in data["categories"]}
    meta = dataset.metadata
    assert (meta.num_things, meta.num_stuff) == (80, 53)
    assert dataset.categories == data["categories"]
    assert len(dataset) == len(data["annotations"]) == 2
    images = {img["id"]: img for img in data["images"]}
    for index, ann in enumerate(data["annotations"]):
        image, target = dataset[index]
        info = images[ann["image_id"]]
        assert image.shape == (3, info["height"], info["width"]) and image.dtype == torch.float32
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
        assert target["image_id"] == ann["image_id"]
        assert target["orig_size"].tolist() == [info["height"], info["width"]]

        segs = ann["segments_info"]
        things = [s for s in segs if cats[s["category_id"]]["isthing"] and not s["iscrowd"]]
        stuff = [s for s in segs if not cats[s["category_id"]]["isthing"] and not s["iscrowd"]]
        crowd = [s for s in segs if s["iscrowd"]]
        assert len(target["labels"]) == len(target["boxes"]) == len(target["masks"]) == len(things)
        assert [meta.thing_label_to_category(int(lab)) for lab in target["labels"]] == [
            s["category_id"] for s in things
        ]
        assert target["masks"].dtype == torch.uint8
        assert target["masks"].flatten(1).sum(1).tolist() == [s["area"] for s in things]
        assert target["area"].tolist() == [float(s["area"]) for s in things]
        expected_boxes = [[x, y, x + w, y + h] for x, y, w, h in (s["bbox"] for s in things)]
        assert target["boxes"].tolist() == expected_boxes
        for mask, box in zip(
            target["masks"], target["boxes"], strict=True
        ):  # boxes enclose masks tightly
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert [
                int(xs.min()),
                int(ys.min()),
                int(xs.max()) + 1,
                int(ys.max()) + 1,
            ] == box.int().tolist()

        semantic = target["semantic"]
        assert semantic.dtype == torch.int64 and semantic.shape == image.shape[1:]
        assert int((semantic == 0).sum()) == sum(s["area"] for s in things)
        for s in stuff:
            cls = meta.stuff_ids.index(s["category_id"]) + 1
            assert meta.semantic_class_to_category(cls) == s["category_id"]
            assert int((semantic == cls).sum()) == s["area"]
        png = read_panoptic_png(SAMPLE / "panoptic_examples" / ann["file_name"])
        void = int((png == 0).sum())
        assert int((semantic == IGNORE_LABEL).sum()) == void + sum(s["area"] for s in crowd)
        assert set(semantic.unique().tolist()) <= {0, IGNORE_LABEL, *range(1, meta.num_stuff + 1)}

        panoptic = target["panoptic"]
        assert torch.equal(panoptic.seg_map, torch.from_numpy(png.astype(np.int64)))
        assert panoptic.segments == segs


def test_source_facts_about_crowd_and_void() -> None:
    """SOURCE.txt: 142238 has 18 segments (1 crowd) and 2712 VOID px; 439180 has 32 (2 crowd), 7189."""
    dataset = _dataset()
    facts = {142238: (18, 1, 2712), 439180: (32, 2, 7189)}
    for index in range(len(dataset)):
        _, target = dataset[index]
        n, n_crowd, void = facts[target["image_id"]]
        segments = target["panoptic"].segments
        assert (len(segments), sum(s["iscrowd"] for s in segments)) == (n, n_crowd)
        assert int((target["panoptic"].seg_map == 0).sum()) == void


def test_load_panoptic_and_dataloader() -> None:
    dataset = _dataset()
    gt = dataset.load_panoptic(1)
    assert gt.seg_map.dtype == torch.int64 and len(gt.segments) == 32
    loader = DataLoader(dataset, batch_size=2, collate_fn=collate_fn)
    images, targets = next(iter(loader))
    assert (
        isinstance(images, list) and isinstance(targets, list) and len(images) == len(targets) == 2
    )
    assert images[0].shape != images[1].shape  # kept at their own sizes


def test_validate_passes_and_names_the_first_broken_file(tmp_path: Path) -> None:
    assert _dataset().validate() == 2
    root = _copy(tmp_path)

    (root / "input_images" / "000000439180.jpg").unlink()
    with pytest.raises(DatasetError, match="image not found: .*000000439180.jpg"):
        _dataset(root).validate()
    shutil.copy(SAMPLE / "input_images" / "000000439180.jpg", root / "input_images")

    png = root / "panoptic_examples" / "000000142238.png"
    ids = read_panoptic_png(png)
    ids[0, 0] = 4242
    write_panoptic_png(png, ids)
    with pytest.raises(
        DatasetError, match="000000142238.png: segment id 4242 is in the PNG but not in the JSON"
    ):
        _dataset(root).validate()
    with pytest.raises(DatasetError, match="segment id 4242"):
        _dataset(root)[0]

    ids[ids == 4242] = 0
    write_panoptic_png(png, ids[:, :-1])
    with pytest.raises(DatasetError, match="000000142238.png: PNG is 639x427, image is 640x427"):
        _dataset(root).validate()
    shutil.copy(SAMPLE / "panoptic_examples" / "000000142238.png", png)

    (root / "panoptic_examples" / "000000439180.png").unlink()
    with pytest.raises(DatasetError, match="panoptic PNG not found: .*000000439180.png"):
        _dataset(root).validate()


def test_json_problems_are_caught_at_construction(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    data = _json()
    data["annotations"][1]["segments_info"][0]["category_id"] = 999
    (root / "panoptic_examples.json").write_text(json.dumps(data))
    with pytest.raises(
        DatasetError, match="000000439180.png segment .* has unknown category_id 999"
    ):
        _dataset(root)

    data = _json()
    data["annotations"][0]["segments_info"][0]["id"] = 5
    (root / "panoptic_examples.json").write_text(json.dumps(data))
    with pytest.raises(
        DatasetError,
        match="segment id .* is in the (PNG but not in the JSON|JSON but not in the PNG)",
    ):
        _dataset(root).validate()

    del data["images"]
    (root / "panoptic_examples.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="missing 'images' list"):
        _dataset(root)
    with pytest.raises(DatasetError, match="image folder not found"):
        CocoPanoptic(root / "nope", root / "panoptic_examples.json", root / "panoptic_examples")


def test_validate_decodes_images_in_full(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    jpg = root / "input_images" / "000000439180.jpg"
    data = jpg.read_bytes()
    jpg.write_bytes(data[: len(data) // 2])  # the header is intact: only a full decode sees it
    with pytest.raises(DatasetError, match="000000439180.jpg: cannot read image"):
        _dataset(root).validate()


def test_validate_refuses_an_empty_split_and_names_unannotated_images(tmp_path: Path, caplog) -> None:
    root = _copy(tmp_path)
    data = _json()
    dropped = data["annotations"].pop()
    (root / "panoptic_examples.json").write_text(json.dumps(data))
    with caplog.at_level("WARNING", logger="oneshot"):
        assert _dataset(root).validate(progress=True) == 1
    name = next(img["file_name"] for img in data["images"] if img["id"] == dropped["image_id"])
    assert f"1 image(s) have no annotation and are not used: {name}" in caplog.text

    data["annotations"] = []
    (root / "panoptic_examples.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="no annotated images"):
        _dataset(root).validate()
