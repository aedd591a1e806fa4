"""CPU inference speed of the exported formats: eager PyTorch vs TorchScript vs onnxruntime
(docs/benchmarks.md, "Inference formats on the CPU").

The program exported to TorchScript and ONNX is the panoptic network's dense part (normalisation,
backbone, FPN, semantic subnet, inter-modular attention, semantic classifier; docs/ship.md), so
that is what the three engines run, on the same synthetic images at batch 1. For context the eager
whole network (with the detector, resizing back and panoptic fusion) is timed in the same rounds.

Engines run in turn within every round (eager, TorchScript, onnxruntime, whole network, ...), so
load from other processes hits all alike; each gets one thread (torch and onnxruntime), and the
clock is this process's CPU time, which other processes' load does not stretch. Reported: the
median over rounds of images per CPU-second, and the largest absolute difference of each
engine's outputs from eager on all images.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python -m benchmarks.inference_formats --preset tiny --size 128 --images 16 --rounds 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oneshot.export import ExportPart, export_model, max_abs_difference
from oneshot.files import atomic_write_text
from oneshot.space import Architecture, SearchSpace
from oneshot.supernet import freeze
from oneshot_panoptic.data.synthetic import SYNTHETIC_CATEGORIES, synthetic_sample
from oneshot_panoptic.modeling.builder import build_autopanoptic
from oneshot_panoptic.ship import DenseAutoPanoptic
from oneshot_panoptic.structures import PanopticMetadata

TITLE = "## Inference formats on the CPU"


def _images(n: int, size: int) -> list[torch.Tensor]:
    rng = np.random.default_rng(0)
    return [torch.from_numpy(synthetic_sample(size, rng).image).permute(2, 0, 1).float().div(255)[None] for _ in range(n)]


def _timed(run: Callable[[torch.Tensor], Any], images: list[torch.Tensor]) -> tuple[float, list[Any]]:
    outputs = []
    start = time.process_time()
    for x in images:
        outputs.append(run(x))
    return time.process_time() - start, outputs


#: Head choice indices of the deformable convolutions (ops.HEAD_CHOICES: dfconv3x3, dfconv5x5).
DEFORM = (2, 3)


def _measure(model: Any, arch: Any, meta: PanopticMetadata, images: list[torch.Tensor], rounds: int) -> list[str]:
    """Table rows (engine | images/s | vs eager | max abs diff) of one frozen model."""
    import onnxruntime as ort

    dense = DenseAutoPanoptic(model).eval()
    part = ExportPart(dense, (images[0],), "dense part", input_names=["images"],
                      output_names=["sem_seg", "p2", "p3", "p4", "p5", "p6"])
    with tempfile.TemporaryDirectory() as tmp:
        ts_path, onnx_path = Path(tmp) / "m.ts.pt", Path(tmp) / "m.onnx"
        export_model(model, "torchscript", ts_path, task="panoptic", arch=arch, spec={}, part=part, weights_source="random")
        export_model(model, "onnx", onnx_path, task="panoptic", arch=arch, spec={}, part=part, weights_source="random")
        scripted = torch.jit.load(str(ts_path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        engines: dict[str, Callable[[torch.Tensor], Any]] = {
            "eager (dense part)": lambda x: dense(x),
            "TorchScript (dense part)": lambda x: scripted(x),
            "onnxruntime (dense part)": lambda x: session.run(None, {"images": x.numpy()}),
            "eager whole network (+ detector, fusion)": lambda x: model.predict_panoptic([x[0]], meta),
        }
        times: dict[str, list[float]] = {k: [] for k in engines}
        outputs: dict[str, list[Any]] = {}
        with torch.no_grad():
            for run in engines.values():  # warm-up (TorchScript's profiling executor optimises after a few calls)
                for x in images[:3]:
                    run(x)
            for _ in range(rounds):
                for name, run in engines.items():
                    seconds, outs = _timed(run, images)
                    times[name].append(seconds)
                    outputs.setdefault(name, outs)
    reference = outputs["eager (dense part)"]
    rows = []
    eager_speed = len(images) / statistics.median(times["eager (dense part)"])
    for name in engines:
        speed = len(images) / statistics.median(times[name])
        if "whole" in name:
            diff = "-"
        else:
            got = [[torch.as_tensor(np.asarray(o)) for o in out] for out in outputs[name]]
            diff = f"{max(max_abs_difference(list(r), g) for r, g in zip(reference, got, strict=True)):.1e}"
        rows.append(f"{name} | {speed:.1f} | {speed / eager_speed:.2f} | {diff} |")
    return rows


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny", help="model preset (tiny, 300M, 1.3G, 3.8G)")
    ap.add_argument("--size", type=int, default=128, help="image side (a multiple of 32)")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="seed of the random architecture")
    ap.add_argument("--out", default="runs/benchmarks/inference-formats")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    import onnxruntime as ort

    meta = PanopticMetadata.from_categories(list(SYNTHETIC_CATEGORIES))
    torch.manual_seed(args.seed)
    supernet = build_autopanoptic(args.preset, num_things=meta.num_things, num_stuff=meta.num_stuff).eval()
    space = SearchSpace.from_module(supernet)
    sampled = space.sample(np.random.default_rng(args.seed))
    # the same architecture with every deformable head layer (dfconv3x3/5x5) made depthwise (dwconv3x3/5x5)
    plain = Architecture.from_json(space, {**sampled.to_json(), "head": [c - 2 if c in DEFORM else c for c in sampled.to_json()["head"]]})
    images = _images(args.images, args.size)
    rows = []
    for label, arch in ((f"sampled (head {sampled.to_json()['head']})", sampled), (f"no deformable conv (head {plain.to_json()['head']})", plain)):
        rows += [f"| {label} | {row}" for row in _measure(freeze(supernet, arch).eval(), arch, meta, images, args.rounds)]
    command = (f"OMP_NUM_THREADS=1 python -m benchmarks.inference_formats --preset {args.preset} --size {args.size} "
               f"--images {args.images} --rounds {args.rounds} --seed {args.seed}")
    report = f"""{TITLE}

Command: `{command}` (one run; `benchmarks/inference_formats.py`). The `{args.preset}` model
preset with untrained weights: one random architecture (seed {args.seed}), and the same with its
deformable head convolutions replaced by depthwise ones of the same kernel size; {args.images}
synthetic {args.size}×{args.size} images at batch 1, {args.rounds} interleaved rounds, one thread
per engine; images per second of this process's CPU time (median over rounds), so other
processes' load on the shared machine does not stretch it. TorchScript and ONNX hold the dense
part of the network (docs/ship.md), so the first three rows run the same computation; the last
row is the eager whole network (detector, resizing back, fusion) for context. Max |diff|: largest
absolute difference from eager over all outputs of all images.

| architecture | engine | images/s (CPU time) | vs eager | max abs diff |
|---|---|---|---|---|
""" + "\n".join(rows) + f"""

torch {torch.__version__}, onnxruntime {ort.__version__}, {platform.processor() or platform.machine()}, Python {platform.python_version()}.
"""
    atomic_write_text(Path(args.out) / "report.md", report)
    print(report)
    return report


if __name__ == "__main__":
    main()
