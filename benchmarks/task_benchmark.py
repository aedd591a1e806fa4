"""Search policies on a task's trained supernet, retrained, and how far the supernet can be trusted.

``python -m benchmarks.search_policies --task NAME`` for any registered task (``panoptic``,
``toy``, ...) runs, in one output folder (``--out``) around one pipeline run directory
(``--run-dir``, default ``OUT/run``):

1. **supernet**: :meth:`Pipeline.train_supernet` (resumes, or reuses ``supernet.pt``);
2. **search**: path-priority (5 cycles), evolution (50 x 20), random (300), path-priority-verify,
   surrogate and model-select (at path-priority's budget) for seeds ``0..S-1``, all through one
   :class:`~oneshot.study.Study` on the run's evaluation store, so an architecture evaluated by
   one policy is never evaluated again for another (``--budget-scale`` or ``--policy-set`` shrink
   the budgets);
3. **candidates**: every policy's architecture (every search seed), the path-priority top-k,
   random architectures and ``--trust-archs`` architectures spread over the quantiles of the
   supernet scores the searches stored, evaluated on the supernet through the same study;
4. **retrain**: :meth:`Pipeline.retrain` on every candidate with ``--retrain-seeds`` seeds (the
   config's seed, then the next ones; the same schedule for all), metrics on ``val``; the queue is
   written to ``OUT/retrain_queue.json`` (its random architectures before the supernet is trained)
   so that :mod:`benchmarks.retrain_worker` processes can take their share;
5. **supernet trust**: Kendall tau-b and Spearman rho between supernet and retrained fitness (the
   mean over retraining seeds), with paired bootstrap intervals (:mod:`benchmarks.task_stats`);
6. **BN recalibration**: fitness of fixed architectures for 0, 10, 50, 200 batches
   (``eval.bn_batches``), evaluated directly with a task built on a config copy (never through the
   store, since the stored fitness is defined by the run's own setting);
7. **report**: ``summary.json``, figures and ``report.md`` (:mod:`benchmarks.task_report`).

Every stage resumes: run the same command again after an interruption. Search runs are kept in
``OUT/searches/``, measured costs in ``OUT/costs.json``.

Shared-store accounting is deterministic and independent of resumption: policies run in a fixed
order, and an architecture counts as *new to the store* for the first run (in that order) whose
history holds it; its evaluation time is the one recorded in the store. "As if unshared" sums the
recorded time of every distinct architecture a run used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.claims import claim
from benchmarks.retrain_worker import QUEUE_FILE, WORKER_COST_FILE, claim_name, write_queue
from benchmarks.task_policies import (
    Candidate,
    CostLedger,
    PolicySpec,
    default_policies,
    describe_searcher,
    share_accounting,
)
from benchmarks.task_report import markdown_body, section_title
from benchmarks.task_stats import trust_stats
from benchmarks.task_summary import build_summary, write_plots
from oneshot.files import atomic_write_json, atomic_write_text, read_json
from oneshot.search import SearchResult
from oneshot.space import Architecture, SearchSpace
from oneshot.study import Study

__all__ = ["DEFAULT_BN_COUNTS", "mean_metrics", "random_candidates", "run_task_benchmark", "spread_by_score"]

DEFAULT_BN_COUNTS = (0, 10, 50, 200)
Progress = Callable[[str], None]


def run_task_benchmark(
    task: str,
    *,
    out: str | Path,
    preset: str | None = None,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    seeds: int = 1,
    budget_scale: float = 1.0,
    policy_options: Mapping[str, Mapping[str, Any]] | None = None,
    policies: Sequence[str] | None = None,
    random_archs: int = 6,
    top_k: int = 3,
    retrain_seeds: int = 1,
    trust_archs: int = 0,
    bn_counts: Sequence[int] = DEFAULT_BN_COUNTS,
    device: str | None = None,
    command: str = "",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark for ``task`` and write its results; see the module docstring.

    Writes into ``out``: ``summary.json``, ``costs.json``, ``searches/*.json``,
    ``bn_recalibration.json``, ``policies_*.png`` and ``report.md`` (the section
    :func:`~benchmarks.task_report.section_title`, figures linked beside it). Returns the summary.
    """
    from oneshot.pipeline import open_run

    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if random_archs < 0 or top_k < 1 or retrain_seeds < 1 or trust_archs < 0:
        raise ValueError("--random-archs and --trust-archs must be >= 0, --top-k and --retrain-seeds >= 1")
    if any(k < 0 for k in bn_counts):
        raise ValueError(f"BN recalibration batch counts must be >= 0, got {list(bn_counts)}")
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pipeline = open_run(
        task,
        run_dir=Path(run_dir) if run_dir is not None else out / "run",
        preset=preset,
        config_path=config_path,
        overrides=overrides,
        device=device,
        progress=progress is not None,
    )
    ledger = CostLedger(out / "costs.json", str(pipeline.device))

    # 1. data and supernet ------------------------------------------------------------------
    with ledger.measure() as cost:
        pipeline.prepare_data()
    ledger.record("data preparation", **cost)
    retrain_with = [pipeline.config.seed + i for i in range(retrain_seeds)]
    if not (out / QUEUE_FILE).exists() or not read_json(out / QUEUE_FILE, what="retraining queue")["final"]:
        # the random architectures are known now: workers (benchmarks.retrain_worker) can start on them
        early = random_candidates(pipeline, SearchSpace.from_module(pipeline.task.build_supernet()), random_archs)
        write_queue(out, task=task, config_path=pipeline.run_dir / "config.yaml", run_dir=pipeline.run_dir,
                    items=[(a, r) for a in early for r in retrain_with], final=False)
    supernet_done = pipeline.path("supernet").exists()
    say(f"[benchmark] {'reusing' if supernet_done else 'training'} the supernet in {pipeline.run_dir}")
    with ledger.measure() as cost:
        model = pipeline.train_supernet()
    if not supernet_done or ledger.get("supernet training") is None:
        ledger.record("supernet training", steps=pipeline.config.train.iterations, measured=not supernet_done, **cost)
    space = SearchSpace.from_module(model)
    study = pipeline.study(model, split="search")  # the run's store: shared by every policy

    # 2. searches through the shared store ----------------------------------------------------
    specs = default_policies(space.window_size, budget_scale=budget_scale, options=policy_options, names=policies)
    runs: list[dict[str, Any]] = []
    for spec in specs:
        for seed in range(seeds):
            runs.append(_search(study, space, spec, seed, out / "searches", ledger, say, progress=pipeline.progress))
    for run, acc in zip(runs, share_accounting([r["result"] for r in runs]), strict=True):
        run.update(acc)

    # 3. candidates and their supernet fitness ----------------------------------------------
    candidates = _candidates(pipeline, space, runs, top_k=top_k, random_archs=random_archs, trust_archs=trust_archs)
    found_all = [r["result"].best for r in runs]
    to_score = list(dict.fromkeys([c.arch for c in candidates] + found_all))
    new = sum(study.get(a) is None for a in to_score)
    say(f"[benchmark] supernet fitness of {len(to_score)} architectures ({new} not yet in the store)")
    with ledger.measure() as cost:
        scored = {e.arch: {"fitness": e.fitness, **e.metrics} for e in study.evaluate(to_score)}
    if new or ledger.get("supernet evaluation of candidates") is None:
        ledger.record("supernet evaluation of candidates", evaluations=new, measured=True, **cost)
    for c in candidates:
        c.supernet = scored[c.arch]
    for r in runs:
        r["found_metrics"] = scored[r["result"].best]

    # 4. retraining (one from-scratch training per candidate and retraining seed; workers may help) ---
    queue = [(c, r) for c in candidates for r in retrain_with]
    write_queue(out, task=task, config_path=pipeline.run_dir / "config.yaml", run_dir=pipeline.run_dir,
                items=[(c.arch, r) for c, r in queue], final=True)
    _retrain_all(pipeline, queue, out / "claims", ledger, say)
    for c in candidates:
        c.retrained = mean_metrics(c.runs)

    # 5. supernet trust ------------------------------------------------------------------------
    pairs = [(c.supernet["fitness"], c.retrained["fitness"]) for c in candidates if c.supernet and c.retrained]
    trust = trust_stats([p[0] for p in pairs], [p[1] for p in pairs])
    say(f"[benchmark] supernet trust: N = {trust['n']}, Kendall tau-b {trust['kendall_tau_b']:.3f}, "
        f"Spearman rho {trust['spearman_rho']:.3f}")

    # 6. BN recalibration study --------------------------------------------------------------
    bn = _bn_study(pipeline, model, candidates, runs, bn_counts, out / "bn_recalibration.json", ledger, say)

    # 7. report ------------------------------------------------------------------------------
    summary = build_summary(task, preset, overrides, pipeline, space, specs, runs, candidates, trust, bn, ledger,
                            seeds=seeds, budget_scale=budget_scale, policy_options=policy_options or {},
                            retrain_seeds=retrain_with, elapsed=time.perf_counter() - started, command=command)
    write_plots(summary, out)
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", f"{section_title(task)}\n\n{markdown_body(summary)}\n")
    say(f"[benchmark] done in {summary['elapsed_s']:.0f} s; results in {out}")
    return summary


def _retrain_all(pipeline: Any, queue: Sequence[tuple[Candidate, int]], claims: Path, ledger: CostLedger, say: Progress,
                 *, poll_s: float = 10.0) -> None:
    """Retrain every ``(candidate, seed)`` of ``queue`` in order, skipping what a worker has claimed
    (:mod:`benchmarks.retrain_worker`) and waiting for those at the end; fills ``candidate.runs``
    and the ledger (a worker's retraining with the cost it measured)."""
    total = len(queue)
    pending = list(enumerate(queue))
    while pending:
        deferred = []
        for i, (c, rseed) in pending:
            folder = pipeline.retrain_dir(c.arch, seed=rseed)
            done = (folder / "metrics.json").exists()
            if not done and not claim(claims, claim_name(c.arch.key, rseed)):
                deferred.append((i, (c, rseed)))
                continue
            say(f"[benchmark] retrain {i + 1}/{total} seed {rseed} ({', '.join(c.roles)}){' : cached' if done else ''}")
            with ledger.measure() as cost:
                c.runs[rseed] = pipeline.retrain(c.arch, seed=rseed).to_json()
            key = f"retrain {c.arch.key}" + ("" if rseed == pipeline.config.seed else f" seed {rseed}")
            by_worker = (folder / WORKER_COST_FILE).exists()
            if by_worker and ledger.get(key) is None:
                worker = json.loads((folder / WORKER_COST_FILE).read_text())
                ledger.record(key, steps=pipeline.config.retrain.iterations, measured=True,
                              wall_s=worker["wall_s"], cpu_s=worker["cpu_s"], worker=worker.get("worker"))
            elif not done or ledger.get(key) is None:
                ledger.record(key, steps=pipeline.config.retrain.iterations, measured=not done, **cost)
        if deferred and len(deferred) == len(pending):
            say(f"[benchmark] waiting for {len(deferred)} retraining(s) claimed by workers")
            time.sleep(poll_s)
        pending = deferred


def _search(
    study: Study,
    space: SearchSpace,
    spec: PolicySpec,
    seed: int,
    folder: Path,
    ledger: CostLedger,
    say: Progress,
    *,
    progress: bool,
) -> dict[str, Any]:
    """Run one policy for one seed through the study (the shared store), or read its finished run."""
    try:
        searcher = spec.build(space, seed)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"policy {spec.searcher}: {exc}") from None
    label = describe_searcher(searcher)
    path = folder / f"{spec.searcher}-seed{seed}.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("spec") == spec.to_json():
            result = SearchResult.from_json(space, saved["result"])
            say(f"[benchmark] {label}, seed {seed}: finished earlier ({result.num_evaluated} evaluations)")
            return {**saved, "result": result}
    before = study.num_computed
    say(f"[benchmark] {label}, seed {seed}: at most {searcher.max_evaluations} evaluations ({len(study)} in the store)")
    with ledger.measure() as cost:
        result = study.optimize(searcher, progress=progress)
    fresh = study.num_computed - before
    record = {
        "label": label,
        "searcher": spec.searcher,
        "seed": seed,
        "spec": spec.to_json(),
        "fresh_evaluations": fresh,
        **cost,
    }
    ledger.record(f"search {spec.searcher} seed {seed}", evaluations=fresh, measured=True, **cost)
    atomic_write_json(path, {**record, "result": result.to_json()}, indent=None)
    say(f"[benchmark] {label}, seed {seed}: {result.num_evaluated} evaluations, {fresh} new, {cost['wall_s']:.1f} s")
    values = {h.fitness for h in result.history}
    if len(result.history) > 1 and len(values) == 1:
        say(f"[benchmark] warning: all {result.num_evaluated} architectures of this search have the same fitness "
            f"{values.pop():g}: the supernet cannot rank them (train it longer, or use a finer fitness)")
    return {**record, "result": result}


def _candidates(
    pipeline: Any,
    space: SearchSpace,
    runs: Sequence[dict[str, Any]],
    *,
    top_k: int,
    random_archs: int,
    trust_archs: int = 0,
) -> list[Candidate]:
    """Architectures to retrain: each policy's pick for every search seed, the top-k of
    path-priority (seed 0), distinct random architectures (a fixed stream of the run seed), and
    ``trust_archs`` architectures spread over the supernet scores the searches evaluated."""
    by_arch: dict[Architecture, Candidate] = {}

    def add(arch: Architecture, role: str) -> None:
        by_arch.setdefault(arch, Candidate(arch, [])).roles.append(role)

    for r in runs:
        add(r["result"].best, f"found: {r['label']}, seed {r['seed']}")
    for r in runs:
        if r["searcher"] == "path-priority" and r["seed"] == 0:
            for i, arch in enumerate(r["result"].top_k[:top_k]):
                add(arch, f"top-k: path-priority top-{i + 1}")
    for i, arch in enumerate(random_candidates(pipeline, space, random_archs)):
        add(arch, f"random #{i + 1}")
    for i, arch in enumerate(spread_by_score(runs, trust_archs, exclude=set(by_arch))):
        add(arch, f"spread #{i + 1}")
    return list(by_arch.values())


def random_candidates(pipeline: Any, space: SearchSpace, n: int) -> list[Architecture]:
    """``n`` distinct random architectures, a fixed stream of the run's seed (known before any search)."""
    rng = np.random.default_rng(pipeline.config.seed + 104_729)
    drawn: list[Architecture] = []
    tries = 0
    while len(drawn) < min(n, space.size) and tries < 100 * (n + 1):
        tries += 1
        arch = space.sample(rng)
        if arch not in drawn:
            drawn.append(arch)
    return drawn


def spread_by_score(runs: Sequence[dict[str, Any]], n: int, *, exclude: set[Architecture]) -> list[Architecture]:
    """``n`` distinct architectures the searches evaluated (so already in the store), at the
    quantiles ``(i + 0.5) / n`` of their supernet scores (ties broken by key), none in ``exclude``;
    fewer when the searches evaluated fewer."""
    scores: dict[Architecture, float] = {}
    for r in runs:
        for h in r["result"].history:
            scores.setdefault(h.arch, float(h.fitness))
    ranked = sorted((a for a in scores if a not in exclude), key=lambda a: (scores[a], a.key))
    if n <= 0 or not ranked:
        return []
    if n >= len(ranked):
        return ranked
    picks = dict.fromkeys(ranked[min(len(ranked) - 1, int((i + 0.5) * len(ranked) / n))] for i in range(n))
    return list(picks)


def mean_metrics(runs: Mapping[int, Mapping[str, Any]]) -> dict[str, Any] | None:
    """Mean of every numeric metric over retraining seeds, with ``seeds`` and the per-seed
    ``fitness_by_seed`` (None without runs)."""
    if not runs:
        return None
    first = next(iter(runs.values()))
    out: dict[str, Any] = {
        k: float(np.mean([float(m[k]) for m in runs.values()]))
        for k, v in first.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and all(k in m for m in runs.values())
    }
    if "retrain_steps" in first:
        out["retrain_steps"] = first["retrain_steps"]
    out["seeds"] = sorted(runs)
    out["fitness_by_seed"] = [float(runs[s]["fitness"]) for s in sorted(runs)]
    return out


def _bn_study(
    pipeline: Any,
    model: Any,
    candidates: Sequence[Candidate],
    runs: Sequence[dict[str, Any]],
    counts: Sequence[int],
    cache_path: Path,
    ledger: CostLedger,
    say: Progress,
) -> dict[str, Any]:
    """Fitness of the first policy's architecture (seed 0) and of the first random architecture
    for each number of BN recalibration batches (``eval.bn_batches``), evaluated with a task built
    on a config copy."""
    if not counts:
        return {"skipped": "no BN recalibration batch counts were asked for"}
    default = int(pipeline.config.eval.bn_batches)
    chosen: list[tuple[str, Architecture]] = []
    first = runs[0]
    chosen.append((f"found by {first['label']}", first["result"].best))
    random = next((c.arch for c in candidates if any(r == "random #1" for r in c.roles)), None)
    if random is not None and random != chosen[0][1]:
        chosen.append(("random #1", random))
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    entries: dict[str, Any] = cache.setdefault("entries", {})
    for k in counts:
        todo = [(label, a) for label, a in chosen if f"{a.key}|{k}" not in entries]
        if not todo:
            continue
        say(f"[benchmark] BN recalibration: eval.bn_batches={k} for {len(todo)} architecture(s)")
        config = pipeline.config.model_copy(deep=True)
        config.eval.bn_batches = k  # validated on assignment
        with ledger.measure() as cost:
            task = pipeline.task_cls(config, device=pipeline.device, progress=False)
            task.prepare_data()
            metrics = task.evaluate(model, [a for _, a in todo], split="search")
        for (_, a), m in zip(todo, metrics, strict=True):
            entries[f"{a.key}|{k}"] = {**m, "wall_s": cost["wall_s"] / len(todo), "cpu_s": cost["cpu_s"] / len(todo)}
        atomic_write_json(cache_path, cache)
    total_wall = sum(e["wall_s"] for key, e in entries.items() if any(key == f"{a.key}|{k}" for _, a in chosen for k in counts))
    total_cpu = sum(e["cpu_s"] for key, e in entries.items() if any(key == f"{a.key}|{k}" for _, a in chosen for k in counts))
    ledger.record("BN recalibration study", evaluations=len(chosen) * len(counts), measured=True,
                  wall_s=total_wall, cpu_s=total_cpu)
    return {
        "default": default,
        "counts": list(counts),
        "archs": [
            {
                "label": label,
                "key": a.key,
                "fitness": [entries[f"{a.key}|{k}"]["fitness"] for k in counts],
                "wall_s": [entries[f"{a.key}|{k}"]["wall_s"] for k in counts],
            }
            for label, a in chosen
        ],
    }
