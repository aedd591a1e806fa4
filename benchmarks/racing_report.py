"""The racing benchmark's statistics, ``report.md`` and ``racing.png`` (:mod:`benchmarks.racing`).

Per searcher and arm (racing off = *full*, on = *racing*): image-evaluations summed over search
seeds and their ratio full / racing; the found architecture's full supernet score and (with
retraining) its retrained score, each the mean over search seeds with a percentile bootstrap 95%
interval (:func:`benchmarks.task_stats.interval`, search seeds resampled); whether the racing
arm's mean lies inside the full arm's interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.task_report import _ci_text, _fmt
from benchmarks.task_stats import interval
from benchmarks.task_summary import fitness_columns
from oneshot.files import atomic_write_text
from oneshot.viz import _figure, _save

__all__ = ["plot_racing", "report_markdown", "summarize", "write_report"]


def _arm(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    retrained = [r["retrained"]["fitness"] for r in runs if r.get("retrained")]
    return {
        "seeds": [r["seed"] for r in runs],
        "image_evaluations": [r["image_evaluations"] for r in runs],
        "image_evaluations_total": sum(r["image_evaluations"] for r in runs),
        "confirm_image_evaluations_total": sum(r["found"]["confirm_image_evaluations"] for r in runs),
        "full_evaluations": sum(r["full_evaluations"] for r in runs),
        "partial_evaluations": sum(r["partial_evaluations"] for r in runs),
        "found_by_partial_score": sum((r["found"]["told_fidelity"] or 1.0) < 1.0 for r in runs),
        "wall_s": sum(r["wall_s"] for r in runs),
        "cpu_s": sum(r["cpu_s"] for r in runs),
        "eval_s": sum(r["eval_s"] for r in runs),
        "resumed": any(r["resumed"] for r in runs),
        "found_keys": [r["found"]["key"] for r in runs],
        "supernet": interval([r["found"]["fitness"] for r in runs]),
        "retrained": interval(retrained) if retrained else None,
    }


def _compare(full: Mapping[str, Any], racing: Mapping[str, Any], label: str) -> dict[str, Any]:
    def inside(key: str) -> bool | None:
        f, r = full.get(key), racing.get(key)
        if not f or not r or f["low"] is None or r["estimate"] is None:
            return None
        return bool(f["low"] <= r["estimate"] <= f["high"])

    spent = racing["image_evaluations_total"]
    return {
        "label": label,
        "full": dict(full),
        "racing": dict(racing),
        "ratio": full["image_evaluations_total"] / spent if spent else None,
        "ratio_with_confirmation": (
            (full["image_evaluations_total"] + full["confirm_image_evaluations_total"])
            / (spent + racing["confirm_image_evaluations_total"]) if spent else None
        ),
        "eval_s_ratio": full["eval_s"] / racing["eval_s"] if racing["eval_s"] else None,
        "same_found": sum(a == b for a, b in zip(full["found_keys"], racing["found_keys"], strict=True)),
        "supernet_inside_full_interval": inside("supernet"),
        "retrained_inside_full_interval": inside("retrained"),
    }


def summarize(results: Mapping[str, Any], *, report_columns: Sequence[str] = ()) -> dict[str, Any]:
    """Per searcher, and pooled over searchers, the two arms side by side (module docstring)."""
    runs = results["runs"]
    rows = []
    for s in results["searchers"]:
        mine = [r for r in runs if r["searcher"] == s["searcher"]]
        arms = {arm: _arm([r for r in mine if r["arm"] == arm]) for arm in ("full", "racing")}
        rows.append({"searcher": s["searcher"], **_compare(arms["full"], arms["racing"], mine[0]["label"])})
    pooled = {arm: _arm([r for r in runs if r["arm"] == arm]) for arm in ("full", "racing")}
    found = runs[0]["found"] if runs else {"fitness": None, "metrics": {}}
    fitness_name, _ = fitness_columns(report_columns, {"fitness": found["fitness"], **found["metrics"]})
    return {"fitness_name": fitness_name, "searchers": rows, "all": _compare(pooled["full"], pooled["racing"], "all searchers")}


# ----------------------------------------------------------------------------- markdown
def _yes_no(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "**no**")


def _with_ci(ci: Mapping[str, Any] | None) -> str:
    if not ci or ci.get("estimate") is None:
        return "–"
    return f"{_fmt(ci['estimate'])} {_ci_text(ci)}" if ci.get("low") is not None else _fmt(ci["estimate"])


def report_markdown(results: Mapping[str, Any]) -> str:
    """``report.md``: settings, image-evaluations, what is found, rank correlation, times."""
    summary, rc = results["summary"], results["racing"]
    name = summary["fitness_name"]
    rows = [*summary["searchers"], summary["all"]]
    lines = [
        f"## Cheaper candidate evaluation (racing) on the {results['task']} supernet",
        "",
        f"Command: `{results['command']}`" if results.get("command") else "",
        "",
        f"Racing: fraction {rc['fraction']:g} (a partial evaluation scores {results['images']['partial']} of the "
        f"{results['images']['full']} items of the search split), z = {rc['z']:g}, top-k = {rc['top_k']}, "
        f"min pairs = {rc['min_pairs']}. Search seeds: {results['seeds']}; budget scale {results['budget_scale']:g}. "
        "Each search has its own evaluation store (nothing shared between arms or searches).",
        "",
        "### Image-evaluations (summed over search seeds)",
        "",
        "| searcher | full: image-evals | full: evaluations | racing: image-evals | racing: full + partial "
        "evaluations | full / racing | with the found confirmed in full | evaluation seconds full / racing |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f, g = r["full"], r["racing"]
        lines.append(
            f"| {r['label']} | {f['image_evaluations_total']} | {f['full_evaluations']} | {g['image_evaluations_total']} "
            f"| {g['full_evaluations']} + {g['partial_evaluations']} | {_fmt(r['ratio'])}× "
            f"| {_fmt(r['ratio_with_confirmation'])}× | {_fmt(r['eval_s_ratio'])}× |"
        )
    lines += [
        "",
        "*Confirmed in full*: the found architecture evaluated in full after the search when the search did "
        "not (racing kept only its partial score, or path-priority's argmax was never evaluated), added to "
        "both arms' cost. *Evaluation seconds*: the evaluation times recorded in the stores; a partial "
        "evaluation scores fewer items but pays any fixed cost in full (e.g. BN recalibration).",
        "",
        "### What is found (mean over search seeds, bootstrap 95% interval)",
        "",
        f"| searcher | same arch found (seeds) | found by a partial score | supernet {name}: full | racing "
        f"| inside | retrained {name}: full | racing | inside |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f, g = r["full"], r["racing"]
        lines.append(
            f"| {r['label']} | {r['same_found']}/{len(f['seeds'])} | {g['found_by_partial_score']} "
            f"| {_with_ci(f['supernet'])} | {_with_ci(g['supernet'])} | {_yes_no(r['supernet_inside_full_interval'])} "
            f"| {_with_ci(f['retrained'])} | {_with_ci(g['retrained'])} | {_yes_no(r['retrained_inside_full_interval'])} |"
        )
    seeds = results.get("retrain_seeds") or []
    lines += [
        "",
        f"*Inside*: the racing arm's mean lies inside the full arm's interval. Supernet {name}: the found "
        "architecture's score on the whole search split. "
        + (f"Retrained: trained from scratch with seeds {', '.join(map(str, seeds))} (mean), scored on val."
           if seeds else "No retraining was asked for (`--retrain-seeds 0`)."),
        "",
        f"### Does the fraction rank like the full split? ({results['rank']['fraction']:g} vs 1)",
        "",
        "| architectures | N | Kendall tau-b | Spearman rho | mean (full − partial) | sd |",
        "|---|---|---|---|---|---|",
    ]
    rank = results["rank"]
    for group in ("all", "visited", "random"):
        st = rank[group]
        lines.append(
            f"| {group} | {st['n']} | {_fmt(st['kendall_tau_b'])} {_ci_text(st['kendall_tau_b_ci'])} "
            f"| {_fmt(st['spearman_rho'])} {_ci_text(st['spearman_rho_ci'])} | {_fmt(st['difference_mean'])} "
            f"| {_fmt(st['difference_sd'])} |"
        )
    lines += [
        "",
        "*Visited*: spread over the quantiles of the scores the full searches stored; *random*: uniform draws. "
        "Intervals: paired bootstrap 95% (architectures resampled with both scores).",
        "",
        "### Time (summed over search seeds)",
        "",
        "| searcher | full: wall s | CPU s | evaluation s | racing: wall s | CPU s | evaluation s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f, g = r["full"], r["racing"]
        lines.append(f"| {r['label']} | {_fmt(f['wall_s'], 1)} | {_fmt(f['cpu_s'], 1)} | {_fmt(f['eval_s'], 1)} "
                     f"| {_fmt(g['wall_s'], 1)} | {_fmt(g['cpu_s'], 1)} | {_fmt(g['eval_s'], 1)} |")
    resumed = summary["all"]["full"]["resumed"] or summary["all"]["racing"]["resumed"]
    lines += [
        "",
        "*Evaluation s*: the evaluation times recorded in the stores (complete across interruptions); wall and "
        "CPU s: the search invocations" + (" (some searches were resumed, so these cover only their last part)"
                                            if resumed else "") + f", on {results['costs'].get('supernet training', {}).get('device', '?')}.",
        "",
        "![racing](racing.png)",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figure
def plot_racing(results: Mapping[str, Any], path: str | Path | None = None) -> Any:
    """Image-evaluations per searcher and arm (one dot per search seed), the partial-vs-full scatter
    of the rank study, and (with retraining) the retrained means with their intervals."""
    summary = results["summary"]
    rows = summary["searchers"]
    retrained = any(r["full"]["retrained"] for r in rows)
    fig = _figure((5.0 * (3 if retrained else 2), 4.2))
    axes = fig.subplots(1, 3 if retrained else 2)
    x = np.arange(len(rows))
    colours = {"full": "tab:blue", "racing": "tab:orange"}
    for j, arm in enumerate(("full", "racing")):
        pos = x + (j - 0.5) * 0.38
        per_seed = [r[arm]["image_evaluations"] for r in rows]
        axes[0].bar(pos, [np.mean(v) for v in per_seed], width=0.36, color=colours[arm], alpha=0.7, label=arm)
        for p, vals in zip(pos, per_seed, strict=True):
            axes[0].scatter([p] * len(vals), vals, color="k", s=10, zorder=3)
    axes[0].set_xticks(x, [r["label"] for r in rows], fontsize=7, rotation=15)
    axes[0].set_ylabel("image-evaluations per search")
    axes[0].set_title("Evaluation cost", fontsize=10)
    axes[0].legend(fontsize=8)
    rank = results["rank"]
    for group, colour in (("visited", "tab:red"), ("random", "tab:blue")):
        sel = [a for a in rank["archs"] if a["group"] == group]
        axes[1].scatter([a["partial"] for a in sel], [a["full"] for a in sel], color=colour, s=25, label=f"{group} ({len(sel)})")
    name = summary["fitness_name"]
    axes[1].set_xlabel(f"{name} on {rank['fraction']:g} of the search split")
    axes[1].set_ylabel(f"{name} on the whole search split")
    st = rank["all"]
    axes[1].set_title(f"N = {st['n']}: Kendall tau-b {_fmt(st['kendall_tau_b'])}, Spearman rho {_fmt(st['spearman_rho'])}",
                      fontsize=9)
    axes[1].legend(fontsize=8)
    if retrained:
        for j, arm in enumerate(("full", "racing")):
            pos = x + (j - 0.5) * 0.3
            cis = [r[arm]["retrained"] or {} for r in rows]
            est = [c.get("estimate") or np.nan for c in cis]
            err = np.array([[e - c["low"] if c.get("low") is not None else 0.0 for e, c in zip(est, cis, strict=True)],
                            [c["high"] - e if c.get("high") is not None else 0.0 for e, c in zip(est, cis, strict=True)]])
            axes[2].errorbar(pos, est, yerr=err, fmt="o", color=colours[arm], capsize=4, label=arm)
        axes[2].set_xticks(x, [r["label"] for r in rows], fontsize=7, rotation=15)
        axes[2].set_ylabel(f"retrained {name} of the found architecture")
        axes[2].set_title("What is found (bootstrap 95% intervals)", fontsize=10)
        axes[2].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    return _save(fig, path)


def write_report(results: Mapping[str, Any], out: str | Path) -> None:
    """``report.md`` and ``racing.png`` into ``out``."""
    out = Path(out)
    plot_racing(results, out / "racing.png")
    atomic_write_text(out / "report.md", report_markdown(results))
