"""Can the first fair evaluations tell a saturating table from one with interactions?

``model-select`` decides from its first fair windows whether a table is saturating-additive
(NAS-Bench-Macro: a global design read by the saturating model wins) or has interactions (cell
and synthetic tables: the adaptive surrogate wins), and the earlier it decides, the more of the
budget the surrogate gets. This script measures how well statistics of the first ``n`` fair
evaluations (noise ``--sigma``) separate the two kinds, with no search around them. Per table
and search seed it records, at each ``n`` of ``--sizes`` (rounded down to whole fair windows, as
model-select rounds its tests: 18 is 16 evaluations on a table of 4 choices per layer):

* ``cv``: model-select's test, the cross-validated squared error of the saturating model over
  the surrogate's Gaussian process (above its threshold: the surrogate);
* ``sat-vs-additive``: the same ratio, saturating model over plain additive ridge;
* ``additive-vs-gp``: the same ratio, the GP restricted to its additive kernel over the full GP;
* ``interaction-weight``: the GP's pairwise plus local kernel weights, averaged over its
  hyperparameter grid with the marginal-likelihood weights;
* ``clipped``: measurements raised by the clipping of failed ones (chance-level networks).

Each is oriented so that a higher value says "interactions". The summary gives per table the
10th / 50th / 90th percentiles, and per statistic and ``n`` two figures against the reference
table (``--reference``, default NAS-Bench-Macro): the best balanced accuracy of one threshold
(mean of the reference's share below it and the other tables' mean share above it), and the
reference's share below the threshold that keeps at least 95 % of every other table's runs
above it (what a router could send to the saturating model without misrouting more than 5 % of
any interaction table). Example::

    OMP_NUM_THREADS=1 python -m benchmarks.router_statistics --macro PATH/nas-bench-macro_cifar10.json \\
        --shapes "" --first-seed 1000 --seeds 300 --out runs/router
    OMP_NUM_THREADS=1 python -m benchmarks.router_statistics --shapes "" --cells 4x5 --table-seed 1 \\
        --first-seed 1000 --seeds 300 --out runs/router   # the same folder: the tables add up

``--design`` chooses the windows: ``fair`` (default; model-select's design until it took
pair-balanced windows, and the design of the documented runs) or ``fair-balanced`` (its design
now, :class:`~oneshot.sampling.PairBalancedFairSampler`).

Writes ``records.jsonl`` (appended as runs finish; a rerun skips the records already there, and
runs of several invocations into one folder are summarised together) and ``summary.md``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np

from benchmarks.noisy_search import Table, add_table_arguments, limit_blas_threads, load_tables
from oneshot.sampling import build_sampler
from oneshot.search import MatchKernelGP, SaturatingAdditiveModel
from oneshot.search.base import Evaluation
from oneshot.search.model_select import cross_validated_error_ratio
from oneshot.search.outliers import clip_low_outliers
from oneshot.search.path_priority import Design
from oneshot.space import Architecture

STATISTICS = ("cv", "sat-vs-additive", "additive-vs-gp", "interaction-weight", "clipped")
COVERAGE = 0.95  # share of every interaction table's runs a router must keep on the surrogate side
Predictor = Callable[[np.ndarray], np.ndarray]


def fair_design(table: Table, seed: int, size: int, design: Design = "fair") -> list[Architecture]:
    """The first ``size`` distinct architectures of the ``design`` windows of ``seed`` (model-select's design)."""
    sampler = build_sampler(design, table.space, seed=seed)
    archs: list[Architecture] = []
    while len(archs) < size:
        archs.extend(a for a in dict.fromkeys(sampler.next_window()) if a not in archs)
    return archs[:size]


def statistics_of(num_choices: tuple[int, ...], x: np.ndarray, measured: Sequence[float]) -> dict[str, float]:
    """Every statistic of :data:`STATISTICS` on ``(n, L)`` choices and their measurements."""
    y = clip_low_outliers(measured, mads=6.0)  # as the searchers clip (their default clip_outliers)

    def saturating(xt: np.ndarray, yt: np.ndarray) -> Predictor:
        return SaturatingAdditiveModel(num_choices).fit(xt, yt).predict

    def additive(xt: np.ndarray, yt: np.ndarray) -> Predictor:
        return SaturatingAdditiveModel(num_choices, saturating=False).fit(xt, yt).predict

    def gp(xt: np.ndarray, yt: np.ndarray) -> Predictor:
        return MatchKernelGP(num_choices).fit(xt, yt).averaged_mean

    def additive_gp(xt: np.ndarray, yt: np.ndarray) -> Predictor:
        return MatchKernelGP(num_choices, pair_grid=(0.0,), local_grid=(0.0,)).fit(xt, yt).averaged_mean

    full = MatchKernelGP(num_choices).fit(x, y)
    interaction = float(sum(w * (p[0] + p[1]) for w, p in zip(full.grid_weights(), full.grid_params, strict=True)))
    return {
        "cv": cross_validated_error_ratio(x, y, saturating, gp),
        "sat-vs-additive": cross_validated_error_ratio(x, y, saturating, additive),
        "additive-vs-gp": cross_validated_error_ratio(x, y, additive_gp, gp),
        "interaction-weight": interaction,
        "clipped": float(np.sum(np.asarray(measured, dtype=float) < y - 1e-9)),
    }


def run_one(
    table: Table, sigma: float, seed: int, sizes: Sequence[int], design: Design = "fair"
) -> dict[str, dict[str, float]]:
    """``{str(n): statistics}`` of the first ``n`` fair evaluations, ``n`` rounded down to whole
    windows (at least one) as model-select rounds its tests; ``"evaluations"`` is the rounded size."""
    window = table.space.window_size
    rounded = {n: max(window, n // window * window) for n in sizes}
    archs = fair_design(table, seed, max(rounded.values()), design)
    fitness = table.fitness(sigma, seed=seed)
    measured = [Evaluation.from_value(fitness(a), arch=a).fitness for a in archs]
    x = np.array([a.choices for a in archs], dtype=np.int64)
    return {
        str(n): {**statistics_of(table.space.num_choices, x[:m], measured[:m]), "evaluations": m}
        for n, m in rounded.items()
    }


def separation(reference: np.ndarray, others: Sequence[np.ndarray]) -> tuple[float, float]:
    """(best balanced accuracy of one threshold, reference share below the 95 %-coverage threshold)."""
    thresholds = np.unique(np.concatenate([reference, *others]))
    best = 0.5
    for t in thresholds:
        below = float(np.mean(reference < t))
        above = float(np.mean([np.mean(o >= t) for o in others]))
        best = max(best, 0.5 * (below + above))
    cut = min(float(np.quantile(o, 1.0 - COVERAGE, method="lower")) for o in others)
    return best, float(np.mean(reference < cut))


def summarise(records: Sequence[dict[str, Any]], reference: str) -> list[str]:
    """Markdown lines: per statistic and size, every table's percentiles and the two separation
    figures against ``reference`` (which comes first)."""
    by_table: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_table.setdefault(r["table"], []).append(r)
    if reference not in by_table or len(by_table) < 2:
        return [f"need runs of the reference table {reference!r} and at least one other table"]
    sizes = sorted({int(n) for r in records for n in r["statistics"]})
    names = [reference, *sorted(t for t in by_table if t != reference)]
    lines = [
        "Percentiles 10 / 50 / 90 of each statistic; separation: best balanced accuracy of one threshold; "
        f"reference ({reference}) runs below the threshold that keeps {COVERAGE:.0%} of every other table's runs above it.",
        "",
        "| statistic | n | " + " | ".join(f"{t} ({len(by_table[t])} runs)" for t in names) + " | balanced accuracy | reference below |",
        "|---|---:|" + "---:|" * (len(names) + 2),
    ]
    for stat in STATISTICS:
        for n in sizes:
            values = {t: np.array([r["statistics"][str(n)][stat] for r in by_table[t] if str(n) in r["statistics"]]) for t in names}
            if any(len(v) == 0 for v in values.values()):
                continue
            cells = [" / ".join(f"{np.percentile(v, q):.2f}" for q in (10, 50, 90)) for v in values.values()]
            accuracy, below = separation(values[reference], [values[t] for t in names[1:]])
            lines.append(f"| {stat} | {n} | " + " | ".join(cells) + f" | {accuracy:.2f} | {below:.0%} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_table_arguments(parser, shapes="", table_seed=0, first_seed=1000, cells="")
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--sizes", default="18,30,45", help="design sizes (evaluations), comma-separated")
    parser.add_argument("--reference", default="NAS-Bench-Macro (8x3)", help="the saturating table (as named in the records)")
    parser.add_argument("--design", choices=get_args(Design), default="fair", help="the windows (see above)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    limit_blas_threads(args.blas_threads)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        raise SystemExit(f"error: --sizes {args.sizes!r}: expected comma-separated integers") from None
    if not sizes or min(sizes) < 4:
        raise SystemExit(f"error: --sizes {args.sizes!r}: every size must be at least 4")
    tables = load_tables(args.macro, [s for s in args.shapes.split(",") if s], args.table_seed, [c for c in args.cells.split(",") if c])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "records.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    records = [r for r in records if r.get("design", "fair") == args.design]  # one design per summary
    done = {(r["table"], r["sigma"], r["seed"]) for r in records}
    with path.open("a") as fh:
        for name, table in tables.items():
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                if (name, args.sigma, seed) in done:
                    continue
                statistics = run_one(table, args.sigma, seed, sizes, args.design)
                record = {"table": name, "sigma": args.sigma, "seed": seed, "design": args.design, "statistics": statistics}
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                records.append(record)
    text = "\n".join(summarise([r for r in records if r["sigma"] == args.sigma], args.reference))
    (out / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
