"""Panoptic fusion: greedy instance pasting, stuff filling, ids, categories, area scaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oneshot_panoptic.modeling.fusion import COCO_REFERENCE_AREA, panoptic_fusion, stuff_area_limit
from oneshot_panoptic.structures import PanopticMetadata

METADATA = PanopticMetadata.from_categories(
    [
        {"id": 1, "name": "person", "isthing": 1},
        {"id": 3, "name": "car", "isthing": 1},
        {"id": 7, "name": "dog", "isthing": 1},
        {"id": 20, "name": "sky", "isthing": 0},
        {"id": 25, "name": "grass", "isthing": 0},
    ]
)


def _detections(
    masks: list[np.ndarray], labels: list[int], scores: list[float]
) -> dict[str, torch.Tensor]:
    m = torch.as_tensor(np.stack(masks), dtype=torch.float32)[:, None]
    return {
        "boxes": torch.zeros(len(masks), 4),
        "labels": torch.tensor(labels),
        "scores": torch.tensor(scores),
        "masks": m,
    }


def _logits_from_classes(classes: np.ndarray, num_classes: int = 3) -> torch.Tensor:
    return (
        torch.nn.functional.one_hot(torch.as_tensor(classes), num_classes).permute(2, 0, 1).float()
    )


def test_hand_made_scene() -> None:
    h, w = 10, 10
    a = np.zeros((h, w))
    a[0:4, 0:4] = 1  # person, 16 px
    b = np.zeros((h, w))
    b[2:6, 2:6] = 1  # car, overlaps a on 4 px (25 %) -> kept, 12 px
    c = np.zeros((h, w))
    c[0:4, 0:3] = 1  # dog, fully covered by a -> dropped
    d = np.zeros((h, w))
    d[8:10, 8:10] = 1  # low score -> dropped
    det = _detections([b, a, c, d], labels=[2, 1, 3, 1], scores=[0.8, 0.9, 0.7, 0.3])
    classes = np.zeros((h, w), dtype=np.int64)
    classes[6:, :] = 1  # sky, 40 px minus nothing taken
    classes[:6, 6:] = 2  # grass, 24 px
    out = panoptic_fusion(
        det, _logits_from_classes(classes), METADATA, stuff_area_threshold=30, reference_area=None
    )
    seg = out.seg_map
    assert seg.dtype == torch.int64 and seg.shape == (h, w)
    infos = {s["id"]: s for s in out.segments}
    assert sorted(infos) == list(range(1, len(infos) + 1))
    # person first (highest score), then car, then sky (grass is under the 30 px limit)
    assert [(s["category_id"], s["area"]) for s in out.segments] == [(1, 16), (3, 12), (20, 40)]
    assert all(s["iscrowd"] == 0 for s in out.segments)
    assert out.segments[0]["score"] == pytest.approx(0.9)
    for sid, info in infos.items():
        assert int((seg == sid).sum()) == info["area"]
    assert (
        int((seg == 0).sum()) == 100 - 16 - 12 - 40
    )  # dropped grass + uncovered things pixels stay VOID


def test_stuff_limit_scales_with_image_area() -> None:
    assert stuff_area_limit(480, 640) == pytest.approx(4096)
    assert stuff_area_limit(240, 320) == pytest.approx(1024)
    assert stuff_area_limit(7, 9, reference_area=None) == 4096
    assert COCO_REFERENCE_AREA == 640 * 480
    classes = np.ones((32, 32), dtype=np.int64)
    classes[:, :8] = 2  # 256 px of grass
    empty = _detections([np.zeros((32, 32))], labels=[1], scores=[0.1])
    limit_200 = 200 * COCO_REFERENCE_AREA / (32 * 32)  # scaled limit of 200 px on this image
    kept = panoptic_fusion(
        empty, _logits_from_classes(classes), METADATA, stuff_area_threshold=limit_200
    )
    assert [s["category_id"] for s in kept.segments] == [20, 25]
    limit_300 = 300 * COCO_REFERENCE_AREA / (32 * 32)
    dropped = panoptic_fusion(
        empty, _logits_from_classes(classes), METADATA, stuff_area_threshold=limit_300
    )
    assert [s["category_id"] for s in dropped.segments] == [20]


def _reference_fusion(
    det: dict, classes: np.ndarray, *, score_thr: float, overlap_thr: float, stuff_limit: float
):
    """Straightforward per-instance loop (Panoptic FPN's combine rule) in numpy."""
    seg = np.zeros(classes.shape, dtype=np.int64)
    segments = []
    scores = det["scores"].numpy()
    masks = det["masks"][:, 0].numpy() > 0.5
    for k in np.argsort(-scores, kind="stable"):
        if scores[k] < score_thr:
            break
        area = masks[k].sum()
        if area == 0:
            continue
        inter = (masks[k] & (seg > 0)).sum()
        if inter / area > overlap_thr:
            continue
        visible = masks[k] & (seg == 0)
        if visible.sum() == 0:
            continue
        seg[visible] = len(segments) + 1
        segments.append(METADATA.thing_ids[int(det["labels"][k]) - 1])
    for cls in np.unique(classes):
        if cls == 0:
            continue
        region = (classes == cls) & (seg == 0)
        if region.sum() < stuff_limit or region.sum() == 0:
            continue
        seg[region] = len(segments) + 1
        segments.append(METADATA.stuff_ids[cls - 1])
    return seg, segments


@pytest.mark.parametrize("seed", range(6))
def test_matches_a_reference_loop_on_random_scenes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w, n = 24, 20, 8
    masks = []
    for _ in range(n):
        m = np.zeros((h, w))
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        m[y : y + rng.integers(2, 12), x : x + rng.integers(2, 12)] = rng.uniform(0.3, 1.0)
        masks.append(m)
    scores = rng.permutation(np.linspace(0.2, 0.95, n)).tolist()  # distinct scores
    det = _detections(masks, labels=rng.integers(1, 4, n).tolist(), scores=scores)
    logits = torch.as_tensor(rng.normal(size=(3, h, w)), dtype=torch.float32)
    classes = logits.argmax(0).numpy()
    out = panoptic_fusion(det, logits, METADATA, stuff_area_threshold=40, reference_area=None)
    seg, cats = _reference_fusion(det, classes, score_thr=0.5, overlap_thr=0.5, stuff_limit=40)
    np.testing.assert_array_equal(out.seg_map.numpy(), seg)
    assert [s["category_id"] for s in out.segments] == cats
    assert [s["area"] for s in out.segments] == [
        int((seg == i + 1).sum()) for i in range(len(cats))
    ]


def test_no_detections_gives_stuff_only() -> None:
    det = {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.int64),
        "scores": torch.zeros(0),
        "masks": torch.zeros(0, 1, 8, 8),
    }
    classes = np.zeros((8, 8), dtype=np.int64)
    classes[4:] = 2
    out = panoptic_fusion(
        det, _logits_from_classes(classes), METADATA, stuff_area_threshold=1, reference_area=None
    )
    assert [(s["id"], s["category_id"], s["area"]) for s in out.segments] == [(1, 25, 32)]
    assert int((out.seg_map == 0).sum()) == 32  # the "things" class without instances is VOID


def test_mask_size_mismatch_raises() -> None:
    det = _detections([np.ones((4, 4))], labels=[1], scores=[0.9])
    with pytest.raises(ValueError, match="masks"):
        panoptic_fusion(det, torch.zeros(3, 5, 5), METADATA)
