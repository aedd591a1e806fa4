"""The counting kernel: runs, id-to-slot mapping and the joint histogram against plain references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from oneshot_panoptic.evaluation.counting import (
    FIRST,
    UNLISTED,
    VOID,
    confusion_numpy,
    id_slots,
    prepare_ground_truth,
    runs,
)
from oneshot_panoptic.structures import PanopticSegmentation

small_maps = arrays(np.int64, st.integers(1, 60), elements=st.integers(0, 4))


@settings(max_examples=50, deadline=None)
@given(flat=small_maps, data=st.data())
def test_runs_cover_the_array_and_break_where_asked(flat: np.ndarray, data: st.DataObject) -> None:
    breaks = np.array(sorted(data.draw(st.sets(st.integers(0, max(flat.size - 2, 0)), max_size=5))), dtype=np.intp)
    breaks = breaks[breaks < flat.size - 1]
    starts, lengths = runs(flat, breaks)
    assert lengths.sum() == flat.size and (lengths > 0).all()
    np.testing.assert_array_equal(np.repeat(flat[starts], lengths), flat)
    expected = {0} | {i + 1 for i in range(flat.size - 1) if flat[i + 1] != flat[i]} | {int(b) + 1 for b in breaks}
    assert set(starts.tolist()) == expected


@settings(max_examples=50, deadline=None)
@given(
    values=arrays(np.int64, st.integers(1, 40), elements=st.sampled_from([0, 1, 5, 7, 300, 1 << 24])),
    listed=st.sets(st.sampled_from([0, 1, 5, 300, 1 << 24])),
)
def test_id_slots_by_table_and_by_search_agree_with_a_dict(values: np.ndarray, listed: set[int]) -> None:
    ids = np.array(sorted(listed), dtype=np.int64)
    slot_of = {int(i): k + FIRST for k, i in enumerate(ids)}
    expected = [slot_of.get(int(v), VOID if v == 0 else UNLISTED) for v in values]
    assert id_slots(values, ids).tolist() == expected  # large ids: binary search
    small = values % 16  # small ids: lookup table
    small_ids = np.unique(ids % 16)
    slot_of = {int(i): k + FIRST for k, i in enumerate(small_ids)}
    assert id_slots(small, small_ids).tolist() == [
        slot_of.get(int(v), VOID if v == 0 else UNLISTED) for v in small
    ]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_joint_histogram_equals_per_pixel_counts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    gt_map = rng.choice([0, 11, 12, 13], size=(h, w))
    gt_ids = sorted(set(gt_map.ravel().tolist()) - {0})
    gt = prepare_ground_truth(
        PanopticSegmentation(gt_map, [{"id": i, "category_id": 1} for i in gt_ids])
    )
    pred_map = rng.choice([0, 2, 3], size=(h, w))
    pred_ids = np.array(sorted(set(pred_map.ravel().tolist()) - {0}), dtype=np.int64)
    conf = confusion_numpy(gt, pred_map, pred_ids, image_id=0)
    expected = np.zeros_like(conf)
    gt_slot = {0: VOID, **{i: k + FIRST for k, i in enumerate(gt_ids)}}
    pred_slot = {0: VOID, **{int(i): k + FIRST for k, i in enumerate(pred_ids)}}
    for g, p in zip(gt_map.ravel().tolist(), pred_map.ravel().tolist(), strict=True):
        expected[gt_slot[g], pred_slot[p]] += 1
    np.testing.assert_array_equal(conf, expected)
