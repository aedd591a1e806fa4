"""Multi-fidelity racing measured: image-evaluations spent, and what is found, with and without it.

Run from the repository root::

    python -m benchmarks.racing --task panoptic --preset bench --seeds 3 --budget-scale 0.4 \\
        --retrain-seeds 2 --out runs/benchmarks/racing-bench

Around one pipeline run directory (``--run-dir``, default ``OUT/run``; an existing one, e.g. the
``run/`` of ``benchmarks.search_policies``, is reused with its supernet):

1. **supernet**: :meth:`Pipeline.train_supernet` (resumes, or reuses ``supernet.pt``);
2. **searches**: every searcher (``--searchers``) at the paper's budgets times ``--budget-scale``
   (:func:`benchmarks.task_policies.default_policies`), for search seeds ``0..S-1``, twice: racing
   off (*full*) and on (*racing*, :class:`oneshot.study.Racing` with ``--fraction``, ``--z``,
   ``--top-k``, ``--min-pairs``). Each search has its OWN store (``OUT/stores/``), so nothing is
   shared between the arms or the searches and every evaluation is paid for. Image-evaluations
   are counted from the records of that store with :meth:`Task.evaluation_size` (the items the
   task actually scores at a fraction, e.g. whole evaluation batches), when the search ends;
3. **found**: the FULL supernet score of every found architecture; when the search did not
   evaluate it in full (racing kept its partial score, or path-priority's argmax was never
   evaluated), it is evaluated in full in its search's store after the search's cost was counted
   (that extra cost is reported apart);
4. **rank correlation**: ``--rank-archs M`` architectures, half spread over the scores the full
   searches stored (:func:`benchmarks.task_benchmark.spread_by_score`), the rest random draws,
   scored on the fraction and in full (``OUT/stores/rank.jsonl``): Kendall tau-b and Spearman rho
   with paired bootstrap intervals (:func:`benchmarks.task_stats.trust_stats`);
5. **retraining** (``--retrain-seeds K`` > 0): every found architecture of both arms,
   :meth:`Pipeline.retrain` with the config's seed and the next ``K - 1`` (cached in the run
   directory, so an architecture found by both arms is trained once);
6. **report**: ``results.json``, ``report.md`` and ``racing.png`` (:mod:`benchmarks.racing_report`).

Every search, evaluation and retraining is stored as it finishes: rerun the same command after an
interruption and it continues.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import numpy as np

from benchmarks.search_policies import run_options
from benchmarks.task_benchmark import mean_metrics, spread_by_score
from benchmarks.task_policies import CostLedger, PolicySpec, default_policies, describe_searcher
from oneshot.errors import OneshotError
from oneshot.files import atomic_write_json
from oneshot.search import EvaluationStore, HistoryEntry, SearchResult
from oneshot.space import Architecture, SearchSpace
from oneshot.study import Racing, Study

__all__ = ["ARMS", "DEFAULT_SEARCHERS", "main", "run_racing_benchmark"]

DEFAULT_SEARCHERS = ("random", "evolution", "path-priority")
ARMS = ("full", "racing")
Progress = Callable[[str], None]


def run_racing_benchmark(
    task: str,
    *,
    out: str | Path,
    preset: str | None = None,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    device: str | None = None,
    searchers: Sequence[str] = DEFAULT_SEARCHERS,
    seeds: int = 1,
    budget_scale: float = 1.0,
    racing: Racing | None = None,
    retrain_seeds: int = 0,
    rank_archs: int = 20,
    command: str = "",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the racing benchmark for ``task`` (module docstring) and write its results into
    ``out``; returns what ``results.json`` holds."""
    from benchmarks.racing_report import summarize, write_report
    from oneshot.pipeline import open_run

    racing = racing or Racing()
    if seeds < 1 or retrain_seeds < 0 or rank_archs < 0:
        raise ValueError("--seeds must be >= 1, --retrain-seeds and --rank-archs >= 0")
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pipeline = open_run(task, run_dir=Path(run_dir) if run_dir is not None else out / "run", preset=preset,
                        config_path=config_path, overrides=overrides, device=device, progress=progress is not None)
    ledger = CostLedger(out / "costs.json", str(pipeline.device))
    pipeline.prepare_data()
    trained = pipeline.path("supernet").exists()
    say(f"[racing] {'reusing' if trained else 'training'} the supernet in {pipeline.run_dir}")
    with ledger.measure() as cost:
        model = pipeline.train_supernet()
    if not trained or ledger.get("supernet training") is None:
        ledger.record("supernet training", measured=not trained, **cost)
    space = SearchSpace.from_module(model)
    bench = _Bench(pipeline, model, space, racing, out)

    # searches: every searcher and seed, racing off and on, each on its own store
    specs = default_policies(space.window_size, budget_scale=budget_scale, names=list(searchers))
    runs = [bench.search(spec, seed, arm, say) for spec in specs for seed in range(seeds) for arm in ARMS]

    # rank correlation of partial and full scores
    rank = bench.rank_study([r for r in runs if r["arm"] == "full"], rank_archs, seed=pipeline.config.seed, say=say)

    # retraining of every found architecture
    retrain_with = [pipeline.config.seed + i for i in range(retrain_seeds)]
    found = list(dict.fromkeys(space.from_json(r["found"]["arch"]) for r in runs)) if retrain_with else []
    retrained: dict[str, Any] = {}
    for i, (arch, rseed) in enumerate((a, s) for a in found for s in retrain_with):
        cached = (pipeline.retrain_dir(arch, seed=rseed) / "metrics.json").exists()
        say(f"[racing] retrain {i + 1}/{len(found) * len(retrain_with)} seed {rseed}{': cached' if cached else ''}")
        with ledger.measure() as cost:
            metrics = pipeline.retrain(arch, seed=rseed).to_json()
        if not cached or ledger.get(f"retrain {arch.key} seed {rseed}") is None:
            ledger.record(f"retrain {arch.key} seed {rseed}", measured=not cached, **cost)
        retrained.setdefault(arch.key, {})[rseed] = metrics
    for r in runs:
        r["retrained"] = mean_metrics(retrained.get(r["found"]["key"], {}))

    results = {
        "task": task,
        "preset": preset,
        "overrides": list(overrides),
        "run_dir": str(pipeline.run_dir),
        "command": command,
        "racing": asdict(racing),
        "images": {"full": bench.sizes[1.0], "partial": bench.sizes[racing.fraction]},
        "budget_scale": budget_scale,
        "seeds": seeds,
        "retrain_seeds": retrain_with,
        "searchers": [{"searcher": s.searcher, "spec": s.to_json()} for s in specs],
        "runs": runs,
        "rank": rank,
        "costs": ledger.entries,
        "elapsed_s": time.perf_counter() - started,
    }
    results["summary"] = summarize(results, report_columns=pipeline.task_cls.report_columns)
    atomic_write_json(out / "results.json", results)
    write_report(results, out)
    say(f"[racing] done in {results['elapsed_s']:.0f} s; results in {out}")
    return results


class _Bench:
    """The evaluations of one benchmark: one store per search (and one for the rank study), the
    task's evaluation on the supernet, and the image count of each record."""

    def __init__(self, pipeline: Any, model: Any, space: SearchSpace, racing: Racing, out: Path) -> None:
        self.pipeline, self.model, self.space, self.racing, self.out = pipeline, model, space, racing, out
        self.provenance = pipeline.store_provenance()
        sizes = {f: pipeline.task.evaluation_size("search", f) for f in (1.0, racing.fraction)}
        if any(v is None for v in sizes.values()):
            raise ValueError(f"task {pipeline.task_cls.name!r} cannot say how many items it scores (Task.evaluation_size)")
        self.sizes: dict[float, int] = sizes  # type: ignore[assignment]

    def fitness(self, arch: Architecture, fraction: float = 1.0) -> dict[str, Any]:
        partial = {"fraction": fraction} if fraction < 1.0 else {}
        return self.pipeline.task.evaluate(self.model, [arch], split="search", **partial)[0]

    def store(self, name: str) -> EvaluationStore:
        return EvaluationStore(self.out / "stores" / f"{name}.jsonl", space=self.space, provenance=self.provenance)

    def spent(self, store: EvaluationStore) -> dict[str, Any]:
        """What the records of ``store`` cost: evaluations, image-evaluations, recorded seconds."""
        partials = store.partials()
        full = list(store)
        return {
            "full_evaluations": len(full),
            "partial_evaluations": len(partials),
            "image_evaluations": len(full) * self.sizes[1.0] + sum(self.sizes[f] for f, _ in partials),
            "eval_s": float(sum(e.wall_time for e in full) + sum(e.wall_time for _, e in partials)),
        }

    def search(self, spec: PolicySpec, seed: int, arm: str, say: Progress) -> dict[str, Any]:
        """One search of ``spec`` for ``seed`` with racing off (``full``) or on, on its own store,
        then the full score of what it found; read from ``OUT/searches/`` when done earlier."""
        name = f"{spec.searcher}-seed{seed}-{arm}"
        path = self.out / "searches" / f"{name}.json"
        racing = self.racing if arm == "racing" else None
        settings = {"spec": spec.to_json(), "racing": None if racing is None else asdict(racing), "images": self.sizes[1.0]}
        record = json.loads(path.read_text()) if path.exists() else None
        if record is not None and record["settings"] != settings:
            raise ValueError(f"{path} was made with other settings ({record['settings']}); use another --out")
        store = self.store(name)
        study = Study(self.fitness, store=store, racing=racing)
        searcher = spec.build(self.space, seed)
        label = describe_searcher(searcher)
        if record is None:
            say(f"[racing] {label}, seed {seed}, {arm}: at most {searcher.max_evaluations} evaluations "
                f"({len(store) + len(store.partials())} records in its store)")
            resumed = len(store) + len(store.partials()) > 0
            wall, cpu = time.perf_counter(), time.process_time()
            result = study.optimize(searcher)
            record = {
                "label": label, "searcher": spec.searcher, "seed": seed, "arm": arm, "settings": settings,
                **self.spent(store),
                "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "resumed": resumed,
                "result": result.to_json(),
            }
            atomic_write_json(path, record, indent=None)
            say(f"[racing] {label}, seed {seed}, {arm}: {record['image_evaluations']} image-evaluations "
                f"({record['full_evaluations']} full, {record['partial_evaluations']} partial)")
        if "found" not in record:
            best = SearchResult.from_json(self.space, record["result"]).best
            known = study.get(best)
            entry = known or study.evaluate([best], full=True)[0]
            told = [h for h in record["result"]["history"] if h["key"] == best.key]
            record["found"] = {
                "key": best.key, "arch": best.to_json(), "fitness": entry.fitness, "metrics": entry.metrics,
                "told_fidelity": told[0].get("fidelity", 1.0) if told else None,  # None: never evaluated in the search
                "confirm_image_evaluations": 0 if known else self.sizes[1.0],
            }
            atomic_write_json(path, record, indent=None)
        return record

    def rank_study(self, full_runs: Sequence[dict[str, Any]], m: int, *, seed: int, say: Progress) -> dict[str, Any]:
        """``m`` architectures scored on the fraction and in full: ``m // 2`` spread over the
        scores of the full searches, the rest drawn at random (a fixed stream of the run seed)."""
        from benchmarks.task_stats import trust_stats

        fraction = self.racing.fraction
        runs = [{"result": SearchResult.from_json(self.space, r["result"])} for r in full_runs]
        chosen = {a: "visited" for a in spread_by_score(runs, m // 2, exclude=set())}
        rng = np.random.default_rng(seed + 7_919)
        tries = 0
        while len(chosen) < min(m, self.space.size) and tries < 100 * (m + 1):
            tries += 1
            chosen.setdefault(self.space.sample(rng), "random")
        store = self.store(f"rank-{fraction:g}")
        rows = []
        for i, (arch, group) in enumerate(chosen.items()):
            partial, full = store.get_partial(arch, fraction), store.get(arch)
            if partial is None or full is None:
                say(f"[racing] rank study {i + 1}/{len(chosen)}")
            if partial is None:
                partial = _timed(arch, lambda a: self.fitness(a, fraction), fraction)
                store.add_partial(partial, fraction)
            if full is None:
                full = _timed(arch, self.fitness, 1.0)
                store.add(full)
            rows.append({"key": arch.key, "group": group, "partial": partial.fitness, "full": full.fitness})
        out: dict[str, Any] = {"fraction": fraction, "archs": rows}
        for group in ("all", "visited", "random"):
            sel = [r for r in rows if group in ("all", r["group"])]
            stats = trust_stats([r["partial"] for r in sel], [r["full"] for r in sel])
            diffs = [r["full"] - r["partial"] for r in sel]
            stats["difference_mean"] = float(np.mean(diffs)) if diffs else None
            stats["difference_sd"] = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else None
            out[group] = stats
        return out


def _timed(arch: Architecture, fitness: Callable[[Architecture], Any], fidelity: float) -> HistoryEntry:
    start = time.perf_counter()
    metrics = dict(fitness(arch))
    return HistoryEntry(arch, float(metrics["fitness"]), time.perf_counter() - start, metrics, fidelity)


# ----------------------------------------------------------------------------- command line
@click.command(name="racing", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--task", required=True, help="A registered task (e.g. panoptic, toy).")
@run_options("The run: ", run_dir="pipeline run directory holding (or receiving) the supernet")
@click.option("--searchers", "searchers", multiple=True, metavar="SEARCHER",
              help="Searchers to run (repeatable or comma-separated) [default: random, evolution, path-priority].")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True, help="Search seeds 0..N-1.")
@click.option("--budget-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Multiply the paper's budgets (path-priority 5 cycles, evolution 1000, random 300).")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.25, show_default=True,
              help="Share of the search split a candidate is scored on first.")
@click.option("--z", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Racing: standard deviations of the (full - partial) difference added before dropping.")
@click.option("--top-k", type=click.IntRange(min=1), default=1, show_default=True,
              help="Racing: a candidate must be able to reach the top-k-th best full score.")
@click.option("--min-pairs", type=click.IntRange(min=2), default=4, show_default=True,
              help="Racing: candidates scored both ways before any is dropped.")
@click.option("--retrain-seeds", type=click.IntRange(min=0), default=0, show_default=True,
              help="Retrain every found architecture with N seeds (0: no retraining).")
@click.option("--rank-archs", type=click.IntRange(min=0), default=20, show_default=True,
              help="Architectures scored on the fraction and in full for the rank correlation.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: runs/benchmarks/racing-TASK-PRESET].")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def main(task: str, preset: str | None, config_path: Path | None, overrides: tuple[str, ...], run_dir: Path | None,
         device: str | None, searchers: tuple[str, ...], seeds: int, budget_scale: float, fraction: float, z: float,
         top_k: int, min_pairs: int, retrain_seeds: int, rank_archs: int, out: Path | None, quiet: bool) -> None:
    """Image-evaluations and found architectures of every searcher with multi-fidelity racing off
    and on (see docs/benchmarks.md, "Cheaper candidate evaluation")."""
    from oneshot.tasks import get_task

    names = [n.strip() for item in searchers for n in item.split(",") if n.strip()] or list(DEFAULT_SEARCHERS)
    try:
        out = out or Path(f"runs/benchmarks/racing-{task}-{preset or get_task(task).default_preset()}")
        words = ["python", "-m", "benchmarks.racing", "--task", task]
        for flag, value in (("--preset", preset), ("--config", config_path), ("--run-dir", run_dir), ("--device", device)):
            if value is not None:
                words += [flag, str(value)]
        words += [w for item in overrides for w in ("--set", item)] + ["--searchers", ",".join(names)]
        words += ["--seeds", str(seeds), "--budget-scale", f"{budget_scale:g}", "--fraction", f"{fraction:g}",
                  "--z", f"{z:g}", "--top-k", str(top_k), "--min-pairs", str(min_pairs),
                  "--retrain-seeds", str(retrain_seeds), "--rank-archs", str(rank_archs), "--out", str(out)]
        run_racing_benchmark(
            task, out=out, preset=preset, config_path=config_path, overrides=overrides, run_dir=run_dir, device=device,
            searchers=names, seeds=seeds, budget_scale=budget_scale,
            racing=Racing(fraction=fraction, top_k=top_k, z=z, min_pairs=min_pairs), retrain_seeds=retrain_seeds,
            rank_archs=rank_archs, command=shlex.join(words),
            progress=None if quiet else (lambda msg: click.echo(msg, err=True)),
        )
    except (OneshotError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo((out / "report.md").read_text())


if __name__ == "__main__":
    main(prog_name="python -m benchmarks.racing")
