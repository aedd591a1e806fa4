"""The task benchmark's results as one JSON-ready summary (``summary.json``) and its figures.

The fitness is named after the task's first report column when that column *is* the fitness
(``pq`` for panoptic, ``accuracy`` for toy); the other report columns present in the retrained
metrics become the extra table columns (:attr:`oneshot.tasks.Task.report_columns`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.task_policies import Candidate, CostLedger, PolicySpec
from benchmarks.task_report import _mean_sd
from benchmarks.task_stats import comparison_stats
from oneshot.space import SearchSpace

__all__ = ["build_summary", "fitness_columns", "write_plots"]


def fitness_columns(report_columns: Sequence[str], metrics: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The fitness's display name and the extra metric columns, from a task's report columns."""
    if report_columns and report_columns[0] in metrics and metrics[report_columns[0]] == metrics.get("fitness"):
        return report_columns[0], [k for k in report_columns[1:] if k in metrics]
    return "fitness", [k for k in report_columns if k in metrics]


def build_summary(
    task: str,
    preset: str | None,
    overrides: Sequence[str],
    pipeline: Any,
    space: SearchSpace,
    specs: Sequence[PolicySpec],
    runs: Sequence[dict[str, Any]],
    candidates: Sequence[Candidate],
    trust: dict[str, Any],
    bn: dict[str, Any],
    ledger: CostLedger,
    *,
    seeds: int,
    budget_scale: float,
    policy_options: Mapping[str, Any],
    retrain_seeds: Sequence[int],
    elapsed: float,
    command: str,
) -> dict[str, Any]:
    retrained = {c.arch: c.retrained for c in candidates}
    sample = next((c.retrained for c in candidates if c.retrained), None) or {}
    fitness_name, extra = fitness_columns(pipeline.task_cls.report_columns, sample)
    policies = []
    for spec in specs:
        rs = [r for r in runs if r["searcher"] == spec.searcher]
        policies.append(
            {
                "label": rs[0]["label"],
                "searcher": spec.searcher,
                "spec": spec.to_json(),
                "seeds": [
                    {
                        "seed": r["seed"],
                        "found": r["result"].best.key,
                        "evaluations": r["evaluations"],
                        "new_evaluations": r["new_evaluations"],
                        "new_eval_s": r["new_eval_s"],
                        "unshared_eval_s": r["unshared_eval_s"],
                        "fresh_evaluations": r["fresh_evaluations"],
                        "wall_s": r["wall_s"],
                        "cpu_s": r["cpu_s"],
                        "supernet": r["found_metrics"],
                        "retrained": retrained.get(r["result"].best),
                    }
                    for r in rs
                ],
            }
        )
    seen_fitness = {h.arch: h.fitness for r in runs for h in r["result"].history}
    values = list(seen_fitness.values())
    search_fitness = {
        "architectures": len(values),
        "distinct_values": len(set(values)),
        "min": min(values) if values else None,
        "max": max(values) if values else None,
    }
    cand = [
        {"key": c.arch.key, "architecture": c.arch.to_json(), "roles": c.roles, "kind": c.kind,
         "supernet": c.supernet, "retrained": c.retrained,
         "retrained_runs": {str(k): v for k, v in sorted(c.runs.items())}}
        for c in candidates
    ]
    return {
        "task": task,
        "preset": preset or pipeline.task_cls.default_preset(),
        "overrides": list(overrides),
        "run_dir": str(pipeline.run_dir),
        "device": str(pipeline.device),
        "space": {"size": space.size, "layers": space.num_layers, "window_size": space.window_size},
        "supernet_steps": pipeline.config.train.iterations,
        "retrain_steps": pipeline.config.retrain.iterations,
        "seeds": seeds,
        "budget_scale": budget_scale,
        "policy_options": {k: dict(v) for k, v in policy_options.items()},
        "retrain_seeds": list(retrain_seeds),
        "fitness_name": fitness_name,
        "extra_metrics": extra,
        "policies": policies,
        "search_fitness": search_fitness,
        "candidates": cand,
        "stats": _comparison(policies, cand),
        "trust": trust,
        "bn_recalibration": bn,
        "costs": ledger.entries,
        "elapsed_s": elapsed,
        "command": command,
    }


def _comparison(policies: Sequence[Mapping[str, Any]], candidates: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Intervals and claim verdicts (:func:`benchmarks.task_stats.comparison_stats`): one value per
    search seed (its found architecture's mean over retraining seeds), one per random architecture."""
    per_policy = {
        p["searcher"]: [s["retrained"]["fitness"] for s in p["seeds"] if s["retrained"]] for p in policies
    }
    randoms = [c["retrained"]["fitness"] for c in candidates
               if any(r.startswith("random") for r in c["roles"]) and c["retrained"]]
    return comparison_stats({k: v for k, v in per_policy.items() if v}, randoms,
                            labels={p["searcher"]: p["label"] for p in policies})


def write_plots(summary: Mapping[str, Any], folder: Path) -> None:
    """The figures of the report, into ``folder`` (``policies_*.png``)."""
    from benchmarks.plots import (
        PolicyBar,
        TrustPoint,
        plot_bn_recalibration,
        plot_policy_comparison,
        plot_random_vs_searched,
        plot_supernet_trust,
    )

    name = summary["fitness_name"]
    bars = []
    intervals = summary["stats"]["policies"]
    for p in summary["policies"]:
        sup = [s["supernet"]["fitness"] for s in p["seeds"]]
        ret = [s["retrained"]["fitness"] for s in p["seeds"] if s["retrained"]]
        ci = intervals.get(p["searcher"], {})
        bars.append(PolicyBar(p["label"], statistics.fmean(s["evaluations"] for s in p["seeds"]),
                              _mean_sd(sup)[0], _mean_sd(ret)[0] if ret else None,
                              _mean_sd(sup)[1] if len(sup) > 1 else None,
                              retrained_low=ci.get("low"), retrained_high=ci.get("high"),
                              retrained_seeds=tuple(ret)))
    plot_policy_comparison(bars, fitness_name=name, path=folder / "policies_table5.png",
                           title=f"Search policies on the {summary['task']} supernet")
    randoms = [c["retrained"]["fitness"] for c in summary["candidates"] if any(r.startswith("random") for r in c["roles"])]
    searched = {p["label"]: statistics.fmean(s["retrained"]["fitness"] for s in p["seeds"])
                for p in summary["policies"] if all(s["retrained"] for s in p["seeds"])}
    if randoms or searched:
        plot_random_vs_searched(randoms, searched, fitness_name=name, path=folder / "policies_table3.png")
    points = [
        TrustPoint(c["supernet"]["fitness"], c["retrained"]["fitness"], c["kind"])
        for c in summary["candidates"]
        if c["supernet"] and c["retrained"]
    ]
    if points:
        plot_supernet_trust(points, tau=summary["trust"]["kendall_tau_b"], rho=summary["trust"]["spearman_rho"],
                            tau_ci=summary["trust"].get("kendall_tau_b_ci"), rho_ci=summary["trust"].get("spearman_rho_ci"),
                            fitness_name=name, path=folder / "policies_trust.png")
    bn = summary["bn_recalibration"]
    if "archs" in bn:
        plot_bn_recalibration(bn["counts"], {a["label"]: a["fitness"] for a in bn["archs"]}, default=bn["default"],
                              fitness_name=name, path=folder / "policies_bn_recalibration.png")
