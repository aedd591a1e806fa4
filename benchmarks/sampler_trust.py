"""Which supernet training ranks architectures best? Supernet trust of other training settings,
judged against the retrained architectures of a finished task benchmark.

``python -m benchmarks.search_policies --task T`` ends with every candidate retrained (the
expensive part) and its supernet's trust (Kendall tau-b and Spearman rho between supernet score
and retrained score). Retraining does not read the supernet, so the same retrained scores judge
any other supernet of the same space: this benchmark trains one supernet per ``--variant``
(the benchmark run's config with more ``--set`` overrides, e.g. the paper's strictly fair windows),
scores the same candidates on each, and reports the trust of every variant beside the
benchmark's own supernet, with paired bootstrap intervals::

    python -m benchmarks.sampler_trust --bench runs/benchmarks/policies-panoptic-bench \\
        --variant "fair=train.sampler=fair,train.paths_per_step=null,train.iterations=200" \\
        --out runs/benchmarks/sampler-trust-bench

Each variant's run lives in ``OUT/<name>/run`` (resumable: training resumes, scores are stored;
its measured cost in ``OUT/<name>/cost.json``), so variants can also be run as parallel
invocations with the same ``--out`` and reported together by one more invocation naming them all.
Writes ``OUT/results.json``, ``OUT/report.md`` and ``OUT/sampler_trust.png``.

The candidates were partly chosen with the benchmark's own supernet (the architectures its
searches found, and ones spread over its scores), which restricts their range of that supernet's
scores; the report gives the trust over the random candidates alone too, which no supernet chose.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.task_stats import trust_stats
from oneshot.errors import OneshotError
from oneshot.files import atomic_write_json, atomic_write_text

__all__ = ["main", "parse_variant", "trust_rows"]


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME=KEY=VALUE,KEY=VALUE`` -> (name, overrides)."""
    name, sep, rest = text.partition("=")
    overrides = [item.strip() for item in rest.split(",") if item.strip()]
    if not sep or not name.strip() or not overrides or any("=" not in o for o in overrides):
        raise ValueError(f"--variant {text!r} must look like NAME=KEY=VALUE[,KEY=VALUE...]")
    return name.strip(), overrides


def trust_rows(candidates: list[dict[str, Any]], scores: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Trust of every supernet in ``scores`` (name -> architecture key -> score) over all candidates
    and over the random ones alone."""
    rows = []
    for name, by_key in scores.items():
        for subset, cands in (("all", candidates), ("random", [c for c in candidates if c["kind"] == "random"])):
            pairs = [(by_key[c["key"]], c["retrained"]["fitness"]) for c in cands if c["key"] in by_key and c["retrained"]]
            stats = trust_stats([p[0] for p in pairs], [p[1] for p in pairs])
            rows.append({"supernet": name, "candidates": subset, **stats})
    return rows


def _markdown(rows: list[dict[str, Any]], variants: dict[str, list[str]], costs: dict[str, Any], command: str) -> str:
    lines = ["## Supernet trust by training setting", "", "```", command, "```", ""]
    lines += ["| supernet | overrides | candidates | N | Kendall tau-b [95%] | Spearman rho [95%] |", "|---|---|---|---:|---:|---:|"]
    for r in rows:
        tau, rho = r["kendall_tau_b_ci"], r["spearman_rho_ci"]
        fmt = lambda ci: f"{ci['estimate']:.2f} [{ci['low']:.2f}, {ci['high']:.2f}]" if ci["low"] is not None else "–"  # noqa: E731
        over = ", ".join(f"`{o}`" for o in variants.get(r["supernet"], [])) or "(the benchmark's)"
        lines.append(f"| {r['supernet']} | {over} | {r['candidates']} | {r['n']} | {fmt(tau)} | {fmt(rho)} |")
    lines += ["", "Cost per variant (CPU s): " + ", ".join(
        f"{k}: supernet {v['train_cpu_s']:.0f}, scoring {v['score_cpu_s']:.0f}" for k, v in costs.items()) + ".",
        "", "![supernet trust by training setting](sampler_trust.png)", ""]
    return "\n".join(lines)


def _plot(candidates: list[dict[str, Any]], scores: dict[str, dict[str, float]], rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(scores), figsize=(4.2 * len(scores), 3.8), squeeze=False)
    for ax, (name, by_key) in zip(axes[0], scores.items(), strict=True):
        for kind, colour in (("found", "tab:red"), ("top-k", "tab:orange"), ("random", "tab:blue"), ("spread", "tab:purple")):
            pts = [(by_key[c["key"]], c["retrained"]["fitness"]) for c in candidates if c["kind"] == kind and c["key"] in by_key]
            if pts:
                ax.scatter(*zip(*pts, strict=True), s=18, c=colour, label=kind)
        r = next(r for r in rows if r["supernet"] == name and r["candidates"] == "all")
        ax.set_title(f"{name}: tau-b {r['kendall_tau_b']:.2f}, rho {r['spearman_rho']:.2f} (N = {r['n']})", fontsize=9)
        ax.set_xlabel("supernet score (search split)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("retrained score (val)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sampler_trust", description=__doc__.split("\n")[0])
    ap.add_argument("--bench", type=Path, required=True, help="--out folder of a finished task benchmark (summary.json)")
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=KEY=VALUE[,KEY=VALUE]",
                    help="a supernet setting: overrides on the benchmark run's config (repeatable)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        run(args.bench, [parse_variant(v) for v in args.variant], args.out,
            command="python -m benchmarks.sampler_trust " + " ".join(argv if argv is not None else __import__("sys").argv[1:]))
    except (OneshotError, ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"error: {exc}") from None


def run(bench: Path, variants: list[tuple[str, list[str]]], out: Path, *, command: str = "") -> list[dict[str, Any]]:
    """Train and score every variant, write the report; returns the trust rows."""
    from oneshot.pipeline import open_run
    from oneshot.run import RunDir
    from oneshot.space import Architecture, SearchSpace

    summary_path = bench / "summary.json"
    if not summary_path.exists():
        raise FileNotFoundError(f"no summary.json in {bench}: run the task benchmark to its end first")
    summary = json.loads(summary_path.read_text())
    candidates = [c for c in summary["candidates"] if c.get("retrained") and c.get("supernet")]
    _, base_config = RunDir(summary["run_dir"]).saved_config()
    if base_config is None:
        raise FileNotFoundError(f"no config.yaml in the benchmark's run directory {summary['run_dir']}")
    scores: dict[str, dict[str, float]] = {"benchmark": {c["key"]: c["supernet"]["fitness"] for c in candidates}}
    costs: dict[str, Any] = {}
    for name, overrides in variants:
        # the benchmark run's config as a plain config file (without the run's task tag), then the overrides
        config_path = out / name / "config.yaml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config_path, yaml.safe_dump(base_config, sort_keys=False))
        pipe = open_run(summary["task"], run_dir=out / name / "run", config_path=config_path, overrides=overrides, progress=True)
        trained = pipe.path("supernet").exists()
        t0 = time.process_time()
        model = pipe.train_supernet()
        t1 = time.process_time()
        space = SearchSpace.from_module(model)
        study = pipe.study(model, split="search")
        archs = [Architecture.from_json(space, c["architecture"]) for c in candidates]
        scores[name] = {e.arch.key: float(e.fitness) for e in study.evaluate(archs)}
        cost_path = out / name / "cost.json"
        if trained and cost_path.exists():  # resumed: the costs are those measured when it ran
            costs[name] = json.loads(cost_path.read_text())
        else:
            costs[name] = {"train_cpu_s": t1 - t0, "score_cpu_s": time.process_time() - t1}
            atomic_write_json(cost_path, costs[name])
        print(f"[sampler-trust] {name}: scored {len(archs)} architectures", flush=True)
    rows = trust_rows(candidates, scores)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", {"command": command, "variants": dict(variants), "rows": rows,
                                             "scores": scores, "costs": costs})
    _plot(candidates, scores, rows, out / "sampler_trust.png")
    atomic_write_text(out / "report.md", _markdown(rows, dict(variants), costs, command))
    print(_markdown(rows, dict(variants), costs, command))
    return rows


if __name__ == "__main__":
    main()
