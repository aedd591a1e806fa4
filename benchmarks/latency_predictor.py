"""Error of the per-layer latency table against measured latency on held-out architectures.

Builds the table (``oneshot.latency_table.build_latency_table``) for a supernet on the CPU, then
measures ``--held-out`` random architectures (seeded apart from the table's calibration ones) and
compares. Writes ``table.json`` and ``error.json`` into ``--out``. Run from the repository root::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/latency_predictor.py --model toy --out runs/latency-toy
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/latency_predictor.py --model panoptic-tiny --out runs/latency-tiny

``panoptic-tiny``: ``build_autopanoptic("tiny", num_things=3, num_stuff=4)`` (the synthetic data's
classes) in eval mode on one 3x128x128 image (the tiny preset's test size), weights untrained.
Its mask head runs on the boxes a path keeps, so its cost varies with the path's (untrained)
detections; ``--worst-case`` sets the box score threshold to 0 so that every path keeps the
maximum number of boxes (the latency a budget should hold for).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from oneshot.latency_table import build_latency_table, predictor_error
from oneshot.space import SearchSpace


def build(model: str, *, worst_case: bool = False) -> tuple[nn.Module, Any]:
    torch.manual_seed(0)
    if model == "toy":
        from oneshot.testing import ToySupernet

        return ToySupernet(width=32, num_layers=6), torch.randn(1, 3, 32, 32)
    if model == "panoptic-tiny":
        from oneshot_panoptic import build_autopanoptic

        # worst case: box score threshold 0, so the mask head always runs on detections_per_img
        # boxes instead of however many an (untrained) path happens to keep
        net = build_autopanoptic("tiny", num_things=3, num_stuff=4, **({"box_score_thresh": 0.0} if worst_case else {}))
        return net, [torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(0))]
    raise SystemExit(f"unknown model {model!r}; choose toy or panoptic-tiny")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="toy", choices=["toy", "panoptic-tiny"])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--held-out", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--rounds", type=int, default=3, help="rounds of the table and of the held-out measurements (median over rounds)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--worst-case", action="store_true",
                   help="panoptic: box score threshold 0, so every path's mask head sees the maximum number of boxes")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, example = build(args.model, worst_case=args.worst_case)
    model.eval()
    space = SearchSpace.from_module(model)
    start = time.perf_counter()
    table = build_latency_table(model, example, args.out / "table.json", warmup=args.warmup, repeats=args.repeats,
                                rounds=args.rounds)
    built = time.perf_counter() - start
    rng = np.random.default_rng(12345)
    held_out = [space.sample(rng) for _ in range(args.held_out)]
    error = predictor_error(table, model, example, held_out, warmup=args.warmup, repeats=args.repeats, rounds=args.rounds)
    error.update({"model": args.model, "worst_case": args.worst_case, "table_seconds": built, "fixed_ms": table.fixed_ms,
                  "shape_dependent_layers": table.shape_dependent, "threads": args.threads,
                  "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])})
    (args.out / "error.json").write_text(json.dumps(error, indent=1) + "\n")
    print(json.dumps({k: v for k, v in error.items() if k != "architectures"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
