"""``oneshot benchmark``: a click group of benchmark commands (plug-in command of the oneshot CLI).

``oneshot benchmark search-policies --table PATH`` compares the registered searchers on
NAS-Bench-Macro. Other modes of that comparison (e.g. a panoptic supernet) register with
:func:`oneshot.benchmarks.search_policies.register_mode` and are chosen with ``--task``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from oneshot.errors import OneshotError

__all__ = ["benchmark", "search_policies"]


@click.group(name="benchmark", context_settings={"help_option_names": ["-h", "--help"]})
def benchmark() -> None:
    """Benchmarks whose results go to docs/benchmarks.md."""


@benchmark.command(name="search-policies")
@click.option("--task", "mode", default="nas-bench-macro", show_default=True, help="Benchmark mode (registered by name).")
@click.option("--table", type=click.Path(path_type=Path), help="NAS-Bench-Macro JSON file (or its folder).")
@click.option("--seeds", type=click.IntRange(min=1), default=20, show_default=True, help="Seeds 0..N-1 per configuration.")
@click.option("--sigma", "sigmas", type=click.FloatRange(min=0), multiple=True, help="Noise levels (default: 0 and 1).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/benchmarks/search-policies"), show_default=True,
              help="Folder for runs.json, summary.json, the markdown section and the plots.")
@click.option("--docs", type=click.Path(path_type=Path), default=None,
              help="Also write the section into this markdown file (e.g. docs/benchmarks.md), plots into img/ beside it.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def search_policies(mode: str, table: Path | None, seeds: int, sigmas: tuple[float, ...], out: Path,
                    docs: Path | None, quiet: bool) -> None:
    """Compare path-priority, evolution, random and path-priority-verify at the paper's and equal budgets."""
    from oneshot.benchmarks.search_policies import get_mode, markdown_table

    words = ["oneshot", "benchmark", "search-policies", "--task", mode]
    if table is not None:
        words += ["--table", str(table)]
    words += ["--seeds", str(seeds)]
    for sigma in sigmas:
        words += ["--sigma", f"{sigma:g}"]
    words += ["--out", str(out)] + (["--docs", str(docs)] if docs is not None else [])
    command = " ".join(shlex.quote(w) for w in words)
    try:
        runner = get_mode(mode)
        report = runner(
            table=table,
            seeds=seeds,
            out=out,
            docs=docs,
            sigmas=sigmas or (0.0, 1.0),
            command=command,
            progress=None if quiet else (lambda msg: click.echo(msg, err=True)),
        )
    except (OneshotError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if "summaries" in report:
        click.echo(markdown_table(report["summaries"]))
    click.echo(f"results in {report.get('out', out)}" + (f"; section written to {docs}" if docs else ""))
