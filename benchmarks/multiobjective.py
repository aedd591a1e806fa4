"""Multi-objective search on NAS-Bench-Macro: accuracy against FLOPs, hypervolume per searcher.

Objectives: maximise CIFAR-10 accuracy (the searcher sees the table's mean accuracy plus Gaussian
noise of standard deviation ``sigma``, a fixed draw per architecture as a supernet would give),
minimise FLOPs (exact, from the table). Searchers, each with ``n`` distinct evaluations:

* ``nsga2``: optuna's NSGA-II (``oneshot.search.NSGA2Searcher.with_budget``);
* ``mo-random``: ``n`` distinct random architectures;
* ``pp-sweep``: path-priority under each of ``B`` FLOPs budgets (the table's FLOPs quantiles
  given by ``--flops-quantiles``; violating architectures never evaluated), about ``n / B``
  evaluations each (fair windows while they fit, plus the evaluated argmax), all sharing one
  cache so an architecture is evaluated once; the union of their evaluations.

Each searcher's Pareto set is taken on what it observed (noisy accuracy); its hypervolume is then
computed with the *true* mean accuracy, against the reference point (lowest accuracy in the table,
largest FLOPs in the table), and reported as a fraction of the hypervolume of the table's whole
true front. Intervals: 95% percentile bootstrap over seeds (10,000 resamples) of the mean.

Run from the repository root (writes JSON, a figure and markdown into ``--out``)::

    OMP_NUM_THREADS=1 python benchmarks/multiobjective.py \
        --table path/to/nas_bench_macro --seeds 30 --out runs/multiobjective

NAS-Bench-Macro is loaded with ``benchmarks.tabular``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tabular import NASBenchMacro
from oneshot.pareto_report import write_pareto
from oneshot.search import (
    HistoryEntry,
    PathPrioritySearcher,
    build_searcher,
    hypervolume,
    non_dominated,
    pareto_entries,
    parse_objectives,
)
from oneshot.space import Architecture

OBJECTIVES = parse_objectives(["fitness", "flops"])
DIRECTIONS = ["maximize", "minimize"]
METHODS = ("nsga2", "mo-random", "pp-sweep")


def make_fitness(bench: NASBenchMacro, sigma: float, seed: int) -> Callable[[Architecture], dict[str, float]]:
    table = bench.fitness(sigma, seed=seed)

    def fitness(arch: Architecture) -> dict[str, float]:
        rec = bench.record(arch)
        return {**table(arch), "flops": float(rec["flops"]), "params": float(rec["params"])}

    return fitness


def pp_sweep(bench: NASBenchMacro, fitness: Callable[[Architecture], Any], n: int, seed: int,
             flops_limits: Sequence[float]) -> tuple[list[HistoryEntry], int]:
    """Path-priority under each FLOPs limit; the union of evaluations and the rejected draws.

    Limit ``i`` of ``B`` may use what is left of ``n`` divided by the ``B - i`` limits still to
    run: fair windows (their feasible members) while they fit, keeping one evaluation for the
    final argmax, which is evaluated. Architectures evaluated under an earlier limit are reused.
    """
    space = bench.space
    cache: dict[Architecture, Any] = {}

    def cached(arch: Architecture) -> Any:
        if arch not in cache:
            cache[arch] = fitness(arch)
        return cache[arch]

    history: list[HistoryEntry] = []
    rejected = 0
    for i, limit in enumerate(flops_limits):
        def within(arch: Architecture, limit: float = limit) -> bool:
            nonlocal rejected
            ok = float(bench.record(arch)["flops"]) <= limit
            rejected += not ok
            return ok

        allot = (n - len(cache)) // (len(flops_limits) - i)
        stop_at = len(cache) + allot - 1  # one evaluation kept for the argmax
        searcher = PathPrioritySearcher(space, cycles=10**6, seed=1000 * seed + i)
        searcher.constraint = within
        while True:
            batch = searcher.ask()
            if not batch or len(cache) + len(set(batch) - set(cache)) > stop_at:
                break  # the last window does not fit: it is never evaluated
            searcher.tell([(a, cached(a)) for a in batch])
        if not searcher.history:
            continue
        best = searcher.result().best
        value = cached(best)
        history += searcher.history + [HistoryEntry(best, value["fitness"], 0.0, {k: v for k, v in value.items() if k != "fitness"})]
    return history, rejected


def run_one(bench: NASBenchMacro, method: str, n: int, sigma: float, seed: int,
            flops_limits: Sequence[float], reference: Sequence[float]) -> dict[str, Any]:
    fitness = make_fitness(bench, sigma, seed)
    start = time.perf_counter()
    rejected = 0
    if method == "pp-sweep":
        history, rejected = pp_sweep(bench, fitness, n, seed, flops_limits)
    else:
        result = build_searcher(method, bench.space, budget=n, seed=seed, objectives=OBJECTIVES).run(fitness)
        history = result.history
    seconds = time.perf_counter() - start
    front = pareto_entries(history, OBJECTIVES)  # on the observed (noisy) accuracy
    true_points = [[bench.accuracy(h.arch), h.metrics["flops"]] for h in front]
    return {
        "method": method, "budget": n, "sigma": sigma, "seed": seed,
        "evaluations": len({h.arch for h in history}),
        "front_size": len(front),
        "hypervolume": hypervolume(true_points, reference, DIRECTIONS),
        "rejected": rejected,
        "seconds": seconds,
        "front": [h.arch.key for h in front],
    }


def table_front(bench: NASBenchMacro) -> tuple[list[Architecture], list[list[float]]]:
    archs = [bench.space.validate([int(c) for c in key]) for key in sorted(bench.records)]
    points = [[bench.accuracy(a), float(bench.record(a)["flops"])] for a in archs]
    idx = non_dominated(points, DIRECTIONS)
    return [archs[i] for i in idx], [points[i] for i in idx]


def bootstrap_mean(values: Sequence[float], *, resamples: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), size=(resamples, len(arr)))].mean(axis=1)
    return float(arr.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarize(records: Sequence[dict[str, Any]], hv_table: float) -> list[dict[str, Any]]:
    out = []
    keys = sorted({(r["sigma"], r["budget"], r["method"]) for r in records}, key=lambda k: (k[0], k[1], METHODS.index(k[2])))
    for sigma, budget, method in keys:
        rs = sorted((r for r in records if (r["sigma"], r["budget"], r["method"]) == (sigma, budget, method)),
                    key=lambda r: r["seed"])
        mean, lo, hi = bootstrap_mean([r["hypervolume"] / hv_table for r in rs])
        out.append({
            "sigma": sigma, "budget": budget, "method": method, "runs": len(rs),
            "hv_ratio_mean": mean, "hv_ratio_ci95": [lo, hi],
            "mean_evaluations": statistics.fmean(r["evaluations"] for r in rs),
            "mean_front_size": statistics.fmean(r["front_size"] for r in rs),
            "mean_rejected": statistics.fmean(r["rejected"] for r in rs),
            "mean_seconds": statistics.fmean(r["seconds"] for r in rs),
        })
    return out


def paired(records: Sequence[dict[str, Any]], a: str, b: str, sigma: float, budget: int, hv_table: float) -> tuple[float, float, float]:
    by_seed: dict[int, dict[str, float]] = {}
    for r in records:
        if r["sigma"] == sigma and r["budget"] == budget and r["method"] in (a, b):
            by_seed.setdefault(r["seed"], {})[r["method"]] = r["hypervolume"] / hv_table
    return bootstrap_mean([v[a] - v[b] for v in by_seed.values() if a in v and b in v])


def plot(summary: Sequence[dict[str, Any]], path: Path) -> None:
    from oneshot.viz import _figure

    sigmas = sorted({s["sigma"] for s in summary})
    fig = _figure((4.4 * len(sigmas), 3.6))
    for i, sigma in enumerate(sigmas):
        ax = fig.add_subplot(1, len(sigmas), i + 1)
        budgets = sorted({s["budget"] for s in summary})
        for j, method in enumerate(METHODS):
            rows = [next(s for s in summary if (s["sigma"], s["budget"], s["method"]) == (sigma, b, method)) for b in budgets]
            x = np.arange(len(budgets)) + (j - 1) * 0.25
            y = [r["hv_ratio_mean"] for r in rows]
            err = [[r["hv_ratio_mean"] - r["hv_ratio_ci95"][0] for r in rows], [r["hv_ratio_ci95"][1] - r["hv_ratio_mean"] for r in rows]]
            ax.errorbar(x, y, yerr=err, fmt="o", capsize=3, label=method)
        ax.set_xticks(range(len(budgets)), [f"{b} evaluations" for b in budgets])
        ax.set_ylabel("hypervolume / table front's")
        ax.set_title(f"noise sigma = {sigma:g}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def markdown(summary: Sequence[dict[str, Any]], diffs: Sequence[tuple[float, int, str, tuple[float, float, float]]],
             meta: dict[str, Any]) -> str:
    lines = [
        f"Reference point: accuracy {meta['reference'][0]:.2f} %, FLOPs {meta['reference'][1]:.4g} "
        f"(lowest accuracy and largest FLOPs in the table); hypervolume of the table's true front "
        f"({meta['table_front_size']} architectures): {meta['hv_table']:.6g} (%·FLOPs). "
        f"FLOPs limits of the path-priority sweep: {', '.join(f'{v / 1e6:.1f} M' for v in meta['flops_limits'])}.",
        "",
        "| noise sigma | evaluations | searcher | runs | hypervolume / table front's (mean, 95% bootstrap CI) | mean front size | mean evaluations used | mean rejected draws |",
        "|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for s in summary:
        lo, hi = s["hv_ratio_ci95"]
        lines.append(
            f"| {s['sigma']:g} | {s['budget']} | {s['method']} | {s['runs']} | {s['hv_ratio_mean']:.4f} [{lo:.4f}, {hi:.4f}] "
            f"| {s['mean_front_size']:.1f} | {s['mean_evaluations']:.1f} | {s['mean_rejected']:.1f} |"
        )
    lines += ["", "Paired differences over seeds (same seed, same noise draw), mean [95% bootstrap CI]:", ""]
    for sigma, budget, label, (mean, lo, hi) in diffs:
        lines.append(f"- sigma {sigma:g}, {budget} evaluations, {label}: {mean:+.4f} [{lo:+.4f}, {hi:+.4f}]")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--table", required=True, help="nas-bench-macro_cifar10.json or its folder")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 1.0])
    p.add_argument("--budgets", type=int, nargs="+", default=[60, 300])
    p.add_argument("--flops-quantiles", type=float, nargs="+", default=[0.2, 0.4, 0.6, 0.8, 1.0])
    args = p.parse_args(argv)

    bench = NASBenchMacro.load(args.table)
    flops = np.array([float(r["flops"]) for r in bench.records.values()])
    accs = np.array([float(r["mean_acc"]) for r in bench.records.values()])
    reference = [float(accs.min()), float(flops.max())]
    limits = [float(np.quantile(flops, q)) for q in args.flops_quantiles]
    front_archs, front_points = table_front(bench)
    hv_table = hypervolume(front_points, reference, DIRECTIONS)
    meta = {"reference": reference, "hv_table": hv_table, "table_front_size": len(front_archs),
            "flops_limits": limits, "flops_quantiles": args.flops_quantiles, "seeds": args.seeds,
            "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])}

    records = []
    start = time.perf_counter()
    for sigma in args.sigmas:
        for n in args.budgets:
            for method in METHODS:
                for seed in range(args.seeds):
                    records.append(run_one(bench, method, n, sigma, seed, limits, reference))
            print(f"sigma {sigma:g}, {n} evaluations done ({time.perf_counter() - start:.0f} s)", flush=True)
    summary = summarize(records, hv_table)
    diffs = [(sigma, n, f"{a} - {b}", paired(records, a, b, sigma, n, hv_table))
             for sigma in args.sigmas for n in args.budgets
             for a, b in (("nsga2", "mo-random"), ("nsga2", "pp-sweep"), ("pp-sweep", "mo-random"))]
    meta["total_seconds"] = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "records.json").write_text(json.dumps(records) + "\n")
    (args.out / "summary.json").write_text(json.dumps({"meta": meta, "summary": summary,
                                                       "paired": [[s, n, lab, list(v)] for s, n, lab, v in diffs]}, indent=1) + "\n")
    (args.out / "multiobjective.md").write_text(markdown(summary, diffs, meta))
    plot(summary, args.out / "hypervolume.png")
    example = build_searcher("nsga2", bench.space, budget=max(args.budgets), seed=0, objectives=OBJECTIVES)
    result = example.run(make_fitness(bench, 0.0, 0))
    write_pareto(args.out / "example_pareto.json", args.out / "example_pareto.png", result.history, OBJECTIVES,
                 reference, marked=[result.best])
    print(markdown(summary, diffs, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
