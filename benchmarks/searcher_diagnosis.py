"""Where a searcher loses with few noisy evaluations: in the search, or in the final pick.

For each seed the searcher runs on a table plus Gaussian noise (as in
:mod:`benchmarks.noisy_search`); then the architectures it evaluated are judged again:

* ``returned``: the rank percentile of what the searcher returns (the share of the table strictly
  better, 0 = the best);
* ``best evaluated``: the truly best architecture among those it evaluated (an oracle pick: what
  the search put within reach);
* ``top-1 % evaluated``: how many of the evaluated architectures are in the table's top 1 %;
* the surrogate's pick rule (best posterior mean over the evaluated architectures, averaged over
  the kernel grid) re-applied to the same architectures, with the measured values, with the noise
  halved, and with the true values; and the same with two smaller kernel grids (purely additive;
  additive + pairwise without the short-range term).

If ``best evaluated`` is near 0 and the pick with true values is too, the search found the top and
only the noise stands between the pick and it; a kernel that wins with the measured values on one
table and loses on another is a sign of picking inside the noise.

Run from the repository root, e.g.::

    OMP_NUM_THREADS=1 python -m benchmarks.searcher_diagnosis --macro PATH --shapes 6x5,8x3 \\
        --table-seed 101 --first-seed 1000 --seeds 100 --budget 60 --out runs/diagnosis-60

Writes ``records.jsonl``, ``summary.json`` and ``results.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.noisy_search import (
    Table,
    add_table_arguments,
    limit_blas_threads,
    load_tables,
    percentile_stats,
    write_results,
)
from oneshot.search import build_searcher
from oneshot.search.match_kernel import MatchKernelGP

KERNELS: dict[str, dict[str, tuple[float, ...]]] = {
    "default grid": {},
    "additive": {"pair_grid": (0.0,), "local_grid": (0.0,)},
    "no short-range term": {"local_grid": (0.0,)},
}
DATA = ("measured", "half noise", "true")

_TABLES: dict[str, tuple[str, Table]] = {}  # per worker process: "macro" or a shape -> (name, table)


def posterior_pick(num_choices: tuple[int, ...], choices: np.ndarray, values: np.ndarray, **grids: Any) -> int:
    """Index of the best model-averaged posterior mean among ``choices`` (the surrogate's rule)."""
    gp = MatchKernelGP(num_choices, **grids).fit(choices, values)
    return int(np.argmax(gp.averaged_mean(choices)))


def diagnose(table: Table, searcher: str, budget: int, sigma: float, seed: int) -> dict[str, Any]:
    """One seed: run ``searcher`` and judge its evaluated architectures (module docstring)."""
    result = build_searcher(searcher, table.space, budget=budget, seed=seed).run(table.fitness(sigma, seed=seed))
    archs = [h.arch for h in result.history]
    measured = np.array([h.fitness for h in result.history], dtype=float)
    true = np.array([table.accuracy(a) for a in archs], dtype=float)
    percentiles = np.array([table.rank_percentile(a) for a in archs])
    choices = np.array([a.choices for a in archs], dtype=np.int64)
    values = {"measured": measured, "half noise": true + (measured - true) / 2, "true": true}
    record: dict[str, Any] = {
        "seed": seed,
        "returned": table.rank_percentile(result.best),
        "best evaluated": float(percentiles.min()),
        "top-1 % evaluated": int((percentiles < 1.0).sum()),
        "evaluations": len(archs),
    }
    for kernel, grids in KERNELS.items():
        for data in DATA:
            pick = posterior_pick(table.space.num_choices, choices, values[data], **grids)
            record[f"{kernel} / {data}"] = float(percentiles[pick])
    return record


def _job(args: tuple[str | None, str, int, str, int, float, int]) -> dict[str, Any]:
    """One seed on one table: ``shape`` is a synthetic table's shape, or ``""`` for NAS-Bench-Macro."""
    macro, shape, table_seed, searcher, budget, sigma, seed = args
    key = shape or "macro"
    if key not in _TABLES:
        tables = load_tables(None if shape else macro, [shape] if shape else [], table_seed)
        _TABLES[key] = next(iter(tables.items()))
    name, table = _TABLES[key]
    return {"table": name, **diagnose(table, searcher, budget, sigma, seed)}


def summarize(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per table and column: median with bootstrap 95 % interval, and the share in the top 1 %."""
    out = []
    for table in dict.fromkeys(r["table"] for r in records):
        rs = [r for r in records if r["table"] == table]
        for column in [k for k in rs[0] if k not in ("table", "seed", "evaluations")]:
            v = [float(r[column]) for r in rs]
            row = {"table": table, "column": column, "runs": len(v), **percentile_stats(v)}
            if column == "top-1 % evaluated":  # a count, not a percentile
                del row["top1_share"]
            out.append(row)
    return out


def markdown(summary: Sequence[dict[str, Any]]) -> str:
    lines = ["| table | column | runs | median (95 % CI) | runs in top 1 % |", "|---|---|---:|---:|---:|"]
    for s in summary:
        lo, hi = s["ci95"]
        share = f"{s['top1_share']:.0f} %" if "top1_share" in s else ""
        lines.append(f"| {s['table']} | {s['column']} | {s['runs']} | {s['median']:.2f} ({lo:.2f} - {hi:.2f}) | {share} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_table_arguments(parser, shapes="6x5,8x3", table_seed=101, first_seed=1000)
    parser.add_argument("--searcher", default="surrogate")
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2, help="processes (one per core)")
    parser.add_argument("--out", default="runs/benchmarks/searcher-diagnosis")
    args = parser.parse_args(argv)
    limit_blas_threads(args.blas_threads)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shapes = [s for s in args.shapes.split(",") if s]
    jobs = [
        (args.macro, shape, args.table_seed, args.searcher, args.budget, args.sigma, seed)
        for shape in ([""] if args.macro else []) + shapes
        for seed in range(args.first_seed, args.first_seed + args.seeds)
    ]
    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    with (out / "records.jsonl").open("w") as sink, Pool(
        max(1, args.workers), initializer=limit_blas_threads, initargs=(args.blas_threads,)  # spawned workers do not inherit it
    ) as pool:
        for i, record in enumerate(pool.imap(_job, jobs, chunksize=1), 1):
            records.append(record)
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            if i % 25 == 0 or i == len(jobs):
                print(f"{i}/{len(jobs)} runs, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    summary = summarize(records)
    command = "python -m benchmarks.searcher_diagnosis " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results(out, command, time.perf_counter() - start, summary, markdown(summary))


if __name__ == "__main__":
    main()
