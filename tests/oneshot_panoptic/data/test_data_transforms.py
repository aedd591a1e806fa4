"""Transforms keep the image and every target consistent, and are reproducible."""

from __future__ import annotations

import pytest
import torch

from oneshot_panoptic.data import (
    CocoPanoptic,
    RandomHorizontalFlip,
    ResizeShortestSide,
    Target,
    build_transforms,
    collate_fn,
    generate_synthetic_dataset,
    segment_areas_and_boxes,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> CocoPanoptic:
    root = tmp_path_factory.mktemp("synth")
    paths = generate_synthetic_dataset(root, num_images=6, size=48, seed=11, splits={"train": 1})[
        "train"
    ]
    return CocoPanoptic(*paths)


def _check_consistent(image: torch.Tensor, target: Target) -> None:
    h, w = image.shape[-2:]
    masks, semantic = target["masks"], target["semantic"]
    pan = target["panoptic"]
    assert masks.shape[1:] == semantic.shape == pan.seg_map.shape == (h, w)
    assert len(target["boxes"]) == len(target["labels"]) == len(masks) == len(target["area"])
    assert bool(masks.flatten(1).any(1).all()), "an empty instance mask survived"
    thing_pixels = masks.sum(0) > 0
    assert bool((semantic[thing_pixels] == 0).all())
    assert int((semantic == 0).sum()) == int(thing_pixels.sum())
    for mask, box, area in zip(masks.bool(), target["boxes"], target["area"], strict=True):
        ids = pan.seg_map[mask].unique()
        assert len(ids) == 1, "an instance mask spans several panoptic segments"
        assert int(area) == int(mask.sum())
        ys, xs = torch.nonzero(mask, as_tuple=True)
        assert float(box[0]) - 1 <= int(xs.min()) and int(xs.max()) + 1 <= float(box[2]) + 1
        assert float(box[1]) - 1 <= int(ys.min()) and int(ys.max()) + 1 <= float(box[3]) + 1
    areas, boxes = segment_areas_and_boxes(pan.seg_map, [s["id"] for s in pan.segments])
    assert areas.tolist() == [s["area"] for s in pan.segments]
    assert boxes.tolist() == [list(s["bbox"]) for s in pan.segments]


def test_train_transforms_keep_targets_consistent(dataset: CocoPanoptic) -> None:
    transforms = build_transforms(train=True, short_sizes=(30, 40, 64), max_size=80)
    torch.manual_seed(0)
    sizes = set()
    for index in range(len(dataset)):
        image, target = dataset[index]
        for _ in range(3):
            out_image, out_target = transforms(image, target)
            _check_consistent(out_image, out_target)
            sizes.add(tuple(out_image.shape[-2:]))
    assert len(sizes) > 1  # the shorter side is drawn


def test_flip_mirrors_everything_and_twice_is_identity(dataset: CocoPanoptic) -> None:
    image, target = dataset[0]
    flip = RandomHorizontalFlip(p=1.0)
    flipped_image, flipped = flip(image, target)
    _check_consistent(flipped_image, flipped)
    assert torch.equal(flipped_image, image.flip(-1))
    assert torch.equal(flipped["panoptic"].seg_map, target["panoptic"].seg_map.flip(-1))
    back_image, back = flip(flipped_image, flipped)
    assert torch.equal(back_image, image)
    assert torch.equal(back["boxes"], target["boxes"]) and torch.equal(
        back["masks"], target["masks"]
    )
    assert back["panoptic"].segments == target["panoptic"].segments
    assert RandomHorizontalFlip(p=0.0)(image, target)[1] is target


def test_resize_scales_boxes_and_keeps_panoptic_for_evaluation(dataset: CocoPanoptic) -> None:
    image, target = dataset[1]
    out_image, out = ResizeShortestSide(96, 1000)(image, target)
    assert out_image.shape[-2:] == (96, 96)
    assert torch.allclose(out["boxes"], target["boxes"] * 2)
    _check_consistent(out_image, out)
    eval_image, eval_target = build_transforms(train=False, short_sizes=24, max_size=1000)(
        image, target
    )
    assert eval_image.shape[-2:] == (24, 24) and eval_target["masks"].shape[-2:] == (24, 24)
    assert eval_target["panoptic"] is target["panoptic"]  # ground truth kept at its original size
    assert ResizeShortestSide(100, max_size=60).output_size(30, 90, 100) == (20, 60)


def test_transforms_are_reproducible_from_a_generator(dataset: CocoPanoptic) -> None:
    image, target = dataset[2]

    def run(seed: int) -> list[tuple[tuple[int, ...], bool]]:
        g = torch.Generator().manual_seed(seed)
        t = build_transforms(train=True, short_sizes=(20, 30, 40, 50), max_size=100, generator=g)
        out = []
        for _ in range(8):
            img, tgt = t(image, target)
            out.append(
                (
                    tuple(img.shape),
                    bool(torch.equal(tgt["semantic"][:, 0], target["semantic"][:, 0])),
                )
            )
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_collate_keeps_lists(dataset: CocoPanoptic) -> None:
    batch = [dataset[0], dataset[1]]
    images, targets = collate_fn(batch)
    assert images == [batch[0][0], batch[1][0]] and targets == [batch[0][1], batch[1][1]]
