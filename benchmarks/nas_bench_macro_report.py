"""The NAS-Bench-Macro comparison as a report: ``runs.json``, ``summary.json``, plots and ``report.md``.

Everything is written into the output folder; ``python -m benchmarks.publish OUT docs/benchmarks.md``
copies the report into the docs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.nas_bench_macro import (
    PolicyConfig,
    RunRecord,
    Summary,
    block_means,
    default_configs,
    markdown_table,
    paired_difference,
    run_nas_bench_macro,
    summarize,
)
from benchmarks.tabular import NASBenchMacro, load_nas_bench_macro
from oneshot.files import atomic_write_json, atomic_write_text

__all__ = ["NEW_POLICY", "SECTION_TITLE", "nas_bench_macro_report"]

SECTION_TITLE = "## Search policies on NAS-Bench-Macro"
NEW_POLICY = "path-priority-verify (new)"


def nas_bench_macro_report(
    *,
    table: str | Path | None,
    seeds: int = 20,
    out: str | Path = "runs/benchmarks/search-policies",
    sigmas: Sequence[float] = (0.0, 1.0),
    command: str = "",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the comparison on NAS-Bench-Macro and write its results into ``out``.

    Writes ``runs.json`` (every run), ``summary.json``, the plots ``search_*.png`` and
    ``report.md`` (the section :data:`SECTION_TITLE`, images linked beside it).
    """
    from oneshot.viz import plot_best_so_far, plot_explored_models, plot_score_heatmap

    if table is None:
        raise ValueError("the nas-bench-macro mode needs --table PATH (nas-bench-macro_cifar10.json)")
    bench = load_nas_bench_macro(table)
    configs = default_configs(bench.space.window_size)
    plot_labels = {c.label for c in configs if c.select == "result"}
    started = time.perf_counter()
    records, kept = run_nas_bench_macro(
        bench,
        seeds=seeds,
        sigmas=sigmas,
        configs=configs,
        keep_results=lambda cfg, seed, sigma: cfg.label in plot_labels and (seed == 0 or sigma == 0),
        progress=progress,
    )
    elapsed = time.perf_counter() - started
    summaries = summarize(records)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pp_label = next(c.label for c in configs if c.searcher == "path-priority" and c.group == "equal budget")
    paper_pp = next(c.label for c in configs if c.searcher == "path-priority" and c.group == "paper budgets")
    noisy = max(sigmas)
    plot_score_heatmap(
        kept[(pp_label, 0, noisy)],
        bench.space,
        path=out / "search_heatmap.png",
        title=f"Path-priority scores ({pp_label}, sigma {noisy:g}, seed 0)",
    )
    explored = {c.label: kept[(c.label, 0, noisy)] for c in configs if c.label in plot_labels and c.label != paper_pp}
    plot_explored_models(
        explored,
        path=out / "search_explored.png",
        ylabel=f"fitness seen (accuracy + noise, sigma {noisy:g})",
        title="Models explored in evaluation order (seed 0); star = returned model if evaluated",
    )
    clean = min(sigmas)
    curves = {
        c.label: [kept[(c.label, s, clean)] for s in range(seeds)]
        for c in configs
        if c.label in plot_labels and c.label != paper_pp
    }
    plot_best_so_far(
        curves,
        path=out / "search_best_so_far.png",
        ylabel=f"best accuracy evaluated so far (sigma {clean:g})",
        title=f"Best so far, mean and quartiles over {seeds} seeds",
    )

    body = _markdown_body(bench, records, summaries, configs, seeds, sigmas, elapsed, command)
    atomic_write_json(out / "runs.json", [asdict(r) for r in records])
    atomic_write_json(out / "summary.json", [asdict(s) for s in summaries])
    atomic_write_text(out / "report.md", f"{SECTION_TITLE}\n\n{body}\n")
    return {"summaries": summaries, "records": records, "seconds": elapsed, "out": str(out)}


def _markdown_body(
    bench: NASBenchMacro,
    records: Sequence[RunRecord],
    summaries: Sequence[Summary],
    configs: Sequence[PolicyConfig],
    seeds: int,
    sigmas: Sequence[float],
    elapsed: float,
    command: str,
) -> str:
    window = bench.space.window_size
    equal = [c for c in configs if c.group == "equal budget" and c.select == "result"]
    pp = next(c.label for c in equal if c.searcher == "path-priority")
    diag = next(c.label for c in configs if c.select == "best-evaluated")
    by = {(s.label, s.sigma): s for s in summaries}
    lines = [
        f"Command (took {elapsed:.0f} s on this machine, one process):",
        "",
        "```",
        command or f"python -m benchmarks.search_policies --table PATH --seeds {seeds}",
        "```",
        "",
        f"NAS-Bench-Macro: {len(bench)} architectures, 8 layers x 3 choices, CIFAR-10 accuracy. Every policy runs on "
        f"seeds 0..{seeds - 1} at noise sigma {', '.join(f'{s:g}' for s in sigmas)} (Gaussian noise in accuracy points, "
        "a deterministic function of seed and architecture: a fixed, noisy supernet). For one seed and sigma, all "
        "policies see the same noisy table. Scores are the **true** mean accuracy of the returned architecture and "
        "its rank percentile (share of the table strictly better; 0 = the best). Evaluations are distinct "
        "architectures evaluated.",
        "",
        f"Budgets. The fair window here is lcm(3) = {window}, so the paper's *5 cycles* is {5 * window} evaluations, "
        f"not 60 as with the panoptic window of 12; path-priority is therefore also run with {60 // window} cycles "
        "(60 evaluations) for the equal-budget comparison. Evolution at 60 evaluations uses "
        "`EvolutionSearcher.with_budget` (population 12, 5 generations, top-k 3). The diagnostic row re-reads "
        "the path-priority runs and returns the best *evaluated* model instead of the never-evaluated argmax "
        "(no extra evaluation).",
        "",
        markdown_table(summaries, bench.best_accuracy),
        "",
    ]
    for sigma in sigmas:
        parts = []
        for other in [c.label for c in equal if c.label != NEW_POLICY]:
            d, se, n = paired_difference(records, NEW_POLICY, other, sigma)
            parts.append(f"{other}: {d:+.3f} ± {se:.3f}")
        lines.append(f"- sigma {sigma:g}, paired difference of {NEW_POLICY} against " + "; ".join(parts) + f" (n = {n} seeds).")
    noisy = max(sigmas)
    if seeds >= 40:
        blocks_new = ", ".join(f"{v:.3f}" for v in block_means(records, NEW_POLICY, noisy))
        blocks_pp = ", ".join(f"{v:.3f}" for v in block_means(records, pp, noisy))
        ahead = sum(
            a > b for a, b in zip(block_means(records, NEW_POLICY, noisy), block_means(records, pp, noisy), strict=True)
        )
        lines.append(
            f"- sigma {noisy:g}, mean accuracy per block of 20 seeds: {NEW_POLICY} {blocks_new}; {pp} {blocks_pp} "
            f"(the new policy is ahead in {ahead} of {seeds // 20} blocks: with 20 seeds only, the two can tie)."
        )
    lines.append("")
    clean = min(sigmas)
    best_equal_clean = max((c.label for c in equal), key=lambda label: by[(label, clean)].mean_accuracy)
    lines += [
        "### Where path-priority loses at equal budget",
        "",
        f"- Without noise (sigma {clean:g}) the paper's policy returns {by[(pp, clean)].mean_accuracy:.3f} % on average, "
        f"while the best model it *evaluated* on the way averages {by[(diag, clean)].mean_accuracy:.3f} % and "
        f"{best_equal_clean} reaches {by[(best_equal_clean, clean)].mean_accuracy:.3f} %. The per-layer argmax of "
        "rank scores is never checked; it ignores how *much* better a model is (ranks only) and any interaction "
        "between layers, so it lands on a good region but rarely on the best model of it.",
        f"- With noise (sigma {noisy:g}) path-priority returns {by[(pp, noisy)].mean_accuracy:.3f} % against "
        f"{by[(diag, noisy)].mean_accuracy:.3f} % for its best evaluated model: aggregating ranks over many windows "
        "averages the noise out, while picking the single best noisy measurement (random, evolution) suffers "
        "the winner's curse.",
        "",
        "### The new policy: `path-priority-verify`",
        "",
        "Half the budget explores with whole fair windows, exactly as path-priority does. The other half fits an "
        "additive model (ridge least squares of fitness on one-hot (layer, choice) indicators: value-based path "
        "scores instead of ranks) and evaluates the best not-yet-evaluated combinations of that model, best score "
        "sum first, refitting after each batch of one window. It returns the evaluated model with the best "
        "0.5 x measured + 0.5 x model prediction, so a lucky noisy measurement alone does not win. The defaults "
        "(explore half, blend 0.5, ridge 1) were chosen on seeds 100 to 199, which the table above does not use.",
        "",
        "![path-priority score heatmap](search_heatmap.png)",
        "",
        "![models explored](search_explored.png)",
        "",
        "![best so far](search_best_so_far.png)",
    ]
    return "\n".join(lines)
