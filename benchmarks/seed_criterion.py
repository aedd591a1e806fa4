"""Seed criterion of a benchmark preset: do architectures differ by more than retraining seeds do?

Draws ``--archs`` random architectures of the search space (fixed by ``--arch-seed``), retrains
each from scratch with every seed of ``--seeds`` (through the library's own
``Pipeline.retrain``, one run directory per architecture, seed and schedule) and compares the standard
deviation of the per-architecture mean PQ with the pooled within-architecture (seed) standard
deviation (:func:`oneshot.stats.seed_criterion`). ``--short-iterations`` adds a shorter retraining
of the same architectures and reports the Kendall tau-b between the two schedules' rankings.

Resumable: every (architecture, seed, schedule) result is stored as soon as it exists (by
``Pipeline.retrain`` in ``OUT/runs/...`` and as a line of ``OUT/results.jsonl``); a rerun skips
what is done. Several workers may share one ``OUT`` (each claims a retraining before it starts). Writes ``OUT/criterion.json`` and ``OUT/criterion.md``.

    OMP_NUM_THREADS=1 python benchmarks/seed_criterion.py --out runs/seed-criterion --archs 10 --seeds 0 1

The synthetic data is generated here (variant from the preset's ``data.synthetic``) and given to
the runs as explicit split paths, so every run reads the same files.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.claims import claim
from oneshot.config import load_config
from oneshot.pipeline import open_run
from oneshot.space import SearchSpace
from oneshot.stats import bootstrap_mean_ci, kendall_tau_b, seed_criterion, spearman_rho
from oneshot.tasks import get_task

TASK = "panoptic"


def _data_overrides(out: Path, preset: str, overrides: list[str]) -> list[str]:
    """Generate the preset's synthetic data under ``out/data`` and point all three splits at it."""
    from oneshot_panoptic.data import ensure_synthetic_dataset

    cfg = load_config(get_task(TASK).config_class, preset=get_task(TASK).presets()[preset], overrides=overrides)
    syn = cfg.data.synthetic  # type: ignore[attr-defined]
    root = out / "data" / f"{syn.variant}-{syn.size}px-{syn.num_images}-seed{syn.seed}"
    paths = ensure_synthetic_dataset(
        root, num_images=syn.num_images, size=syn.size, seed=syn.seed, splits=syn.splits, variant=syn.variant
    )
    return [
        f"data.{split}.{field}={getattr(p, field)}"
        for split, p in paths.items()
        for field in ("image_dir", "panoptic_json", "panoptic_dir")
    ]


def _load_results(path: Path) -> dict[tuple[str, int, int], dict[str, Any]]:
    done: dict[tuple[str, int, int], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                # first line wins: a later one may be a copy restored from the run's stored metrics
                done.setdefault((r["arch_key"], r["seed"], r["iterations"]), r)
    return done


def _summary(results: list[dict[str, Any]], archs: list[str], seeds: list[int], iterations: int) -> dict[str, Any]:
    by_arch = [
        [r["pq"] for r in results if r["arch_key"] == a and r["iterations"] == iterations and r["seed"] in seeds]
        for a in archs
    ]
    complete = [s for s in by_arch if len(s) == len(seeds)]
    out: dict[str, Any] = {"iterations": iterations, "complete_archs": len(complete)}
    if complete:
        means = [float(np.mean(s)) for s in complete]
        out.update(
            range=[min(means), max(means)],
            mean_pq_ci95=list(bootstrap_mean_ci(means, seed=0)),
            per_arch=[{"arch": a, "pq": s} for a, s in zip(archs, by_arch, strict=True) if len(s) == len(seeds)],
        )
    if len(complete) >= 2 and len(seeds) >= 2:
        out.update(seed_criterion(complete).as_dict())
        # the same criterion for things and stuff alone: which part separates architectures
        for metric in ("pq_th", "pq_st"):
            groups = [
                [r[metric] for r in results if r["arch_key"] == a and r["iterations"] == iterations and r["seed"] in seeds]
                for a in archs
            ]
            out[metric] = seed_criterion([g for g in groups if len(g) == len(seeds)]).as_dict()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--preset", default="bench")
    ap.add_argument("--archs", type=int, default=10, help="random architectures")
    ap.add_argument("--arch-seed", type=int, default=0, help="draws the architectures")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="retraining seeds")
    ap.add_argument("--short-iterations", type=int, default=None, help="also retrain this many steps (rank check)")
    ap.add_argument("--short-seeds", type=int, nargs="+", default=None, help="seeds of the short retraining (default: --seeds)")
    ap.add_argument("--arch-indices", type=int, nargs="+", default=None, help="retrain only these architectures now")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    args = ap.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    overrides = [*args.overrides, *_data_overrides(out, args.preset, args.overrides)]
    results_path = out / "results.jsonl"
    done = _load_results(results_path)

    # read-only: every worker opens it to learn the space (a run directory's lock admits one process)
    base = open_run(
        TASK, run_dir=out / "runs" / "space", preset=args.preset, overrides=overrides, progress=False, read_only=True
    )
    space = SearchSpace.from_module(base.task.build_supernet())
    rng = random.Random(args.arch_seed)
    archs = [space.sample(rng) for _ in range(args.archs)]
    full_iters = int(base.config.retrain.iterations)
    schedules = [full_iters] + ([args.short_iterations] if args.short_iterations else [])
    seeds_of = {full_iters: args.seeds}
    if args.short_iterations:
        seeds_of[args.short_iterations] = args.short_seeds or args.seeds

    for iterations in schedules:
        for index, arch in enumerate(archs):  # arch-major: a partial run holds complete architectures first
            if args.arch_indices is not None and index not in args.arch_indices:
                continue
            for seed in seeds_of[iterations]:
                done = {**_load_results(results_path), **done}  # other workers may have finished some
                if (arch.key, seed, iterations) in done or not claim(out / "claims", f"{arch.key}-s{seed}-it{iterations}"):
                    continue
                run_dir = out / "runs" / f"it{iterations}-seed{seed}-arch{index}"
                run = open_run(
                    TASK,
                    run_dir=run_dir,  # one per retraining, so that workers never share one (and its lock)
                    preset=args.preset,
                    overrides=[*overrides, f"seed={seed}", f"retrain.iterations={iterations}"],
                    progress=False,
                )
                t0, c0 = time.perf_counter(), time.process_time()
                metrics = run.retrain(arch).metrics
                record = {
                    "arch_key": arch.key,
                    "arch": arch.to_json(),
                    "seed": seed,
                    "iterations": iterations,
                    "run_dir": str(run_dir.relative_to(out)),
                    "pq": metrics["pq"],
                    "pq_th": metrics.get("pq_th"),
                    "pq_st": metrics.get("pq_st"),
                    "wall_s": time.perf_counter() - t0,
                    "cpu_s": time.process_time() - c0,
                }
                with results_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                done[(arch.key, seed, iterations)] = record
                print(f"it={iterations} seed={seed} arch={archs.index(arch)} PQ={record['pq']:.2f} "
                      f"({record['wall_s']:.0f} s wall)", flush=True)

    results = list(done.values())
    keys = [a.key for a in archs]
    report: dict[str, Any] = {
        "command": "python benchmarks/seed_criterion.py " + " ".join(argv or __import__("sys").argv[1:]),
        "preset": args.preset,
        "overrides": args.overrides,
        "seeds": args.seeds,
        "archs": len(archs),
        "seeds_per_schedule": {str(it): seeds_of[it] for it in schedules},
        "schedules": [_summary(results, keys, seeds_of[it], it) for it in schedules],
        "cost": {
            str(it): {
                "wall_s": sum(r["wall_s"] for r in results if r["iterations"] == it),
                "cpu_s": sum(r["cpu_s"] for r in results if r["iterations"] == it),
            }
            for it in schedules
        },
    }
    if len(schedules) == 2:
        long_s, short_s = report["schedules"]
        pairs = {p["arch"]: float(np.mean(p["pq"])) for p in short_s.get("per_arch", [])}
        both = [(float(np.mean(p["pq"])), pairs[p["arch"]]) for p in long_s.get("per_arch", []) if p["arch"] in pairs]
        if len(both) >= 3:
            x, y = zip(*both, strict=True)
            report["short_vs_long"] = {"n": len(both), "kendall_tau_b": kendall_tau_b(x, y), "spearman_rho": spearman_rho(x, y)}
    (out / "criterion.json").write_text(json.dumps(report, indent=1))
    (out / "criterion.md").write_text(_markdown(report))
    print(_markdown(report))


def _markdown(report: dict[str, Any]) -> str:
    lines = [f"# Seed criterion ({report['preset']}, seeds per schedule {report['seeds_per_schedule']})", "",
             f"`{report['command']}`", ""]
    lines += ["| retrain steps | archs | mean PQ (95% CI) | range of arch means | sd between archs | sd within (seeds) | ratio | CPU s |",
              "|---|---|---|---|---|---|---|---|"]
    for s in report["schedules"]:
        cpu = report["cost"][str(s["iterations"])]["cpu_s"]
        if "per_arch" not in s:
            lines.append(f"| {s['iterations']} | {s['complete_archs']} | – | – | – | – | – | {cpu:.0f} |")
            continue
        lo, hi = s["mean_pq_ci95"]
        means = [float(np.mean(p["pq"])) for p in s["per_arch"]]
        spread = (
            f"{s['between_sd']:.2f} | {s['within_sd']:.2f} | {s['ratio']:.2f}"
            if "ratio" in s else f"{np.std(means, ddof=1) if len(means) > 1 else float('nan'):.2f} | – | –"
        )
        lines.append(
            f"| {s['iterations']} | {s['complete_archs']} | {np.mean(means):.2f} ({lo:.2f}–{hi:.2f}) | "
            f"{s['range'][0]:.2f}–{s['range'][1]:.2f} | {spread} | {cpu:.0f} |"
        )
    for s in report["schedules"]:
        if "pq_th" in s:
            lines += ["", f"{s['iterations']} steps, the same for things and stuff alone:"]
            for metric, name in (("pq_th", "PQ things"), ("pq_st", "PQ stuff")):
                c = s[metric]
                lines.append(f"- {name}: mean {c['mean']:.2f}, sd between archs {c['between_sd']:.2f}, "
                             f"within {c['within_sd']:.2f}, ratio {c['ratio']:.2f}")
    if "short_vs_long" in report:
        c = report["short_vs_long"]
        lines += ["", f"Short vs long retraining over {c['n']} architectures: Kendall tau-b {c['kendall_tau_b']:.2f}, "
                  f"Spearman rho {c['spearman_rho']:.2f}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
