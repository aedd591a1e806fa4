"""How much n noisy evaluations can tell: an oracle told where the top of the table is.

A searcher that must return a top-1 % architecture from ``n`` evaluations with noise ``sigma`` has
to learn, from those measurements alone, which choices separate the top 1 % from the rest of the
top few percent. This benchmark measures how often that is possible even for a searcher given
information that no real searcher has:

* the **region**: for every layer, the ``keep`` choices seen most often among the table's top-1 %
  architectures (on NAS-Bench-Macro with ``keep=2``: every choice but ``identity``, i.e. the
  2^8 = 256 architectures where the top 1 % concentrates);
* the **model**: inside that small region the table is close to additive (the report gives the
  share of the region's variance an additive fit explains), so the oracle fits exactly that.

For each seed the oracle evaluates ``n`` distinct architectures drawn uniformly from the region
(all of them when the region is smaller), with the same deterministic noise as
:mod:`benchmarks.noisy_search` (``table.fitness(sigma, seed=seed)``), fits one effect per (layer,
kept choice) by least squares and returns the per-layer argmax. Its rank percentile (share of the
table strictly better, 0 = the best) is reported with a bootstrap 95 % interval of the median and the
share of runs in the top 1 %; so is the same rule applied to the true values of the same
architectures (what the noise costs, as opposed to the model).

If this oracle's median is not in the top 1 % at some ``(n, sigma)``, a searcher without its
information has little hope of one: the measurements do not carry enough information.

Run from the repository root, e.g.::

    python -m benchmarks.region_oracle --macro PATH/nas-bench-macro_cifar10.json --shapes 6x5,8x3 \\
        --table-seed 101 --budgets 60,120,300 --sigmas 0.5,1 --seeds 100 --out runs/region-oracle

Writes ``records.jsonl``, ``summary.json`` and ``results.md`` into ``--out``. Only tables small
enough to enumerate (at most ``--max-size`` architectures) are accepted: the region is read from
the whole table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
from oneshot.search.base import Evaluation

DEFAULT_MAX_SIZE = 200_000


@dataclass(frozen=True)
class Region:
    """The oracle's region of a table: ``kept[layer]`` are the choices it may use at ``layer``.

    ``choices`` (``(R, L)``) are the region's architectures, ``accuracy`` (``(R,)``) their true
    values and ``percentile`` (``(R,)``) their rank percentiles in the whole table.
    """

    kept: tuple[tuple[int, ...], ...]
    choices: np.ndarray
    accuracy: np.ndarray
    percentile: np.ndarray
    top1_inside: float  # share (%) of the table's top 1 % inside the region
    additive_r2: float  # share of the region's variance explained by an additive fit

    def design(self, rows: np.ndarray) -> np.ndarray:
        """One-hot ``(n, sum(keep))`` encoding of region rows ``(n, L)`` over the kept choices."""
        return _onehot(rows, self.kept)


def table_region(table: Table, keep: int, *, max_size: int = DEFAULT_MAX_SIZE) -> Region:
    """The region of ``table`` (module docstring), read from the whole enumerated table."""
    counts = table.space.num_choices
    size = int(np.prod(counts, dtype=np.int64))
    if size > max_size:
        raise ValueError(f"the table has {size} architectures, more than the {max_size} the oracle may enumerate (--max-size)")
    every = np.array(list(itertools.product(*[range(k) for k in counts])), dtype=np.int64)
    acc = np.array([table.accuracy(table.space.architecture(row.tolist())) for row in every])
    in_top = acc >= np.quantile(acc, 0.99)
    top = every[in_top]
    kept: list[tuple[int, ...]] = []
    for layer, k in enumerate(counts):
        freq = np.bincount(top[:, layer], minlength=k)
        kept.append(tuple(sorted(sorted(range(k), key=lambda c: (-freq[c], c))[: min(keep, k)])))
    inside = np.all([np.isin(every[:, layer], kept[layer]) for layer in range(len(counts))], axis=0)
    top1_inside = 100.0 * float(inside[in_top].mean())
    rows, racc = every[inside], acc[inside]
    x = _onehot(rows, kept)
    coef, *_ = np.linalg.lstsq(x, racc, rcond=None)
    r2 = 1.0 - float(np.var(racc - x @ coef) / max(float(np.var(racc)), 1e-12))
    pct = np.array([table.rank_percentile(table.space.architecture(r.tolist())) for r in rows])
    return Region(tuple(kept), rows, racc, pct, top1_inside, r2)


def _onehot(rows: np.ndarray, kept: Sequence[tuple[int, ...]]) -> np.ndarray:
    cols = [np.equal.outer(rows[:, layer], np.array(k)).astype(float) for layer, k in enumerate(kept)]
    return np.concatenate(cols, axis=1)


def additive_pick(region: Region, rows: np.ndarray, values: np.ndarray) -> int:
    """Index in ``region.choices`` of the per-layer argmax of an additive least-squares fit."""
    x = region.design(rows)
    coef, *_ = np.linalg.lstsq(x, values - values.mean(), rcond=None)
    pick, start = [], 0
    for kept in region.kept:
        block = coef[start : start + len(kept)]
        pick.append(kept[int(np.argmax(block))])  # first of equals
        start += len(kept)
    return int(np.flatnonzero(np.all(region.choices == np.array(pick), axis=1))[0])


def oracle_run(table: Table, region: Region, budget: int, sigma: float, seed: int) -> dict[str, Any]:
    """One seed: ``budget`` distinct region architectures, measured with noise, and the pick."""
    rng = np.random.default_rng([seed, 5107])
    n = min(budget, len(region.choices))
    idx = rng.choice(len(region.choices), size=n, replace=False)
    rows = region.choices[idx]
    fitness = table.fitness(sigma, seed=seed)
    measured = np.array([Evaluation.from_value(fitness(table.space.architecture(r.tolist()))).fitness for r in rows])
    return {
        "budget": budget,
        "sigma": sigma,
        "seed": seed,
        "evaluations": n,
        "oracle": float(region.percentile[additive_pick(region, rows, measured)]),
        "oracle / true values": float(region.percentile[additive_pick(region, rows, region.accuracy[idx])]),
    }


def summarize(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (table, budget, sigma, column): median with bootstrap 95 % interval, share in the top 1 %."""
    out = []
    keys = dict.fromkeys((r["table"], r["budget"], r["sigma"]) for r in records)
    for table, budget, sigma in keys:
        rs = [r for r in records if (r["table"], r["budget"], r["sigma"]) == (table, budget, sigma)]
        for column in ("oracle", "oracle / true values"):
            v = [float(r[column]) for r in rs]
            out.append({
                "table": table, "budget": budget, "sigma": sigma, "column": column, "runs": len(v),
                "evaluations": rs[0]["evaluations"], **percentile_stats(v),
            })
    return out


def markdown(summary: Sequence[dict[str, Any]], regions: dict[str, Region]) -> str:
    lines = ["| table | region (top 1 % inside; additive R^2) | evaluations | sigma | runs | oracle | oracle / true values |",
             "|---|---|---:|---:|---:|---:|---:|"]
    cells: dict[tuple[str, int, float], dict[str, str]] = {}
    for s in summary:
        lo, hi = s["ci95"]
        key = (s["table"], s["evaluations"], s["sigma"])
        cells.setdefault(key, {"runs": str(s["runs"])})[s["column"]] = f"{s['median']:.2f} ({lo:.2f} - {hi:.2f}); {s['top1_share']:.0f} %"
    for (table, n, sigma), c in cells.items():
        r = regions[table]
        lines.append(f"| {table} | {len(r.choices)} ({r.top1_inside:.0f} %; {r.additive_r2:.2f}) | {n} | {sigma:g} | {c['runs']} | {c['oracle']} | {c['oracle / true values']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_table_arguments(parser, shapes="6x5,8x3", table_seed=101, first_seed=0)
    parser.add_argument("--keep", type=int, default=2, help="choices per layer in the oracle's region")
    parser.add_argument("--budgets", default="60")
    parser.add_argument("--sigmas", default="1")
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE, help="largest table to enumerate")
    parser.add_argument("--out", default="runs/benchmarks/region-oracle")
    args = parser.parse_args(argv)
    limit_blas_threads(args.blas_threads)

    try:
        budgets = [int(b) for b in args.budgets.split(",")]
        sigmas = [float(s) for s in args.sigmas.split(",")]
        tables = load_tables(args.macro, [s for s in args.shapes.split(",") if s], args.table_seed)
        if args.keep < 1 or any(b < 1 for b in budgets) or any(s < 0 for s in sigmas):
            raise ValueError("--keep and --budgets must be positive, --sigmas non-negative")
        start = time.perf_counter()
        regions = {name: table_region(table, args.keep, max_size=args.max_size) for name, table in tables.items()}
    except ValueError as exc:
        raise SystemExit(f"region_oracle: {exc}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    with (out / "records.jsonl").open("w") as sink:
        for name, table in tables.items():
            for budget in budgets:
                for sigma in sigmas:
                    for seed in range(args.first_seed, args.first_seed + args.seeds):
                        record = {"table": name, **oracle_run(table, regions[name], budget, sigma, seed)}
                        records.append(record)
                        sink.write(json.dumps(record) + "\n")
                    print(f"{name} n={budget} sigma={sigma:g}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    summary = summarize(records)
    for s in summary:
        r = regions[s["table"]]
        s.update(region_size=len(r.choices), region_top1_inside=r.top1_inside, region_additive_r2=r.additive_r2, kept=r.kept)
    command = "python -m benchmarks.region_oracle " + " ".join(argv if argv is not None else sys.argv[1:])
    write_results(out, command, time.perf_counter() - start, summary, markdown(summary, regions))


if __name__ == "__main__":
    main()
