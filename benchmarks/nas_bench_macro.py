"""The NAS-Bench-Macro runner: the search policies on the table, with and without noise.

Every configuration is run for seeds ``0 .. seeds-1`` and every noise level. For a given seed and
noise level all searchers see the same noisy table (common random numbers), and they are scored by
the *true* accuracy of the architecture they return, never by the noisy value they saw. Each
search goes through :class:`oneshot.study.Study`, like every other evaluation in oneshot.

The report (plots, tables, ``report.md``) is :mod:`benchmarks.nas_bench_macro_report`; the command
line is ``python -m benchmarks.search_policies --table PATH``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.tabular import NASBenchMacro
from oneshot.search import SearchResult, build_searcher
from oneshot.space import Architecture
from oneshot.study import Study

__all__ = [
    "PolicyConfig",
    "RunRecord",
    "Summary",
    "block_means",
    "default_configs",
    "markdown_table",
    "paired_difference",
    "run_nas_bench_macro",
    "summarize",
]


@dataclass(frozen=True)
class PolicyConfig:
    """One row of the comparison: a registered searcher at a budget (via ``with_budget``)."""

    label: str
    searcher: str
    budget: int
    group: str  # "paper budgets" or "equal budget"
    select: str = "result"  # "result": the searcher's choice; "best-evaluated": diagnostic


@dataclass
class RunRecord:
    """The outcome of one configuration on one seed and noise level."""

    label: str
    searcher: str
    group: str
    seed: int
    sigma: float
    accuracy: float
    rank_percentile: float
    evaluations: int
    seconds: float
    best: str


def default_configs(window_size: int, equal_budget: int = 60) -> list[PolicyConfig]:
    """The paper's budgets (path-priority 5 cycles, EA 50 x 20, random 300) and an equal budget.

    On a space whose fair window is ``E``, "5 cycles" is ``5 E`` evaluations (15 on
    NAS-Bench-Macro, where ``E = lcm(3) = 3``, instead of the paper's 60 with ``E = 12``), so
    path-priority is also run with ``equal_budget // E`` cycles.
    """
    cycles_equal = equal_budget // window_size
    return [
        PolicyConfig(f"path-priority, 5 cycles ({5 * window_size} evals)", "path-priority", 5 * window_size, "paper budgets"),
        PolicyConfig("evolution 50 x 20", "evolution", 1000, "paper budgets"),
        PolicyConfig("random 300", "random", 300, "paper budgets"),
        PolicyConfig(f"path-priority, {cycles_equal} cycles", "path-priority", equal_budget, "equal budget"),
        PolicyConfig(
            f"path-priority, {cycles_equal} cycles, best evaluated (diagnostic)",
            "path-priority",
            equal_budget,
            "equal budget",
            select="best-evaluated",
        ),
        PolicyConfig("evolution", "evolution", equal_budget, "equal budget"),
        PolicyConfig("random", "random", equal_budget, "equal budget"),
        PolicyConfig("path-priority-verify (new)", "path-priority-verify", equal_budget, "equal budget"),
    ]


def _selected(result: SearchResult, select: str) -> Architecture:
    if select == "best-evaluated":
        return max(result.history, key=lambda h: h.fitness).arch
    return result.best


def run_nas_bench_macro(
    bench: NASBenchMacro,
    *,
    seeds: int = 20,
    sigmas: Sequence[float] = (0.0, 1.0),
    configs: Sequence[PolicyConfig] | None = None,
    keep_results: Callable[[PolicyConfig, int, float], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[RunRecord], dict[tuple[str, int, float], SearchResult]]:
    """Run every configuration for seeds ``0 .. seeds-1`` and every sigma.

    Returns the per-run records and the full :class:`SearchResult` of the runs selected by
    ``keep_results(config, seed, sigma)`` (for plots), keyed by ``(label, seed, sigma)``.
    Diagnostic configurations reuse the run of the searcher they diagnose.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    configs = list(configs or default_configs(bench.space.window_size))
    records: list[RunRecord] = []
    kept: dict[tuple[str, int, float], SearchResult] = {}
    for sigma in sigmas:
        for seed in range(seeds):
            fitness = bench.fitness(sigma, seed=seed)
            cache: dict[tuple[str, int], tuple[SearchResult, float]] = {}
            for cfg in configs:
                key = (cfg.searcher, cfg.budget)
                if key not in cache:
                    start = time.perf_counter()
                    searcher = build_searcher(cfg.searcher, bench.space, budget=cfg.budget, seed=seed)
                    cache[key] = (Study(fitness).optimize(searcher), time.perf_counter() - start)
                result, seconds = cache[key]
                best = _selected(result, cfg.select)
                records.append(
                    RunRecord(
                        cfg.label,
                        cfg.searcher,
                        cfg.group,
                        seed,
                        float(sigma),
                        bench.accuracy(best),
                        bench.rank_percentile(best),
                        result.num_evaluated,
                        seconds,
                        NASBenchMacro.key(best),
                    )
                )
                if keep_results is not None and keep_results(cfg, seed, sigma):
                    kept[(cfg.label, seed, float(sigma))] = result
            if progress is not None:
                progress(f"sigma={sigma:g} seed={seed} done")
    return records, kept


@dataclass
class Summary:
    """Aggregate of one configuration at one noise level."""

    label: str
    group: str
    sigma: float
    runs: int
    mean_accuracy: float
    sem_accuracy: float
    median_rank_percentile: float
    mean_evaluations: float


def summarize(records: Sequence[RunRecord]) -> list[Summary]:
    """Mean true accuracy (with its standard error), median rank percentile, evaluations used."""
    groups: dict[tuple[str, float], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.label, r.sigma), []).append(r)
    out = []
    for (label, sigma), rs in groups.items():
        accs = [r.accuracy for r in rs]
        sem = statistics.stdev(accs) / math.sqrt(len(accs)) if len(accs) > 1 else float("nan")
        out.append(
            Summary(
                label,
                rs[0].group,
                sigma,
                len(rs),
                statistics.fmean(accs),
                sem,
                statistics.median(r.rank_percentile for r in rs),
                statistics.fmean(r.evaluations for r in rs),
            )
        )
    return out


def paired_difference(records: Sequence[RunRecord], a: str, b: str, sigma: float) -> tuple[float, float, int]:
    """Mean and standard error of ``accuracy(a) - accuracy(b)`` over seeds, and the number of seeds."""
    by_seed: dict[int, dict[str, float]] = {}
    for r in records:
        if r.sigma == sigma and r.label in (a, b):
            by_seed.setdefault(r.seed, {})[r.label] = r.accuracy
    diffs = [v[a] - v[b] for v in by_seed.values() if a in v and b in v]
    if not diffs:
        raise ValueError(f"no paired runs of {a!r} and {b!r} at sigma {sigma}")
    sem = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return statistics.fmean(diffs), sem, len(diffs)


def block_means(records: Sequence[RunRecord], label: str, sigma: float, block: int = 20) -> list[float]:
    """Mean accuracy of ``label`` over consecutive blocks of ``block`` seeds."""
    accs = sorted((r.seed, r.accuracy) for r in records if r.label == label and r.sigma == sigma)
    return [statistics.fmean(a for _, a in accs[i : i + block]) for i in range(0, len(accs) - block + 1, block)]


def markdown_table(summaries: Sequence[Summary], best_accuracy: float | None = None) -> str:
    lines = [
        "| noise sigma | budget group | policy | evaluations used | mean true accuracy (%) ± s.e. | median rank percentile (% of table better) |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for s in sorted(summaries, key=lambda s: (s.sigma, s.group != "paper budgets")):
        lines.append(
            f"| {s.sigma:g} | {s.group} | {s.label} | {s.mean_evaluations:.0f} | "
            f"{s.mean_accuracy:.3f} ± {s.sem_accuracy:.3f} | {s.median_rank_percentile:.2f} |"
        )
    if best_accuracy is not None:
        lines += ["", f"Best architecture in the table: {best_accuracy:.3f} %."]
    return "\n".join(lines)
