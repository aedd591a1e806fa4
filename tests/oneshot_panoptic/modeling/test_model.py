"""The Auto-Panoptic supernet: search space, I/O contract, fair-window training, freezing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from oneshot import (
    ArchitectureError,
    ChoiceLayer,
    FairSampler,
    SearchSpace,
    activate,
    active_parameters,
    freeze,
    recalibrate_bn,
)
from oneshot_panoptic.config import PanopticModelConfig
from oneshot_panoptic.modeling import (
    DEFAULT_LR_MULTIPLIERS,
    PUBLISHED_ARCHITECTURES,
    AutoPanoptic,
    autopanoptic_search_space,
    build_autopanoptic,
    param_groups,
    published_architecture,
)
from oneshot_panoptic.modeling.fusion import panoptic_fusion
from oneshot_panoptic.modeling.model import resize_outputs
from oneshot_panoptic.modeling.ops import ShuffleUnit, XceptionUnit
from oneshot_panoptic.structures import PanopticMetadata, PanopticSegmentation

NUM_THINGS, NUM_STUFF = 3, 2
METADATA = PanopticMetadata.from_categories(
    [{"id": 10 + i, "isthing": 1} for i in range(NUM_THINGS)]
    + [{"id": 50 + j, "isthing": 0} for j in range(NUM_STUFF)]
)
LOSS_KEYS = {
    "loss_objectness",
    "loss_rpn_box_reg",
    "loss_classifier",
    "loss_box_reg",
    "loss_mask",
    "loss_semantic",
}


def synthetic_batch(
    sizes: list[tuple[int, int]], seed: int = 0
) -> tuple[list[torch.Tensor], list[dict]]:
    """Images with two rectangular things each and a semantic map consistent with them."""
    gen = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for h, w in sizes:
        boxes = torch.tensor(
            [[4, 6, w // 2, h // 2], [w // 3, h // 3, w - 3, h - 5]], dtype=torch.float32
        )
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        semantic = torch.randint(1, NUM_STUFF + 1, (h, w), generator=gen)
        for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
            masks[i, y0:y1, x0:x1] = 1
            semantic[y0:y1, x0:x1] = 0
        semantic[:2] = 255
        images.append(torch.rand(3, h, w, generator=gen))
        targets.append(
            {
                "boxes": boxes,
                "labels": torch.tensor([1, NUM_THINGS]),
                "masks": masks,
                "semantic": semantic,
            }
        )
    return images, targets


@pytest.fixture(scope="module")
def model() -> AutoPanoptic:
    torch.manual_seed(0)
    return build_autopanoptic("tiny", num_things=NUM_THINGS, num_stuff=NUM_STUFF)


@pytest.fixture(scope="module")
def paper_model() -> AutoPanoptic:
    with torch.device("meta"):
        return build_autopanoptic("3.8G", num_things=80, num_stuff=53)


# ---------------------------------------------------------------------- search space
def test_paper_search_space(paper_model: AutoPanoptic) -> None:
    space = SearchSpace.from_module(paper_model)
    assert space.num_layers == 56
    assert list(space.components) == ["backbone", "head", "inter"]
    assert [len(v) for v in space.components.values()] == [40, 7, 9]
    assert space.size == 4**40 * 6**7 * 3**9
    assert space.window_size == 12
    assert space.labels == (
        tuple(f"backbone.{i}" for i in range(40))
        + tuple(f"head.{i}" for i in range(7))
        + tuple(f"inter.{i}" for i in range(9))
    )
    assert space == autopanoptic_search_space("3.8G") == autopanoptic_search_space(40)


def test_head_layers_sit_in_the_mask_head_then_the_semantic_subnet(model: AutoPanoptic) -> None:
    mask_labels = [
        m.label for m in model.roi_heads.mask_head.modules() if isinstance(m, ChoiceLayer)
    ]
    semantic_labels = [m.label for m in model.semantic_head.modules() if isinstance(m, ChoiceLayer)]
    inter_fg = [m.label for m in model.attention.fg_to_bg]
    assert mask_labels == ["head.0", "head.1", "head.2", "head.3"]
    assert semantic_labels == ["head.4", "head.5", "head.6"]
    assert inter_fg == ["inter.0", "inter.1", "inter.2", "inter.3"]
    assert SearchSpace.from_module(model) == autopanoptic_search_space("tiny")


@pytest.mark.parametrize("name", PUBLISHED_ARCHITECTURES)
def test_published_architectures_load_and_freeze(name: str, paper_model: AutoPanoptic) -> None:
    space = SearchSpace.from_module(paper_model)
    arch = published_architecture(name, paper_model)
    assert arch == published_architecture(name) == space.from_json(arch.to_json())
    frozen = freeze(paper_model, arch)
    first_unit = frozen.backbone.layers[0]
    assert isinstance(first_unit, XceptionUnit if arch[0] == 3 else ShuffleUnit)
    assert not any(isinstance(m, ChoiceLayer) for m in frozen.modules())


def test_published_architecture_does_not_fit_the_tiny_space(model: AutoPanoptic) -> None:
    with pytest.raises(ArchitectureError, match="backbone"):
        published_architecture("coco", model)
    with pytest.raises(ArchitectureError, match="unknown"):
        published_architecture("cityscapes")


# ---------------------------------------------------------------------- training
def test_fair_window_trains_every_choice_and_only_active_candidates_get_gradients(
    model: AutoPanoptic,
) -> None:
    space = SearchSpace.from_module(model)
    layers = [m for m in model.modules() if isinstance(m, ChoiceLayer)]
    window = FairSampler(space, seed=3).next_window()
    assert len(window) == 12
    used = {(i, c) for arch in window for i, c in enumerate(arch)}
    assert used == {(i, c) for i, k in enumerate(space.num_choices) for c in range(k)}
    images, targets = synthetic_batch([(64, 72)])
    model.train()
    for arch in window:
        model.zero_grad(set_to_none=True)
        with activate(model, arch):
            losses = model(images, targets)
        assert set(losses) == LOSS_KEYS
        total = sum(losses.values())
        assert torch.isfinite(total)
        total.backward()
        for layer, choice in zip(layers, arch, strict=True):
            for i, cand in enumerate(layer.candidates.values()):
                grads = [p.grad for p in cand.parameters()]
                if i == choice:
                    assert all(g is not None for g in grads), (
                        f"{layer.label}: active choice {i} lacks a gradient"
                    )
                else:
                    assert all(g is None for g in grads), (
                        f"{layer.label}: inactive choice {i} got a gradient"
                    )
        active = {id(p) for p in active_parameters(model, arch)}
        dead = [n for n, p in model.named_parameters() if id(p) in active and p.grad is None]
        assert not dead, f"parameters of the active path without gradient: {dead[:5]}"
    model.zero_grad(set_to_none=True)


def test_training_on_an_image_without_things(model: AutoPanoptic) -> None:
    images = [torch.rand(3, 64, 64)]
    targets = [
        {
            "boxes": torch.zeros(0, 4),
            "labels": torch.zeros(0, dtype=torch.int64),
            "masks": torch.zeros(0, 64, 64, dtype=torch.uint8),
            "semantic": torch.randint(1, NUM_STUFF + 1, (64, 64)),
        }
    ]
    model.train()
    with activate(model, SearchSpace.from_module(model).sample(1)):
        losses = model(images, targets)
    assert losses["loss_mask"].item() == 0 and losses["loss_semantic"].item() > 0
    sum(losses.values()).backward()
    model.zero_grad(set_to_none=True)


def test_training_needs_consistent_targets(model: AutoPanoptic) -> None:
    images, targets = synthetic_batch([(64, 64)])
    arch = SearchSpace.from_module(model).sample(0)
    model.train()
    with activate(model, arch):
        with pytest.raises(ValueError, match="targets"):
            model(images)
        bad = [dict(targets[0], semantic=targets[0]["semantic"][:32])]
        with pytest.raises(ValueError, match="semantic"):
            model(images, bad)


def test_semantic_targets_are_padded_with_ignore(model: AutoPanoptic) -> None:
    images, targets = synthetic_batch([(40, 50), (64, 33)])
    image_list, _ = model.transform(images)
    assert image_list.tensors.shape[-2:] == (64, 64)  # padded to 32, never resized
    assert image_list.image_sizes == [(40, 50), (64, 33)]
    batched = model._batch_semantic_targets(targets, image_list)
    assert torch.equal(batched[0, :40, :50], targets[0]["semantic"])
    assert (batched[0, 40:] == 255).all() and (batched[1, :, 33:] == 255).all()


# ---------------------------------------------------------------------- inference
def test_eval_output_contract_and_fusion(model: AutoPanoptic) -> None:
    sizes = [(64, 80), (72, 64)]
    images, _ = synthetic_batch(sizes, seed=1)
    arch = SearchSpace.from_module(model).sample(5)
    model.eval()
    with activate(model, arch), torch.no_grad():
        outputs = model(images)
    assert len(outputs) == 2
    for out, (h, w) in zip(outputs, sizes, strict=True):
        k = out["boxes"].shape[0]
        assert (
            out["boxes"].shape == (k, 4)
            and out["labels"].shape == (k,)
            and out["scores"].shape == (k,)
        )
        assert out["masks"].shape == (k, 1, h, w)
        assert ((out["masks"] >= 0) & (out["masks"] <= 1)).all()
        assert ((out["labels"] >= 1) & (out["labels"] <= NUM_THINGS)).all()
        assert out["sem_seg"].shape == (NUM_STUFF + 1, h, w)
        pan = panoptic_fusion(
            out, out["sem_seg"], METADATA, instance_score_threshold=0.0, stuff_area_threshold=0
        )
        assert pan.shape == (h, w)
    model.train()
    with activate(model, arch):
        panoptic = model.predict_panoptic(images, METADATA, instance_score_threshold=0.0)
    assert model.training  # mode restored
    valid = set(METADATA.thing_ids) | set(METADATA.stuff_ids)
    for pan, (h, w) in zip(panoptic, sizes, strict=True):
        assert isinstance(pan, PanopticSegmentation) and pan.shape == (h, w)
        assert [s["id"] for s in pan.segments] == list(range(1, len(pan.segments) + 1))
        assert {s["category_id"] for s in pan.segments} <= valid
        assert sum(s["area"] for s in pan.segments) == int((pan.seg_map > 0).sum())


def test_postprocess_resizes_to_the_original_size_then_fuses(model: AutoPanoptic) -> None:
    images, _ = synthetic_batch([(64, 64), (48, 64)], seed=3)
    original = [(96, 80), (48, 64)]  # the first image was shrunk by the data pipeline
    arch = SearchSpace.from_module(model).sample(2)
    model.eval()
    with activate(model, arch), torch.no_grad():
        outputs = model(images)
        options = {"instance_score_threshold": 0.0, "stuff_area_threshold": 0}
        panoptic = model.postprocess(outputs, METADATA, image_sizes=original, **options)
        by_hand = []
        for out, size in zip(outputs, original, strict=True):
            resized = resize_outputs(out, size)
            by_hand.append(panoptic_fusion(resized, resized["sem_seg"], METADATA, **options))
        assert resize_outputs(outputs[1], (48, 64)) == outputs[1]  # same size: untouched
        assert model.predict_panoptic(images, METADATA, image_sizes=original, **options)[0].shape == (96, 80)
    model.train()
    for pan, ref, size in zip(panoptic, by_hand, original, strict=True):
        assert pan.shape == size
        assert torch.equal(pan.seg_map, ref.seg_map) and pan.segments == ref.segments
    wrong = PanopticMetadata.from_categories([{"id": 1, "isthing": 1}, {"id": 2, "isthing": 0}])
    with pytest.raises(ValueError, match="metadata has 1 things"):
        model.postprocess(outputs, wrong)
    with pytest.raises(ValueError, match="image sizes"):
        model.postprocess(outputs, METADATA, image_sizes=original[:1])


def test_frozen_model_equals_supernet_and_is_standalone(model: AutoPanoptic) -> None:
    arch = SearchSpace.from_module(model).sample(11)
    images, targets = synthetic_batch([(64, 64), (64, 96)], seed=2)
    model.eval()
    with activate(model, arch), torch.no_grad():
        expected = model(images)
    frozen = freeze(model, arch).eval()
    with torch.no_grad():
        got = frozen(images)
    for e, g in zip(expected, got, strict=True):
        assert e.keys() == g.keys()
        for key in e:
            torch.testing.assert_close(g[key], e[key], rtol=0, atol=0)
    foreign = {
        type(m).__module__
        for m in frozen.modules()
        if type(m).__module__.split(".")[0] == "oneshot"
    }
    assert not foreign, f"frozen model still holds search-code modules: {foreign}"
    assert sum(p.numel() for p in frozen.parameters()) == sum(
        p.numel() for p in active_parameters(model, arch)
    )
    frozen.train()
    assert set(frozen(images, targets)) == LOSS_KEYS


def test_backbone_only_bn_recalibration_equals_full_forward(model: AutoPanoptic) -> None:
    arch = SearchSpace.from_module(model).sample(7)
    batches = [synthetic_batch([(64, 64), (64, 64)], seed=s)[0] for s in range(2)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with activate(model, arch):
        recalibrate_bn(model, batches, forward=lambda m, b: m(b))
        full = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in bns]
        recalibrate_bn(model, batches, forward=lambda m, b: m.forward_for_bn_recalibration(b))
        fast = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in bns]
    for (m1, v1), (m2, v2) in zip(full, fast, strict=True):
        torch.testing.assert_close(m1, m2)
        torch.testing.assert_close(v1, v2)
    non_backbone_bn = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not n.startswith("backbone.")
    ]
    assert not non_backbone_bn


# ---------------------------------------------------------------------- options
def test_param_groups_scale_learning_rates_per_component(model: AutoPanoptic) -> None:
    groups = param_groups(model, 0.02, weight_decay=1e-4)
    by_component = {g["component"]: g for g in groups}
    assert set(by_component) == {"backbone", "head", "inter", "shared"}
    for name, group in by_component.items():
        assert math.isclose(group["lr"], 0.02 * DEFAULT_LR_MULTIPLIERS[name])
        assert group["weight_decay"] == 1e-4
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    backbone_params = {id(p) for p in model.backbone.layers.parameters()}
    assert {id(p) for p in by_component["backbone"]["params"]} == backbone_params
    assert all(id(p) not in backbone_params for p in by_component["shared"]["params"])
    with pytest.raises(ValueError, match="inter"):
        param_groups(model, 0.02, multipliers={"backbone": 1, "head": 1, "shared": 1})


def test_builder_options() -> None:
    with torch.device("meta"):
        wide = build_autopanoptic(
            "tiny", num_things=2, num_stuff=1, fpn_channels=32, stage_repeats=[1, 1, 2, 1]
        )
        cfg = build_autopanoptic("tiny", num_things=2, num_stuff=1, semantic_channels=16)
        overrides = PanopticModelConfig(preset="tiny", overrides={"semantic_channels": 8})
        nested = build_autopanoptic(
            overrides.preset, num_things=2, num_stuff=1, **overrides.overrides
        )
    assert wide.fpn.inner_blocks[0][0].out_channels == 32
    assert SearchSpace.from_module(wide).components["backbone"] == tuple(range(5))
    assert cfg.semantic_head.channels == 16 and nested.semantic_head.channels == 8
    with pytest.raises(ValueError, match="unknown model option"):
        build_autopanoptic("tiny", num_things=2, num_stuff=1, fpn_width=3)
    with pytest.raises(ValueError, match="unknown model preset"):
        build_autopanoptic("huge", num_things=2, num_stuff=1)
    with pytest.raises(ValueError, match="num_things"):
        build_autopanoptic("tiny", num_things=0, num_stuff=1)
