"""Throughput of the Auto-Panoptic model (docs/benchmarks.md, "Model throughput").

Two measurements:

``overhead``
    Is weight sharing free? For sampled architectures, one supernet training step on that path
    (``activate`` + forward + backward + SGD step over the supernet's parameter groups) against
    one step of the frozen standalone model of the same architecture (``freeze``), on the same
    batch. Steps are interleaved (supernet, frozen, supernet, ...) so that machine noise hits both
    alike; the ratio of medians is reported per architecture. On CPU the clock is this process's
    CPU time (robust to other processes on a shared machine), on CUDA wall time. Also times
    ``activate`` alone and the extra cost of ``optimizer.zero_grad`` over the supernet's
    parameters (both fixed, per-step host costs).

``compare``
    Frozen paper-size models (published COCO architecture at the 1.3G and 3.8G widths) against
    torchvision's ``maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)`` in the same run:
    training images/s, inference images/s and peak memory. Every model gets the same batches and
    the same no-resize transform (normalize + pad to 32), so they see identical pixels.

Defaults follow the device: on CUDA, paper sizes (1.3G and 3.8G, 512×512 batch 8 and 800×800
batch 4); on CPU, small sizes (tiny and 300M presets, 256×256 batch 2, few steps). Examples::

    python benchmarks/model_throughput.py overhead --presets tiny 300M --size 256 --batch 2
    python benchmarks/model_throughput.py compare --presets 1.3G 3.8G --size 800 --batch 4
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torchvision
from torch import Tensor, nn

from oneshot import SearchSpace, activate, freeze
from oneshot_panoptic.modeling import (
    MODEL_PRESETS,
    AutoPanoptic,
    build_autopanoptic,
    param_groups,
    published_architecture,
)
from oneshot_panoptic.modeling.model import NoResizeTransform

COCO_THINGS, COCO_STUFF = 80, 53


# ---------------------------------------------------------------------- data
def synthetic_batch(
    batch: int, size: int, *, device: torch.device, seed: int = 0, objects: int = 6
) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    """``batch`` random ``size × size`` images with ``objects`` box+mask instances each."""
    gen = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(batch):
        xy = torch.rand(objects, 2, generator=gen) * size * 0.6
        wh = (torch.rand(objects, 2, generator=gen) * 0.35 + 0.05) * size
        boxes = torch.cat([xy, (xy + wh).clamp(max=size - 1)], dim=1)
        masks = torch.zeros(objects, size, size, dtype=torch.uint8)
        semantic = torch.randint(1, COCO_STUFF + 1, (size, size), generator=gen)
        for i, (x0, y0, x1, y1) in enumerate(boxes.round().int().tolist()):
            masks[i, y0:y1, x0:x1] = 1
            semantic[y0:y1, x0:x1] = 0
        images.append(torch.rand(3, size, size, generator=gen).to(device))
        targets.append(
            {
                "boxes": boxes.to(device),
                "labels": torch.randint(1, COCO_THINGS + 1, (objects,), generator=gen).to(device),
                "masks": masks.to(device),
                "semantic": semantic.to(device),
            }
        )
    return images, targets


# ---------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device, *, cpu_time: bool = False) -> float:
    """Seconds taken by ``fn``: wall clock (CUDA synchronised), or this process's CPU time.

    CPU time (all threads of this process) is what a CPU run on a shared machine can measure
    reliably: other processes' load stretches wall time but not the work done here.
    """
    clock = time.process_time if cpu_time else time.perf_counter
    _sync(device)
    start = clock()
    fn()
    _sync(device)
    return clock() - start


def _sgd(groups: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=1e-4, momentum=0.9, weight_decay=1e-4)


def _train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, images: list[Tensor], targets: list[dict], amp: bool
) -> None:
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(images[0].device.type, enabled=amp):
        losses = model(images, targets)
    sum(losses.values()).backward()
    optimizer.step()


# ---------------------------------------------------------------------- overhead
def _enter_exit(model: nn.Module, arch: Any) -> None:
    with activate(model, arch):
        pass


def _supernet_step(
    model: nn.Module, arch: Any, optimizer: torch.optim.Optimizer, images: list[Tensor], targets: list[dict], amp: bool
) -> None:
    with activate(model, arch):
        _train_step(model, optimizer, images, targets, amp)


def overhead(
    preset: str, *, size: int, batch: int, archs: int, steps: int, warmup: int, device: torch.device, amp: bool
) -> list[dict[str, float]]:
    torch.manual_seed(0)
    supernet = build_autopanoptic(preset, num_things=COCO_THINGS, num_stuff=COCO_STUFF).to(device).train()
    space = SearchSpace.from_module(supernet)
    sup_opt = _sgd(param_groups(supernet, 1e-4))
    images, targets = synthetic_batch(batch, size, device=device)
    results = []
    for a in range(archs):
        arch = space.sample(a)
        frozen = freeze(supernet, arch).train()
        frz_opt = _sgd(frozen.parameters())
        supernet_step = partial(_supernet_step, supernet, arch, sup_opt, images, targets, amp)
        frozen_step = partial(_train_step, frozen, frz_opt, images, targets, amp)
        for _ in range(warmup):
            supernet_step()
            frozen_step()
        cpu_time = device.type == "cpu"
        sup_t, frz_t = [], []
        for _ in range(steps):
            sup_t.append(_timed(supernet_step, device, cpu_time=cpu_time))
            frz_t.append(_timed(frozen_step, device, cpu_time=cpu_time))
        act_t = [_timed(partial(_enter_exit, supernet, arch), device, cpu_time=cpu_time) for _ in range(20)]
        zero_sup = [_timed(partial(sup_opt.zero_grad, set_to_none=True), device, cpu_time=cpu_time) for _ in range(20)]
        zero_frz = [_timed(partial(frz_opt.zero_grad, set_to_none=True), device, cpu_time=cpu_time) for _ in range(20)]
        results.append(
            {
                "supernet_s": statistics.median(sup_t),
                "frozen_s": statistics.median(frz_t),
                "activate_ms": 1e3 * statistics.median(act_t),
                "zero_grad_extra_ms": 1e3 * (statistics.median(zero_sup) - statistics.median(zero_frz)),
            }
        )
    return results


# ---------------------------------------------------------------------- compare
def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def measure_model(
    model: nn.Module, *, size: int, batch: int, steps: int, warmup: int, device: torch.device, amp: bool
) -> dict[str, float]:
    images, targets = synthetic_batch(batch, size, device=device)
    optimizer = _sgd([p for p in model.parameters() if p.requires_grad])
    model.train()
    for _ in range(warmup):
        _train_step(model, optimizer, images, targets, amp)
    _peak_reset(device)
    cpu_time = device.type == "cpu"
    step = partial(_train_step, model, optimizer, images, targets, amp)
    train_t = [_timed(step, device, cpu_time=cpu_time) for _ in range(steps)]
    train_mem = _peak_gib(device)
    optimizer.state.clear()
    model.eval()

    @torch.no_grad()
    def infer() -> None:
        with torch.autocast(device.type, enabled=amp):
            model(images)

    for _ in range(warmup):
        infer()
    _peak_reset(device)
    infer_t = [_timed(infer, device, cpu_time=cpu_time) for _ in range(steps)]
    return {
        "train_img_s": batch / statistics.median(train_t),
        "infer_img_s": batch / statistics.median(infer_t),
        "train_peak_gib": train_mem,
        "infer_peak_gib": _peak_gib(device),
    }


def build_compared(name: str, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    if name == "maskrcnn_resnet50_fpn":
        from torchvision.models.detection import maskrcnn_resnet50_fpn

        model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=COCO_THINGS + 1)
        t = model.transform
        model.transform = NoResizeTransform(image_mean=t.image_mean, image_std=t.image_std, size_divisible=32)
        return model.to(device)
    supernet: AutoPanoptic = build_autopanoptic(name, num_things=COCO_THINGS, num_stuff=COCO_STUFF)
    if MODEL_PRESETS[name].backbone.num_layers == 40:
        arch = published_architecture("coco", supernet)
    else:  # no published architecture for this depth: a fixed sample
        arch = SearchSpace.from_module(supernet).sample(0)
    return freeze(supernet, arch).to(device)


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description="Auto-Panoptic throughput")
    parser.add_argument("mode", choices=["overhead", "compare", "all"], nargs="?", default="all")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", nargs="+", default=None)
    parser.add_argument("--size", type=int, nargs="+", default=None, help="image sizes (square)")
    parser.add_argument("--batch", type=int, nargs="+", default=None, help="batch size per image size")
    parser.add_argument("--archs", type=int, default=3, help="sampled architectures (overhead)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--amp", action="store_true", help="autocast (bf16 on CPU, fp16 on CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sizes = args.size or ([512, 800] if cuda else [256])
    batches = args.batch or ([8, 4] if cuda else [2])
    if len(batches) != len(sizes):
        parser.error("give one --batch per --size")
    steps = args.steps or (20 if cuda else 5)
    warmup = args.warmup or (5 if cuda else 2)
    threads = torch.get_num_threads()
    where = torch.cuda.get_device_name(device) if cuda else f"{platform.processor() or 'CPU'}, {threads} threads"
    print(f"<!-- torch {torch.__version__}, torchvision {torchvision.__version__}, {where}, amp={args.amp} -->")

    if args.mode in ("overhead", "all"):
        presets = args.presets or (["1.3G", "3.8G"] if cuda else ["tiny", "300M"])
        clock = "CPU s" if device.type == "cpu" else "s"
        print(
            f"\n| preset | size | batch | arch | supernet step ({clock}) | frozen step ({clock}) | ratio "
            "| activate (ms) | extra zero_grad (ms) |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for preset in presets:
            for size, batch in zip(sizes, batches, strict=True):
                rows = overhead(
                    preset, size=size, batch=batch, archs=args.archs, steps=steps, warmup=warmup, device=device, amp=args.amp
                )
                for i, r in enumerate(rows):
                    print(
                        f"| {preset} | {size} | {batch} | {i} | {r['supernet_s']:.3f} | {r['frozen_s']:.3f} | "
                        f"{r['supernet_s'] / r['frozen_s']:.3f} | {r['activate_ms']:.2f} | "
                        f"{r['zero_grad_extra_ms']:.2f} |",
                        flush=True,
                    )
    if args.mode in ("compare", "all"):
        names = (args.presets or (["1.3G", "3.8G"] if cuda else ["tiny", "300M"])) + ["maskrcnn_resnet50_fpn"]
        rate = "img/CPU-s" if device.type == "cpu" else "img/s"
        print(f"\n| model | size | batch | train {rate} | infer {rate} | train peak GiB | infer peak GiB |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for size, batch in zip(sizes, batches, strict=True):
            for name in names:
                model = build_compared(name, device)
                r = measure_model(model, size=size, batch=batch, steps=steps, warmup=warmup, device=device, amp=args.amp)
                label = name if name.startswith("mask") else f"Auto-Panoptic {name}, frozen"
                mem = f"{r['train_peak_gib']:.2f} | {r['infer_peak_gib']:.2f}" if cuda else "n/a | n/a"
                print(
                    f"| {label} | {size} | {batch} | {r['train_img_s']:.2f} | {r['infer_img_s']:.2f} | {mem} |",
                    flush=True,
                )
                del model
                if cuda:
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
