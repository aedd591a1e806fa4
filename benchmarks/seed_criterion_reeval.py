"""Re-score the models of a seed-criterion run on a larger validation set (no retraining).

Splits the seed spread of ``benchmarks/seed_criterion.py`` into its evaluation part (which
images happen to be in ``val``) and its training part: every retrained model stored under
``OUT/runs/it*-seed*/retrain/<arch>/model_state.pt`` is evaluated again on ``--images`` fresh
``val`` images (data seed ``--data-seed``, same variant and size), and the criterion recomputed.
Each score is appended to ``OUT/reeval-<images>.jsonl`` as soon as it exists (resumable);
``--part i/n`` shares the models between ``n`` workers.

    OMP_NUM_THREADS=1 python benchmarks/seed_criterion_reeval.py --out runs/seed-criterion --images 240
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from oneshot.pipeline import open_run
from oneshot.space import SearchSpace
from oneshot.stats import seed_criterion
from oneshot.supernet import freeze

TASK = "panoptic"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="the --out of seed_criterion.py")
    ap.add_argument("--preset", default="bench")
    ap.add_argument("--images", type=int, default=240)
    ap.add_argument("--data-seed", type=int, default=1)
    ap.add_argument("--part", default="0/1")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    from oneshot_panoptic.data import ensure_synthetic_dataset

    part, parts = (int(v) for v in args.part.split("/"))
    records = [json.loads(line) for line in (args.out / "results.jsonl").read_text().splitlines() if line.strip()]
    runs = {(r["arch_key"], r["seed"], r["iterations"]): r for r in reversed(records)}
    todo = sorted(runs)[part::parts]
    base = open_run(TASK, run_dir=args.out / "runs" / "space", progress=False)
    syn = base.config.data.synthetic  # type: ignore[attr-defined]
    root = args.out / "data" / f"{syn.variant}-{syn.size}px-val{args.images}-seed{args.data_seed}"
    paths = ensure_synthetic_dataset(
        root, num_images=args.images + 2, size=syn.size, seed=args.data_seed,
        splits={"train": 1, "nas_val": 1, "val": args.images}, variant=syn.variant,
    )  # fmt: skip
    val = [f"data.val.{f}={getattr(paths['val'], f)}" for f in ("image_dir", "panoptic_json", "panoptic_dir")]
    run = open_run(TASK, run_dir=args.out / "runs" / f"reeval-{args.images}", preset=args.preset,
                   overrides=[*args.overrides, *[o for o in _saved_overrides(base) if not o.startswith("data.val.")], *val],
                   progress=False)  # fmt: skip
    run.prepare_data()
    space = SearchSpace.from_module(run.task.build_supernet())
    out_path = args.out / f"reeval-{args.images}.jsonl"
    done = {(r["arch_key"], r["seed"], r["iterations"]) for r in _read(out_path)}
    for key in todo:
        if key in done:
            continue
        arch_key, seed, iterations = key
        arch = space.from_json(runs[key]["arch"])
        model = freeze(run.task.build_supernet(), arch)
        # runs before per-retraining run directories shared one per seed and schedule
        run_dir = runs[key].get("run_dir") or f"runs/it{iterations}-seed{seed}"
        state = args.out / run_dir / "retrain" / arch_key[:64] / "model_state.pt"
        model.load_state_dict(torch.load(state, map_location="cpu"))
        metrics = run.task.evaluate_standalone(model.eval(), split="val")
        with out_path.open("a") as f:
            f.write(json.dumps({"arch_key": arch_key, "seed": seed, "iterations": iterations, "pq": metrics["pq"],
                                "pq_th": metrics["pq_th"], "pq_st": metrics["pq_st"]}) + "\n")  # fmt: skip
        print(f"{arch_key[:20]} seed {seed}: PQ {runs[key]['pq']:.2f} -> {metrics['pq']:.2f}", flush=True)
    rows = _read(out_path)
    for metric in ("pq", "pq_th", "pq_st"):
        groups: dict[tuple[str, int], list[float]] = {}
        for r in rows:
            groups.setdefault((r["arch_key"], r["iterations"]), []).append(r[metric])
        complete = [g for g in groups.values() if len(g) >= 2]
        if len(complete) >= 2:
            c = seed_criterion(complete)
            print(f"{metric} on {args.images} images: {c.archs} archs, mean {c.mean:.2f}, between {c.between_sd:.2f}, "
                  f"within {c.within_sd:.2f}, ratio {c.ratio:.2f}")  # fmt: skip


def _saved_overrides(base) -> list[str]:  # type: ignore[no-untyped-def]
    """The data split paths of the criterion run (train and nas_val are kept as they were)."""
    d = base.config.data
    return [
        f"data.{s}.{f}={getattr(getattr(d, s), f)}"
        for s in ("train", "nas_val", "val")
        for f in ("image_dir", "panoptic_json", "panoptic_dir")
    ]


def _read(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


if __name__ == "__main__":
    main()
