"""Parameters and FLOPs of the Auto-Panoptic presets (tables of docs/model.md).

Counts run on the ``meta`` device (shapes only, no memory, no compute), with
:func:`oneshot.count_flops_params` (``torch.utils.flop_counter``: 2 FLOPs per multiply-add; the
tables report multiply-adds, "MACs", like DetNAS and the ResNet paper).

* Backbone at 224×224 for uniform architectures (every layer the same op) and the published COCO
  architecture; "+cls" adds the ImageNet classifier of DetNAS (1×1 conv to 1024, BN, FC to 1000),
  which is how DetNAS names its 300M / 1.3G / 3.8G models.
* Whole model at 800×800 (one image): backbone, FPN, semantic branch, attention, RPN head, box
  head on 1000 RoIs and mask head on 100 RoIs (fixed counts, as at inference); RoIAlign, NMS and
  mask pasting are not counted. Deformable convs are counted through the vectorised CPU
  implementation (its matmul is exactly the conv's multiply-adds).

Usage: ``python benchmarks/model_cost.py [--presets tiny 300M 1.3G 3.8G]``.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Sequence

import torch
import torchvision
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from oneshot import FlopsParams, SearchSpace, count_flops_params
from oneshot_panoptic.modeling import (
    MODEL_PRESETS,
    AutoPanoptic,
    build_autopanoptic,
    published_architecture,
)
from oneshot_panoptic.modeling.ops import BACKBONE_CHOICES

DETNAS_PUBLISHED_MACS = {"300M": 0.30e9, "1.3G": 1.3e9, "3.8G": 3.8e9}
COCO_THINGS, COCO_STUFF = 80, 53
NUM_BOX_ROIS, NUM_MASK_ROIS = 1000, 100


def cost_forward(model: AutoPanoptic, images: Tensor) -> None:
    """Deterministic inference cost: dense parts plus the RoI heads on fixed RoI counts."""
    features, semantic = model.forward_features(images)
    model.rpn.head(list(features.values()))
    channels = model.fpn.inner_blocks[0][0].out_channels
    model.roi_heads.box_predictor(model.roi_heads.box_head(images.new_empty(NUM_BOX_ROIS, channels, 7, 7)))
    model.roi_heads.mask_predictor(model.roi_heads.mask_head(images.new_empty(NUM_MASK_ROIS, channels, 14, 14)))
    model.semantic_head.predict(semantic)


def classifier_macs(last_channels: int, *, width: int = 1024, num_classes: int = 1000, spatial: int = 7) -> int:
    """DetNAS/SPOS ImageNet head: 1×1 conv ``last_channels -> width`` at 7×7, then FC."""
    return last_channels * width * spatial * spatial + width * num_classes


def _architectures(space: SearchSpace, num_backbone: int) -> dict[str, list[int]]:
    rest = [0] * (space.num_layers - num_backbone)
    archs = {f"all {name}": [i] * num_backbone + rest for i, name in enumerate(BACKBONE_CHOICES)}
    if num_backbone == 40:
        archs["COCO (published)"] = list(published_architecture("coco", space).choices)
    return archs


def _fmt(x: float, unit: float = 1e9, digits: int = 2) -> str:
    return f"{x / unit:.{digits}f}"


def backbone_table(presets: Sequence[str]) -> list[str]:
    rows = [
        "| preset | architecture | params (M) | GMACs 224² | GMACs 224² +cls | DetNAS published |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for preset in presets:
        with torch.device("meta"):
            model = build_autopanoptic(preset, num_things=COCO_THINGS, num_stuff=COCO_STUFF)
        space = SearchSpace.from_module(model)
        num_backbone = MODEL_PRESETS[preset].backbone.num_layers
        image = torch.empty(1, 3, 224, 224, device="meta")
        head = classifier_macs(model.backbone.out_channels[-1])
        for name, arch in _architectures(space, num_backbone).items():
            cost: FlopsParams = count_flops_params(model.backbone, arch[:num_backbone], image)
            macs = cost.flops / 2
            published = DETNAS_PUBLISHED_MACS.get(preset)
            rows.append(
                f"| {preset} | {name} | {_fmt(cost.params, 1e6)} | {_fmt(macs)} | {_fmt(macs + head)} | "
                f"{'' if published is None else _fmt(published)} |"
            )
    resnet = torchvision.models.resnet50(weights=None).to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        resnet(torch.empty(1, 3, 224, 224, device="meta"))
    rn_params = sum(p.numel() for p in resnet.parameters())
    rows.append(
        f"| (reference) | torchvision ResNet-50 | {_fmt(rn_params, 1e6)} | – | "
        f"{_fmt(counter.get_total_flops() / 2)} | 3.80 (He et al.) |"
    )
    return rows


def model_table(presets: Sequence[str], size: int = 800) -> list[str]:
    rows = [
        f"| preset | architecture | supernet params (M) | path params (M) | GMACs {size}² |",
        "|---|---|---:|---:|---:|",
    ]
    for preset in presets:
        with torch.device("meta"):
            model = build_autopanoptic(preset, num_things=COCO_THINGS, num_stuff=COCO_STUFF)
        space = SearchSpace.from_module(model)
        total = sum(p.numel() for p in model.parameters())
        image = torch.empty(1, 3, size, size, device="meta")
        archs = _architectures(space, MODEL_PRESETS[preset].backbone.num_layers)
        for name, arch in archs.items():
            if name.startswith("all ") and name not in ("all shuffle3x3", "all xception3x3"):
                continue
            cost = count_flops_params(model, arch, image, forward=cost_forward)
            label = name if name.startswith("COCO") else f"{name}, heads dwconv3x3, r4"
            rows.append(
                f"| {preset} | {label} | {_fmt(total, 1e6)} | {_fmt(cost.params, 1e6)} | {_fmt(cost.flops / 2, 1e9, 1)} |"
            )
    rows.append(_maskrcnn_row(size))
    return rows


def _maskrcnn_row(size: int) -> str:
    """torchvision's Mask R-CNN R50-FPN under the same convention (no semantic branch)."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    with torch.device("meta"):
        model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
    params = sum(p.numel() for p in model.parameters())
    heads = model.roi_heads
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        image = torch.empty(1, 3, size, size, device="meta")
        model.rpn.head(list(model.backbone(image).values()))
        heads.box_predictor(heads.box_head(image.new_empty(NUM_BOX_ROIS, 256, 7, 7)))
        heads.mask_predictor(heads.mask_head(image.new_empty(NUM_MASK_ROIS, 256, 14, 14)))
    return (
        f"| (reference) | torchvision Mask R-CNN R50-FPN | – | {_fmt(params, 1e6)} | "
        f"{_fmt(counter.get_total_flops() / 2, 1e9, 1)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(MODEL_PRESETS), choices=list(MODEL_PRESETS))
    args = parser.parse_args()
    print(f"<!-- torch {torch.__version__}, torchvision {torchvision.__version__}, {platform.platform()} -->")
    print("Backbone (ImageNet resolution):\n")
    print("\n".join(backbone_table(args.presets)))
    print("\nWhole model, one 800×800 image, COCO classes (80 things, 53 stuff):\n")
    print("\n".join(model_table(args.presets)))


if __name__ == "__main__":
    main()
