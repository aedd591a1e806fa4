"""The task benchmark's summary as markdown: Table 5 and Table 3 style tables, supernet trust, the BN
study, costs, and what came out, stated from the numbers (``report.md`` in the output folder).

Metric columns are the task's own (:attr:`oneshot.tasks.Task.report_columns`, stored in the
summary as ``extra_metrics``), shown under their keys.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["markdown_body", "section_title"]


def section_title(task: str) -> str:
    """The report's section title for ``task`` (``## Search policies on the panoptic supernet``)."""
    return f"## Search policies on the {task} supernet"


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def _pm(values: Sequence[float]) -> str:
    """One value as it is; several as mean ± standard deviation."""
    if len(values) == 1:
        return _fmt(values[0])
    mean, sd = _mean_sd(values)
    return f"{_fmt(mean)} ± {_fmt(sd)}"


def _is_paper_setting(summary: Mapping[str, Any]) -> bool:
    return summary["budget_scale"] == 1.0 and not summary["policy_options"] and not summary["overrides"]


def _stage_rows(summary: Mapping[str, Any]) -> list[tuple[str, int | None, int | None, float, float, bool]]:
    """(stage, evaluations, steps, wall s, CPU s, all measured) grouped for the cost table."""
    costs: Mapping[str, Mapping[str, Any]] = summary["costs"]
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for key, entry in costs.items():
        if key.startswith("search "):
            searcher = key.split(" ")[1]
            label = next((p["label"] for p in summary["policies"] if p["searcher"] == searcher), searcher)
            group = f"search: {label}"
        elif key.startswith("retrain "):
            group = "retraining"
        else:
            group = key
        groups.setdefault(group, []).append(entry)
    rows = []
    for group, entries in groups.items():
        evals = sum(int(e.get("evaluations", 0)) for e in entries) if any("evaluations" in e for e in entries) else None
        steps = sum(int(e.get("steps", 0)) for e in entries) if any("steps" in e for e in entries) else None
        if group == "retraining":
            group = f"retraining ({len(entries)} from-scratch trainings)"
        rows.append((group, evals, steps, sum(e["wall_s"] for e in entries), sum(e["cpu_s"] for e in entries),
                     all(e.get("measured", True) for e in entries)))
    return rows


def markdown_body(summary: Mapping[str, Any]) -> str:
    """The markdown section (without its title) for a benchmark summary."""
    name = summary["fitness_name"]
    extra = summary["extra_metrics"]
    seeds = summary["seeds"]
    gpu = summary["device"].startswith("cuda")
    paper = _is_paper_setting(summary)
    stages = _stage_rows(summary)
    total_wall, total_cpu = sum(r[3] for r in stages), sum(r[4] for r in stages)
    lines = [
        f"Command (the stages took {total_wall:.0f} s wall, {total_cpu:.0f} s CPU in all on this machine, device "
        f"`{summary['device']}`; the last invocation {summary['elapsed_s']:.0f} s):",
        "",
        "```",
        summary["command"] or f"python -m benchmarks.search_policies --task {summary['task']}",
        "```",
        "",
        f"Task `{summary['task']}`, preset `{summary['preset']}`"
        + (f" with overrides `{' '.join(summary['overrides'])}`" if summary["overrides"] else "")
        + f"; search space of {summary['space']['size']:.3g} architectures ({summary['space']['layers']} layers, "
        f"fair window {summary['space']['window_size']}). One supernet ({summary['supernet_steps']} steps) and one "
        f"evaluation store serve every policy, for seeds 0..{seeds - 1}. Every retrained model is trained from "
        f"scratch with the same schedule ({summary['retrain_steps']} steps) and evaluated on `val`; the supernet "
        f"{name} is on the search split, inherited weights with BN recalibration.",
        "",
    ]
    if summary["policy_options"]:
        parts = [f"policy options {json.dumps(summary['policy_options'])}"]
        parts += [f"budgets scaled by {summary['budget_scale']:g}"] if summary["budget_scale"] != 1.0 else []
        parts += ["config overrides as above"] if summary["overrides"] else []
        text = "; ".join(parts)
        lines += [
            f"**Reduced run.** {text[0].upper() + text[1:]}: it shows the pipeline and its costs, it does not test "
            "the paper's ordering.",
            "",
        ]
    elif not paper:
        if summary["budget_scale"] != 1.0:
            budgets = ", ".join(f"{p['label']}" for p in summary["policies"])
            lines += [
                f"**Scaled budgets.** The paper's budgets times {summary['budget_scale']:g} ({budgets}): the policies "
                "keep the paper's budget ratios, not its absolute budgets.",
                "",
            ]
        if summary["overrides"]:
            lines += [
                f"**Config overrides.** The run's config is preset `{summary['preset']}` changed by the overrides "
                "above; every figure below is for that config.",
                "",
            ]
    header = (f"| policy | models evaluated | new to the shared store | search time, new evaluations (s) | "
              f"search time as if unshared (s) | supernet {name} | retrained {name} |"
              + "".join(f" {k} |" for k in extra))
    lines += [
        "### Table 5 style: policies on one supernet",
        "",
        header,
        "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(extra),
    ]
    for p in summary["policies"]:
        s = p["seeds"]
        ret = [x["retrained"] for x in s if x["retrained"]]
        cells = [
            p["label"],
            _pm([x["evaluations"] for x in s]),
            _pm([x["new_evaluations"] for x in s]),
            _pm([x["new_eval_s"] for x in s]),
            _pm([x["unshared_eval_s"] for x in s]),
            _pm([x["supernet"]["fitness"] for x in s]),
            _pm([m["fitness"] for m in ret]) if ret else "–",
            *(_pm([m[k] for m in ret]) if ret else "–" for k in extra),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        ("Values are mean ± standard deviation over seeds. " if seeds > 1 else "")
        + "*Models evaluated*: distinct architectures the policy evaluated. *New to the shared store*: those no "
        "earlier policy (in table order) had evaluated; *search time, new evaluations* is their recorded "
        "evaluation time, the actual cost of adding this policy to the benchmark; *as if unshared* sums the "
        "recorded time of every architecture the policy used, its cost on its own. Path-priority's returned "
        "architecture (the per-layer argmax) is not among its evaluated models; its supernet "
        f"{name} is measured afterwards. Retrained values: each search seed's architecture retrained with "
        + _retrain_seeds_text(summary) + ", averaged over those, then mean ± sd over search seeds.",
        "",
        *_statistics(summary),
    ]
    # Table 3
    cands = summary["candidates"]
    randoms = [c for c in cands if any(r.startswith("random") for r in c["roles"]) and c["retrained"]]
    searched = [(p["label"], p["seeds"][0]["retrained"]) for p in summary["policies"] if p["seeds"][0]["retrained"]]
    lines += [
        "### Table 3 style: random vs searched, retrained",
        "",
        f"| architectures | n | retrained {name} (mean ± sd) | best |" + "".join(f" {k} |" for k in extra),
        "|---|---:|---:|---:|" + "---:|" * len(extra),
    ]
    if randoms:
        vals = [c["retrained"]["fitness"] for c in randoms]
        lines.append(f"| random | {len(vals)} | {_pm(vals)} | {_fmt(max(vals))} |"
                     + "".join(f" {_pm([c['retrained'][k] for c in randoms])} |" for k in extra))
    if searched:
        vals = [m["fitness"] for _, m in searched]
        lines.append(f"| searched (one per policy, search seed 0) | {len(vals)} | {_pm(vals)} | {_fmt(max(vals))} |"
                     + "".join(f" {_pm([m[k] for _, m in searched])} |" for k in extra))
        for label, m in searched:
            lines.append(f"| searched: {label}, seed 0 | 1 | {_fmt(m['fitness'])} | |" + "".join(f" {_fmt(m[k])} |" for k in extra))
    lines.append("")
    # trust
    t = summary["trust"]
    kinds: dict[str, int] = {}
    for c in cands:
        if c["supernet"] and c["retrained"]:
            kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    lines += [
        "### Supernet trust",
        "",
        f"N = {t['n']} architectures ({', '.join(f'{v} {k}' for k, v in kinds.items())}): Kendall tau-b = "
        f"{_fmt(t['kendall_tau_b'])}, Spearman rho = {_fmt(t['spearman_rho'])} between the supernet {name} "
        f"(search split, BN recalibrated) and the retrained {name} (`val`, mean over "
        f"{_retrain_seeds_text(summary)}). Paired bootstrap 95% intervals (architectures resampled with both "
        f"scores): tau-b {_ci_text(t.get('kendall_tau_b_ci'))}, rho {_ci_text(t.get('spearman_rho_ci'))}."
        + (" (– = undefined: one side gives every architecture the same value.)"
           if not (math.isfinite(t["kendall_tau_b"]) and math.isfinite(t["spearman_rho"])) else "")
        + (" With so few architectures a correlation is very uncertain (a tau of ±0.3 is within chance at N = 10)."
           if t["n"] < 20 else ""),
        "",
        "![supernet trust](policies_trust.png)",
        "",
    ]
    bn = summary["bn_recalibration"]
    lines += ["### BN recalibration batches", ""]
    if "archs" in bn:
        lines += [
            f"Supernet {name} of fixed architectures for `eval.bn_batches` = K (configured: {bn['default']}); "
            "K = 0 keeps the running statistics left by supernet training. Evaluated directly, not through the store.",
            "",
            "| K | " + " | ".join(a["label"] for a in bn["archs"]) + " | eval time per arch (s) |",
            "|---:|" + "---:|" * (len(bn["archs"]) + 1),
        ]
        for i, k in enumerate(bn["counts"]):
            times = [a["wall_s"][i] for a in bn["archs"]]
            lines.append(f"| {k} | " + " | ".join(_fmt(a["fitness"][i]) for a in bn["archs"]) + f" | {_fmt(statistics.fmean(times), 1)} |")
        lines += ["", "![BN recalibration](policies_bn_recalibration.png)", ""]
    else:
        lines += [f"Skipped: {bn['skipped']}.", ""]
    # costs
    lines += [
        "### Costs",
        "",
        "| stage | evaluations | steps | wall s | CPU s | GPU s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for stage, evals, steps, wall, cpu, measured in _stage_rows(summary):
        gpu_cell = _fmt(wall, 1) if gpu else "–"
        note = "" if measured else " (reused: not measured)"
        lines.append(f"| {stage}{note} | {_fmt(evals)} | {_fmt(steps)} | {_fmt(wall, 1)} | {_fmt(cpu, 1)} | {gpu_cell} |")
    lines += [
        "",
        "Wall and CPU seconds per stage, summed over invocations (from `costs.json`); CPU s is the process "
        "time of all threads; GPU s is the wall time of stages run on a GPU (none on a CPU device). Searches "
        "count only evaluations new to the store.",
        "",
        *_observations(summary),
        "![policies](policies_table5.png)",
        "",
        "![random vs searched](policies_table3.png)",
    ]
    return "\n".join(lines)


def _retrain_seeds_text(summary: Mapping[str, Any]) -> str:
    seeds = summary["retrain_seeds"]
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)  # older summaries held a count
    return f"retraining seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _ci_text(ci: Mapping[str, Any] | None) -> str:
    if not ci or ci.get("low") is None or ci.get("high") is None:
        return "– (too few values)"
    return f"[{_fmt(ci['low'])}, {_fmt(ci['high'])}]"


VERDICT_RULE = (
    "**Verdict rule.** For a claim *A >= B* or *A > B* the interval is the percentile bootstrap 95% "
    "interval of mean(A) − mean(B) (10,000 resamples, each group resampled on its own): *supported* if "
    "the whole interval lies above 0, *contradicted* if it lies below 0, *open* if it holds 0 or a group "
    "has fewer than two values. A policy's values are its search seeds (each the found architecture's "
    "mean over retraining seeds); *searched* pools every policy's found architectures; *random "
    "architectures* are the random candidates (each its mean over retraining seeds). With 3 search "
    "seeds a bootstrap interval is rough (it cannot be wider than the range of the 3 values): read "
    "*open* as \"not shown\", not as \"equal\"."
)


def _statistics(summary: Mapping[str, Any]) -> list[str]:
    """Per-policy means with intervals, minus random, and the verdicts on the paper's claims."""
    stats = summary.get("stats")
    if not stats:
        return []
    name = summary["fitness_name"]
    lines = [
        "### Table 5 as a statistic: means over search seeds with bootstrap 95% intervals",
        "",
        f"| policy | search seeds | retrained {name} (mean) | 95% interval | minus random architectures | 95% interval |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in stats["policies"].values():
        d = row["minus_random"]
        lines.append(f"| {row['label']} | {row['n']} | {_fmt(row['estimate'])} | {_ci_text(row)} | "
                     f"{_fmt(d['estimate'])} | {_ci_text(d)} |")
    for label, row in (("searched (all policies)", stats["searched"]), ("random architectures", stats["random"])):
        lines.append(f"| {label} | {row['n']} | {_fmt(row['estimate'])} | {_ci_text(row)} | | |")
    d = stats["searched_minus_random"]
    lines += [
        "",
        f"Searched − random architectures: {_fmt(d['estimate'])}, 95% interval {_ci_text(d)}.",
        "",
        "| paper's claim | difference (A − B) | 95% interval | verdict |",
        "|---|---:|---:|---|",
    ]
    for c in stats["claims"]:
        lines.append(f"| {c['claim']} | {_fmt(c['difference']['estimate'])} | {_ci_text(c['difference'])} | "
                     f"**{c['verdict']}** |")
    lines += ["", VERDICT_RULE, ""]
    return lines


def _observations(summary: Mapping[str, Any]) -> list[str]:
    """What came out, stated from the numbers, including where the paper's ordering does not hold."""
    name = summary["fitness_name"]
    retrained = {p["searcher"]: p["seeds"][0]["retrained"]["fitness"] for p in summary["policies"] if p["seeds"][0]["retrained"]}
    evals = {p["searcher"]: statistics.fmean(s["evaluations"] for s in p["seeds"]) for p in summary["policies"]}
    labels = {p["searcher"]: p["label"] for p in summary["policies"]}
    randoms = [c["retrained"]["fitness"] for c in summary["candidates"]
               if any(r.startswith("random") for r in c["roles"]) and c["retrained"]]
    lines = ["### What came out (search seed 0, one value per policy)", ""]
    sf = summary.get("search_fitness", {})
    degenerate = sf.get("architectures", 0) > 1 and sf.get("distinct_values") == 1
    ties = " (by tie-breaking only: not evidence for or against the paper)" if degenerate else ""
    if degenerate:
        lines.append(f"- **Degenerate supernet**: it gave the same {name} ({sf['min']:.2f}) to all {sf['architectures']} "
                     "architectures the policies evaluated, so every policy chose among ties (by its tie-breaking "
                     "rule); differences after retraining are then not the search's doing.")
    if retrained:
        order = sorted(retrained, key=lambda s: -retrained[s])
        lines.append("- Retrained " + name + ", best first: "
                     + ", ".join(f"{labels[s]} {retrained[s]:.2f} ({evals[s]:.0f} evals)" for s in order) + ".")
        pp = retrained.get("path-priority")
        if pp is not None:
            for other in ("evolution", "random"):
                if other in retrained:
                    verdict = "holds" if pp >= retrained[other] else "does not hold"
                    lines.append(f"- Paper claim *path-priority ({evals['path-priority']:.0f} evals) >= {other} "
                                 f"({evals[other]:.0f} evals) after retraining*: {verdict} in this run "
                                 f"({pp:.2f} vs {retrained[other]:.2f}){ties}.")
    if retrained and randoms:
        mean_r, sd_r = _mean_sd(randoms)
        mean_s = statistics.fmean(retrained.values())
        verdict = "holds" if mean_s > mean_r else "does not hold"
        lines.append(f"- Paper claim *searched > random after retraining*: {verdict} in this run (searched mean "
                     f"{mean_s:.2f}, random mean {mean_r:.2f}" + (f", random sd {sd_r:.2f}" if len(randoms) > 1 else "")
                     + f"){ties}.")
        if len(randoms) > 1 and math.isfinite(sd_r):
            lines.append(f"- One retraining per architecture and one search seed: differences smaller than the spread "
                         f"of the random architectures ({sd_r:.2f}) are not evidence either way.")
    lines.append("")
    return lines
