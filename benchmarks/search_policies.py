"""Compare the search policies: on NAS-Bench-Macro, or on a task's trained supernet with retraining.

Run from the repository root::

    python -m benchmarks.search_policies --table path/to/nas_bench_macro --seeds 100 \\
        --out runs/benchmarks/search-policies
    python -m benchmarks.search_policies --task panoptic --preset tiny --budget-scale 0.3
    python -m benchmarks.publish runs/benchmarks/search-policies docs/benchmarks.md

``--task nas-bench-macro`` (the default) runs :mod:`benchmarks.nas_bench_macro` on the table;
``--task`` naming a registered task (``panoptic``, ``toy``) runs :mod:`benchmarks.task_benchmark`
on that task's supernet. Results, figures and ``report.md`` go to ``--out``; publishing them into
``docs/`` is the separate ``benchmarks.publish`` step.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from oneshot.errors import OneshotError

__all__ = ["MODES", "main", "run_options"]


def _nas_bench_macro(**options: Any) -> dict[str, Any]:
    from benchmarks.nas_bench_macro_report import nas_bench_macro_report

    return nas_bench_macro_report(**options)


def run_options(prefix: str = "", *, run_dir: str = "pipeline run directory holding the supernet") -> Callable[[Any], Any]:
    """The options that open a task's run (``--preset``, ``--config``, ``--set``, ``--run-dir``,
    ``--device``), each help text after ``prefix``; shared by the benchmarks on a task's supernet."""
    options = [
        click.option("--preset", default=None, help=f"{prefix}preset of the task (default: the task's first)."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help=f"{prefix}YAML config file of the run."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=f"{prefix}override a config field of the run."),
        click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help=f"{prefix}{run_dir} [default: OUT/run]."),
        click.option("--device", default=None, help=f"{prefix}cpu, cuda or cuda:N (default: the config's)."),
    ]

    def apply(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


#: Benchmark modes other than a task, by ``--task`` name (a plain dict: only this harness uses it).
MODES: dict[str, Callable[..., dict[str, Any]]] = {"nas-bench-macro": _nas_bench_macro}


@click.command(name="search-policies", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--task", "mode", default="nas-bench-macro", show_default=True,
              help="nas-bench-macro, or a registered task (e.g. panoptic, toy).")
@click.option("--table", type=click.Path(path_type=Path), help="NAS-Bench-Macro JSON file (or its folder).")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help="Seeds 0..N-1 per configuration [default: 20 for nas-bench-macro, 1 for a task].")
@click.option("--sigma", "sigmas", type=click.FloatRange(min=0), multiple=True, help="Noise levels (default: 0 and 1).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for results, figures and report.md [default: runs/benchmarks/search-policies, or "
                   "runs/benchmarks/search-policies-TASK-PRESET for a task].")
@run_options("Task mode: ", run_dir="pipeline run directory holding the supernet and the shared store")
@click.option("--budget-scale", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Task mode: multiply the paper's budgets (path-priority 5 cycles, evolution 1000, random 300) [default: 1].")
@click.option("--policy", "policies", multiple=True, metavar="SEARCHER",
              help="Task mode: run only these searchers (repeatable) [default: path-priority, evolution, random, "
                   "path-priority-verify, surrogate, model-select].")
@click.option("--policy-set", "policy_sets", multiple=True, metavar="SEARCHER.OPTION=VALUE",
              help="Task mode: explicit searcher options instead of its scaled budget, e.g. evolution.population=10.")
@click.option("--random-archs", type=click.IntRange(min=0), default=None, help="Task mode: random architectures retrained [default: 6].")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Task mode: path-priority top-k architectures retrained [default: 3].")
@click.option("--retrain-seeds", type=click.IntRange(min=1), default=None,
              help="Task mode: retrain every candidate N times, with the config's seed and the next N-1 [default: 1].")
@click.option("--trust-archs", type=click.IntRange(min=0), default=None,
              help="Task mode: also retrain N architectures spread over the quantiles of the supernet scores the "
                   "searches stored, for the supernet-trust study [default: 0].")
@click.option("--bn-batches", default=None, metavar="K,K,...",
              help="Task mode: eval.bn_batches values of the BN recalibration study [default: 0,10,50,200]; empty to skip.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def main(mode: str, table: Path | None, seeds: int | None, sigmas: tuple[float, ...], out: Path | None,
         quiet: bool, **task_options: Any) -> None:
    """Compare path-priority, evolution, random, path-priority-verify (and surrogate): on NAS-Bench-Macro at the paper's
    and equal budgets, or on a task's trained supernet with retraining (see docs/benchmarks.md)."""
    from benchmarks.nas_bench_macro import markdown_table

    words = ["python", "-m", "benchmarks.search_policies", "--task", mode]
    if table is not None:
        words += ["--table", str(table)]
    if seeds is not None:
        words += ["--seeds", str(seeds)]
    for sigma in sigmas:
        words += ["--sigma", f"{sigma:g}"]
    progress = None if quiet else (lambda msg: click.echo(msg, err=True))
    try:
        if mode in MODES:
            given = sorted(k for k, v in task_options.items() if v not in (None, ()))
            if given:
                raise ValueError(f"options only for a task mode: {', '.join('--' + k.replace('_', '-') for k in given)}")
            out = out or Path("runs/benchmarks/search-policies")
            words += ["--out", str(out)]
            report = MODES[mode](table=table, seeds=seeds or 20, out=out, sigmas=sigmas or (0.0, 1.0),
                                 command=" ".join(shlex.quote(w) for w in words), progress=progress)
        else:
            from oneshot.tasks import available_tasks, get_task

            if mode not in available_tasks():
                raise ValueError(f"unknown benchmark mode {mode!r}; available: {', '.join(sorted(MODES))}, "
                                 f"or a task: {', '.join(available_tasks())}")
            if table is not None or sigmas:
                raise ValueError(f"--table and --sigma belong to the nas-bench-macro mode, not to task {mode!r}")
            from benchmarks.task_benchmark import run_task_benchmark

            options, more = _task_options(task_options)
            preset = task_options["preset"] or get_task(mode).default_preset()
            out = out or Path(f"runs/benchmarks/search-policies-{mode}-{preset}")
            words += more + ["--out", str(out)]
            report = run_task_benchmark(mode, seeds=seeds or 1, out=out, command=" ".join(shlex.quote(w) for w in words),
                                        progress=progress, **options)
    except (OneshotError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if "summaries" in report:
        click.echo(markdown_table(report["summaries"]))
    click.echo(f"results in {out}; publish with: python -m benchmarks.publish {shlex.quote(str(out))} docs/benchmarks.md")


def _task_options(given: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Keyword arguments of the task mode from the CLI options, and their words for the command line."""
    import yaml

    options: dict[str, Any] = {}
    words: list[str] = []
    for key, flag in (("preset", "--preset"), ("config_path", "--config"), ("run_dir", "--run-dir"), ("device", "--device"),
                      ("budget_scale", "--budget-scale"), ("random_archs", "--random-archs"), ("top_k", "--top-k"),
                      ("retrain_seeds", "--retrain-seeds"), ("trust_archs", "--trust-archs")):
        if given[key] is not None:
            options[key] = given[key]
            words += [flag, f"{given[key]:g}" if isinstance(given[key], float) else str(given[key])]
    if given["overrides"]:
        options["overrides"] = list(given["overrides"])
        for item in given["overrides"]:
            words += ["--set", item]
    if given["policies"]:
        options["policies"] = list(given["policies"])
        for name in given["policies"]:
            words += ["--policy", name]
    if given["policy_sets"]:
        per: dict[str, dict[str, Any]] = {}
        for item in given["policy_sets"]:
            target, sep, raw = item.partition("=")
            searcher, dot, option = target.strip().partition(".")
            if not (sep and dot and searcher and option):
                raise ValueError(f"--policy-set {item!r} must look like SEARCHER.OPTION=VALUE")
            per.setdefault(searcher, {})[option] = yaml.safe_load(raw)
            words += ["--policy-set", item]
        options["policy_options"] = per
    if given["bn_batches"] is not None:
        text = given["bn_batches"].strip()
        try:
            options["bn_counts"] = [int(v) for v in text.split(",") if v.strip()] if text else []
        except ValueError:
            raise ValueError(f"--bn-batches must be comma-separated integers, got {text!r}") from None
        words += ["--bn-batches", text]
    return options, words


if __name__ == "__main__":
    if not __package__:  # run as `python benchmarks/search_policies.py`: the repository root holds the package
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(prog_name="python -m benchmarks.search_policies")
