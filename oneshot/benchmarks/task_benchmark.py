"""Search policies on a task's trained supernet, retrained, and how far the supernet can be trusted.

``oneshot benchmark search-policies --task NAME`` for any registered task (``panoptic``, ``toy``,
...) runs, in one output folder (``--out``) around one pipeline run directory (``--run-dir``,
default ``OUT/run``):

1. **supernet**: :meth:`Pipeline.train_supernet` (resumes, or reuses ``supernet.pt``);
2. **search**: path-priority (5 cycles), evolution (50 x 20), random (300) and
   path-priority-verify (at path-priority's budget) for seeds ``0..S-1``, all through the
   pipeline's evaluation store, so an architecture evaluated by one policy is never evaluated
   again for another (``--budget-scale`` or ``--policy-set`` shrink the budgets);
3. **candidates**: every policy's architecture, the path-priority top-k and random architectures,
   evaluated on the supernet through the same store;
4. **retrain**: :meth:`Pipeline.retrain` on every candidate (the same schedule for all), metrics on
   ``val``;
5. **supernet trust**: Kendall tau-b and Spearman rho between supernet and retrained fitness;
6. **BN recalibration**: fitness of fixed architectures for 0, 10, 50, 200 recalibration batches,
   evaluated directly with a task built on a config copy (never through the store, since the
   stored fitness is defined by the run's own setting);
7. **report**: Table 5 and Table 3 style tables, costs per stage, plots and a markdown section.

Every stage resumes: run the same command again after an interruption. Search runs are kept in
``OUT/searches/``, measured costs in ``OUT/costs.json``.

Shared-store accounting is deterministic and independent of resumption: policies run in a fixed
order, and an architecture counts as *new to the store* for the first run (in that order) whose
history holds it; its evaluation time is the one recorded in the store. "As if unshared" sums the
recorded time of every distinct architecture a run used.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from oneshot.benchmarks.search_policies import write_markdown_section
from oneshot.benchmarks.stats import kendall_tau_b, spearman_rho
from oneshot.search import Searcher, SearchResult, build_searcher
from oneshot.space import Architecture, SearchSpace

__all__ = [
    "BN_FIELDS",
    "DEFAULT_BN_COUNTS",
    "PolicySpec",
    "Candidate",
    "available_task_modes",
    "default_policies",
    "describe_searcher",
    "find_bn_field",
    "run_task_benchmark",
    "section_title",
    "share_accounting",
    "task_mode",
]

PAPER_SEARCHERS = ("path-priority", "evolution", "random", "path-priority-verify")
DEFAULT_BN_COUNTS = (0, 10, 50, 200)
# Config fields holding the number of BN recalibration batches, tried in order.
BN_FIELDS = ("eval.bn_batches", "bn_batches")
# Extra metric columns shown when the task reports them (display names).
EXTRA_COLUMNS = {"pq_th": "PQ things", "pq_st": "PQ stuff"}
Progress = Callable[[str], None]


def section_title(task: str) -> str:
    """The markdown section written for ``task`` (``## Search policies on the panoptic supernet``)."""
    return f"## Search policies on the {task} supernet"


# --------------------------------------------------------------------------- policies
@dataclass(frozen=True)
class PolicySpec:
    """How to build one policy: a registered searcher at a budget (``with_budget``) or with
    explicit constructor options."""

    searcher: str
    budget: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self, space: SearchSpace, seed: int) -> Searcher:
        if self.budget is not None:
            return build_searcher(self.searcher, space, budget=self.budget, seed=seed)
        return build_searcher(self.searcher, space, seed=seed, **dict(self.options))

    def to_json(self) -> dict[str, Any]:
        return {"searcher": self.searcher, "budget": self.budget, "options": dict(self.options)}


def default_policies(
    window_size: int,
    *,
    budget_scale: float = 1.0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    names: Sequence[str] | None = None,
) -> list[PolicySpec]:
    """The paper's budgets, times ``budget_scale``: path-priority 5 cycles (``5 E`` evaluations for
    a fair window of ``E``), evolution 50 x 20 (1000), random 300, and path-priority-verify at
    path-priority's budget. Scaled budgets keep at least one fair window for the path-priority
    family and two evaluations for evolution. A searcher named in ``options`` is built with
    those constructor options instead (e.g. ``{"evolution": {"population": 10, "generations": 3}}``).
    """
    if budget_scale <= 0:
        raise ValueError(f"--budget-scale must be > 0, got {budget_scale}")
    options = options or {}
    names = list(names) if names else list(PAPER_SEARCHERS)
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"--policy-set names searchers that are not run: {', '.join(unknown)} (run: {', '.join(names)})")
    def scaled(n: int) -> int:  # half up, not Python's half-to-even: 2.5 cycles -> 3
        return int(math.floor(n * budget_scale + 0.5))

    pp_budget = window_size * max(1, scaled(5))
    budgets = {
        "path-priority": pp_budget,
        "evolution": max(2, scaled(1000)),
        "random": max(1, scaled(300)),
        "path-priority-verify": pp_budget,
    }
    specs = []
    for name in dict.fromkeys(names):
        if name in options:
            specs.append(PolicySpec(name, None, dict(options[name])))
        elif name in budgets:
            specs.append(PolicySpec(name, budgets[name]))
        else:
            specs.append(PolicySpec(name, pp_budget))  # another registered searcher: path-priority's budget
    return specs


def describe_searcher(searcher: Searcher) -> str:
    """A short label with the searcher's budget parameters, e.g. ``evolution (50 x 20)``."""
    name = searcher.name or type(searcher).__name__
    if hasattr(searcher, "cycles"):
        cycles = int(searcher.cycles)
        return f"{name} ({cycles} cycle{'s' if cycles != 1 else ''} = {searcher.max_evaluations} evals)"
    if hasattr(searcher, "population") and hasattr(searcher, "generations"):
        return f"{name} ({searcher.population} x {searcher.generations})"
    return f"{name} ({searcher.max_evaluations})"


# --------------------------------------------------------------------------- accounting and costs
def share_accounting(results: Sequence[SearchResult]) -> list[dict[str, float]]:
    """Per run, in order: distinct ``evaluations``, ``new_evaluations`` (not used by an earlier
    run), ``new_eval_s`` (their recorded time) and ``unshared_eval_s`` (recorded time of every
    distinct architecture the run used, as if it had its own store)."""
    seen: set[Architecture] = set()
    out = []
    for result in results:
        times: dict[Architecture, float] = {}
        for h in result.history:
            times.setdefault(h.arch, float(h.wall_time))
        new = [a for a in times if a not in seen]
        out.append(
            {
                "evaluations": len(times),
                "new_evaluations": len(new),
                "new_eval_s": float(sum(times[a] for a in new)),
                "unshared_eval_s": float(sum(times.values())),
            }
        )
        seen.update(times)
    return out


class CostLedger:
    """Measured costs of stages (wall and process CPU seconds), kept in ``costs.json`` so that a
    resumed benchmark still reports what earlier invocations spent."""

    def __init__(self, path: Path, device: str) -> None:
        self.path = path
        self.device = device
        self.entries: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def record(self, key: str, **values: Any) -> dict[str, Any]:
        entry = {"device": self.device, **values}
        self.entries[key] = entry
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.entries, indent=1))
        tmp.replace(self.path)
        return entry

    @contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        """Yields a dict filled with ``wall_s`` and ``cpu_s`` when the block ends."""
        sync = _cuda_sync(self.device)
        out: dict[str, float] = {}
        sync()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield out
        finally:
            sync()
            out["wall_s"] = time.perf_counter() - wall
            out["cpu_s"] = time.process_time() - cpu


def _cuda_sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


# --------------------------------------------------------------------------- config helpers
def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not hasattr(obj, part):
            raise AttributeError(path)
        obj = getattr(obj, part)
    return obj


def find_bn_field(config: Any, candidates: Sequence[str] = BN_FIELDS) -> str | None:
    """The first of ``candidates`` that is an integer field of ``config``, or ``None``."""
    for path in candidates:
        try:
            value = _get_path(config, path)
        except AttributeError:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            return path
    return None


def _with_field(config: Any, path: str, value: Any) -> Any:
    """A deep copy of a pydantic config with ``path`` set to ``value`` (validated on assignment)."""
    copy = config.model_copy(deep=True)
    *parents, last = path.split(".")
    node = copy
    for part in parents:
        node = getattr(node, part)
    setattr(node, last, value)
    return copy


# --------------------------------------------------------------------------- candidates
@dataclass
class Candidate:
    """An architecture that is retrained: why it was chosen (``roles``) and its results."""

    arch: Architecture
    roles: list[str]
    supernet: dict[str, Any] | None = None
    retrained: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        """``found`` if any policy returned it, else ``top-k``, else ``random``."""
        for kind in ("found", "top-k", "random"):
            if any(r.startswith(kind) for r in self.roles):
                return kind
        return self.roles[0]


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


# --------------------------------------------------------------------------- the benchmark
def run_task_benchmark(
    task: str,
    *,
    out: str | Path,
    preset: str | None = None,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    docs: str | Path | None = None,
    seeds: int = 1,
    budget_scale: float = 1.0,
    policy_options: Mapping[str, Mapping[str, Any]] | None = None,
    policies: Sequence[str] | None = None,
    random_archs: int = 6,
    top_k: int = 3,
    retrain_seeds: int = 1,
    bn_counts: Sequence[int] = DEFAULT_BN_COUNTS,
    bn_field: str | None = None,
    device: str | None = None,
    command: str = "",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark for ``task`` and write its results; see the module docstring.

    Writes into ``out``: ``summary.json``, ``costs.json``, ``searches/*.json``,
    ``bn_recalibration.json``, ``search_policies_<task>.md`` and ``policies_*.png``. With
    ``docs`` (e.g. ``docs/benchmarks.md``) the section :func:`section_title` is written there and
    the plots go to ``img/`` beside it. Returns the summary dict.
    """
    from oneshot.pipeline import open_run

    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    if random_archs < 0 or top_k < 1 or retrain_seeds < 0:
        raise ValueError("--random-archs must be >= 0, --top-k >= 1 and --retrain-seeds >= 0")
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
    supernet_done = pipeline.path("supernet").exists()
    say(f"[benchmark] {'reusing' if supernet_done else 'training'} the supernet in {pipeline.run_dir}")
    with ledger.measure() as cost:
        model = pipeline.train_supernet()
    if not supernet_done or ledger.get("supernet training") is None:
        ledger.record("supernet training", steps=pipeline.config.train.iterations, measured=not supernet_done, **cost)
    space = SearchSpace.from_module(model)
    store = pipeline.store(space)

    # 2. searches through the shared store ----------------------------------------------------
    specs = default_policies(space.window_size, budget_scale=budget_scale, options=policy_options, names=policies)
    runs: list[dict[str, Any]] = []
    for spec in specs:
        for seed in range(seeds):
            runs.append(_search(pipeline, model, space, store, spec, seed, out / "searches", ledger, say))
    for run, acc in zip(runs, share_accounting([r["result"] for r in runs]), strict=True):
        run.update(acc)

    # 3. candidates and their supernet fitness ----------------------------------------------
    candidates = _candidates(pipeline, space, runs, seeds=seeds, retrain_seeds=retrain_seeds, top_k=top_k,
                             random_archs=random_archs)
    found_all = [r["result"].best for r in runs]
    to_score = list(dict.fromkeys([c.arch for c in candidates] + found_all))
    new = sum(a not in store for a in to_score)
    say(f"[benchmark] supernet fitness of {len(to_score)} architectures ({new} not yet in the store)")
    with ledger.measure() as cost:
        scored = dict(zip(to_score, pipeline.evaluate_archs(model, to_score, split="search"), strict=True))
    if new or ledger.get("supernet evaluation of candidates") is None:
        ledger.record("supernet evaluation of candidates", evaluations=new, measured=True, **cost)
    for c in candidates:
        c.supernet = scored[c.arch]
    for r in runs:
        r["found_metrics"] = scored[r["result"].best]

    # 4. retraining --------------------------------------------------------------------------
    for i, c in enumerate(candidates):
        done = (pipeline.run_dir / "retrain" / c.arch.key[:64] / "metrics.json").exists()
        say(f"[benchmark] retrain {i + 1}/{len(candidates)} ({', '.join(c.roles)}){' : cached' if done else ''}")
        with ledger.measure() as cost:
            c.retrained = pipeline.retrain(c.arch)
        key = f"retrain {c.arch.key}"
        if not done or ledger.get(key) is None:
            ledger.record(key, steps=pipeline.config.retrain.iterations, measured=not done, **cost)

    # 5. supernet trust ------------------------------------------------------------------------
    pairs = [(c.supernet["fitness"], c.retrained["fitness"]) for c in candidates if c.supernet and c.retrained]
    trust = {
        "n": len(pairs),
        "kendall_tau_b": kendall_tau_b([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else float("nan"),
        "spearman_rho": spearman_rho([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else float("nan"),
    }
    say(f"[benchmark] supernet trust: N = {trust['n']}, Kendall tau-b {trust['kendall_tau_b']:.3f}, "
        f"Spearman rho {trust['spearman_rho']:.3f}")

    # 6. BN recalibration study --------------------------------------------------------------
    bn = _bn_study(pipeline, model, candidates, runs, bn_counts, bn_field, out / "bn_recalibration.json", ledger, say)

    # 7. report ------------------------------------------------------------------------------
    summary = _summary(task, preset, overrides, pipeline, space, specs, runs, candidates, trust, bn, ledger,
                       seeds=seeds, budget_scale=budget_scale, policy_options=policy_options or {},
                       retrain_seeds=retrain_seeds, elapsed=time.perf_counter() - started, command=command)
    img_dir = Path(docs).parent / "img" if docs is not None else out
    _plots(summary, img_dir)
    body = markdown_body(summary, image_prefix="img/" if docs is not None else "")
    title = section_title(task)
    (out / f"search_policies_{task}.md").write_text(f"{title}\n\n{body}\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default) + "\n")
    if docs is not None:
        write_markdown_section(docs, body, title=title)
    say(f"[benchmark] done in {summary['elapsed_s']:.0f} s; results in {out}")
    return summary


def _json_default(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _search(
    pipeline: Any,
    model: Any,
    space: SearchSpace,
    store: Any,
    spec: PolicySpec,
    seed: int,
    folder: Path,
    ledger: CostLedger,
    say: Progress,
) -> dict[str, Any]:
    """Run one policy for one seed through the shared store, or read its finished run."""
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
    calls = [0]
    task = pipeline.task

    def fitness(arch: Architecture) -> dict[str, float]:
        calls[0] += 1
        return task.evaluate(model, [arch], split="search")[0]  # type: ignore[no-any-return]

    known = len(store)
    say(f"[benchmark] {label}, seed {seed}: at most {searcher.max_evaluations} evaluations ({known} in the store)")
    with ledger.measure() as cost:
        result = searcher.run(fitness, store=store, progress=pipeline.progress)
    record = {
        "label": label,
        "searcher": spec.searcher,
        "seed": seed,
        "spec": spec.to_json(),
        "fresh_evaluations": calls[0],
        **cost,
    }
    ledger.record(f"search {spec.searcher} seed {seed}", evaluations=calls[0], measured=True, **cost)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({**record, "result": result.to_json()}))
    tmp.replace(path)
    say(f"[benchmark] {label}, seed {seed}: {result.num_evaluated} evaluations, {calls[0]} new, {cost['wall_s']:.1f} s")
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
    seeds: int,
    retrain_seeds: int,
    top_k: int,
    random_archs: int,
) -> list[Candidate]:
    """Architectures to retrain: each policy's pick for seeds < ``retrain_seeds``, the top-k of
    path-priority (seed 0), and distinct random architectures (a fixed stream of the run seed)."""
    by_arch: dict[Architecture, Candidate] = {}

    def add(arch: Architecture, role: str) -> None:
        by_arch.setdefault(arch, Candidate(arch, [])).roles.append(role)

    for r in runs:
        if r["seed"] < retrain_seeds:
            add(r["result"].best, f"found: {r['label']}, seed {r['seed']}")
    for r in runs:
        if r["searcher"] == "path-priority" and r["seed"] == 0:
            for i, arch in enumerate(r["result"].top_k[:top_k]):
                add(arch, f"top-k: path-priority top-{i + 1}")
    rng = np.random.default_rng(pipeline.config.seed + 104_729)
    drawn: list[Architecture] = []
    tries = 0
    while len(drawn) < min(random_archs, space.size) and tries < 100 * (random_archs + 1):
        tries += 1
        arch = space.sample(rng)
        if arch not in drawn:
            drawn.append(arch)
            add(arch, f"random #{len(drawn)}")
    return list(by_arch.values())


def _bn_study(
    pipeline: Any,
    model: Any,
    candidates: Sequence[Candidate],
    runs: Sequence[dict[str, Any]],
    counts: Sequence[int],
    bn_field: str | None,
    cache_path: Path,
    ledger: CostLedger,
    say: Progress,
) -> dict[str, Any]:
    """Fitness of the first policy's architecture (seed 0) and of the first random architecture
    for each number of BN recalibration batches, evaluated with a task built on a config copy."""
    if not counts:
        return {"skipped": "no BN recalibration batch counts were asked for"}
    field_path = bn_field or find_bn_field(pipeline.config)
    if field_path is None:
        return {"skipped": f"the task config has none of the fields {', '.join(BN_FIELDS)}"}
    try:
        default = int(_get_path(pipeline.config, field_path))
    except AttributeError:
        raise ValueError(f"the task config has no field {field_path!r}") from None
    chosen: list[tuple[str, Architecture]] = []
    first = runs[0]
    chosen.append((f"found by {first['label']}", first["result"].best))
    random = next((c.arch for c in candidates if any(r == "random #1" for r in c.roles)), None)
    if random is not None and random != chosen[0][1]:
        chosen.append(("random #1", random))
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    if cache.get("field") != field_path:
        cache = {"field": field_path, "entries": {}}
    entries: dict[str, Any] = cache["entries"]
    for k in counts:
        todo = [(label, a) for label, a in chosen if f"{a.key}|{k}" not in entries]
        if not todo:
            continue
        say(f"[benchmark] BN recalibration: {field_path}={k} for {len(todo)} architecture(s)")
        with ledger.measure() as cost:
            task = pipeline.task_cls(_with_field(pipeline.config, field_path, k), run_dir=pipeline.run_dir,
                                     device=pipeline.device, progress=False)
            task.prepare_data()
            metrics = task.evaluate(model, [a for _, a in todo], split="search")
        for (_, a), m in zip(todo, metrics, strict=True):
            entries[f"{a.key}|{k}"] = {**m, "wall_s": cost["wall_s"] / len(todo), "cpu_s": cost["cpu_s"] / len(todo)}
        cache_path.write_text(json.dumps(cache, indent=1))
    total_wall = sum(e["wall_s"] for key, e in entries.items() if any(key == f"{a.key}|{k}" for _, a in chosen for k in counts))
    total_cpu = sum(e["cpu_s"] for key, e in entries.items() if any(key == f"{a.key}|{k}" for _, a in chosen for k in counts))
    ledger.record("BN recalibration study", evaluations=len(chosen) * len(counts), measured=True,
                  wall_s=total_wall, cpu_s=total_cpu)
    return {
        "field": field_path,
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


# --------------------------------------------------------------------------- summary
def _summary(
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
    retrain_seeds: int,
    elapsed: float,
    command: str,
) -> dict[str, Any]:
    retrained = {c.arch: c.retrained for c in candidates}
    sample = next((c.retrained for c in candidates if c.retrained), None) or {}
    fitness_name = "PQ" if "pq" in sample and sample.get("pq") == sample.get("fitness") else "fitness"
    extra = [k for k in EXTRA_COLUMNS if k in sample]
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
                        "retrained": retrained.get(r["result"].best) if r["seed"] < retrain_seeds else None,
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
         "supernet": c.supernet, "retrained": c.retrained}
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
        "retrain_seeds": retrain_seeds,
        "fitness_name": fitness_name,
        "extra_metrics": extra,
        "policies": policies,
        "search_fitness": search_fitness,
        "candidates": cand,
        "trust": trust,
        "bn_recalibration": bn,
        "costs": ledger.entries,
        "elapsed_s": elapsed,
        "command": command,
    }


def _is_paper_setting(summary: Mapping[str, Any]) -> bool:
    return summary["budget_scale"] == 1.0 and not summary["policy_options"] and not summary["overrides"]


# --------------------------------------------------------------------------- plots
def _plots(summary: Mapping[str, Any], img_dir: Path) -> None:
    from oneshot.benchmarks.plots import (
        PolicyBar,
        TrustPoint,
        plot_bn_recalibration,
        plot_policy_comparison,
        plot_random_vs_searched,
        plot_supernet_trust,
    )

    name = summary["fitness_name"]
    bars = []
    for p in summary["policies"]:
        sup = [s["supernet"]["fitness"] for s in p["seeds"]]
        ret = [s["retrained"]["fitness"] for s in p["seeds"] if s["retrained"]]
        bars.append(PolicyBar(p["label"], statistics.fmean(s["evaluations"] for s in p["seeds"]),
                              _mean_sd(sup)[0], _mean_sd(ret)[0] if ret else None,
                              _mean_sd(sup)[1] if len(sup) > 1 else None))
    plot_policy_comparison(bars, fitness_name=name, path=img_dir / "policies_table5.png",
                           title=f"Search policies on the {summary['task']} supernet")
    randoms = [c["retrained"]["fitness"] for c in summary["candidates"] if any(r.startswith("random") for r in c["roles"])]
    searched = {p["label"]: p["seeds"][0]["retrained"]["fitness"] for p in summary["policies"] if p["seeds"][0]["retrained"]}
    if randoms or searched:
        plot_random_vs_searched(randoms, searched, fitness_name=name, path=img_dir / "policies_table3.png")
    points = [
        TrustPoint(c["supernet"]["fitness"], c["retrained"]["fitness"], c["kind"])
        for c in summary["candidates"]
        if c["supernet"] and c["retrained"]
    ]
    if points:
        plot_supernet_trust(points, tau=summary["trust"]["kendall_tau_b"], rho=summary["trust"]["spearman_rho"],
                            fitness_name=name, path=img_dir / "policies_trust.png")
    bn = summary["bn_recalibration"]
    if "archs" in bn:
        plot_bn_recalibration(bn["counts"], {a["label"]: a["fitness"] for a in bn["archs"]}, default=bn["default"],
                              fitness_name=name, path=img_dir / "policies_bn_recalibration.png")


# --------------------------------------------------------------------------- markdown
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
            group = f"retraining ({len(entries)} architectures)"
        rows.append((group, evals, steps, sum(e["wall_s"] for e in entries), sum(e["cpu_s"] for e in entries),
                     all(e.get("measured", True) for e in entries)))
    return rows


def markdown_body(summary: Mapping[str, Any], *, image_prefix: str = "") -> str:
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
        summary["command"] or f"oneshot benchmark search-policies --task {summary['task']}",
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
              + "".join(f" {EXTRA_COLUMNS[k]} |" for k in extra))
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
        f"{name} is measured afterwards. Retrained values are for seed"
        + (f"s 0..{summary['retrain_seeds'] - 1}." if summary["retrain_seeds"] > 1 else " 0."),
        "",
    ]
    # Table 3
    cands = summary["candidates"]
    randoms = [c for c in cands if any(r.startswith("random") for r in c["roles"]) and c["retrained"]]
    searched = [(p["label"], p["seeds"][0]["retrained"]) for p in summary["policies"] if p["seeds"][0]["retrained"]]
    lines += [
        "### Table 3 style: random vs searched, retrained",
        "",
        f"| architectures | n | retrained {name} (mean ± sd) | best |" + "".join(f" {EXTRA_COLUMNS[k]} |" for k in extra),
        "|---|---:|---:|---:|" + "---:|" * len(extra),
    ]
    if randoms:
        vals = [c["retrained"]["fitness"] for c in randoms]
        lines.append(f"| random | {len(vals)} | {_pm(vals)} | {_fmt(max(vals))} |"
                     + "".join(f" {_pm([c['retrained'][k] for c in randoms])} |" for k in extra))
    if searched:
        vals = [m["fitness"] for _, m in searched]
        lines.append(f"| searched (one per policy) | {len(vals)} | {_pm(vals)} | {_fmt(max(vals))} |"
                     + "".join(f" {_pm([m[k] for _, m in searched])} |" for k in extra))
        for label, m in searched:
            lines.append(f"| searched: {label} | 1 | {_fmt(m['fitness'])} | |" + "".join(f" {_fmt(m[k])} |" for k in extra))
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
        f"(search split, BN recalibrated) and the retrained {name} (`val`)."
        + (" (– = undefined: one side gives every architecture the same value.)"
           if not (math.isfinite(t["kendall_tau_b"]) and math.isfinite(t["spearman_rho"])) else "")
        + (" With so few architectures a correlation is very uncertain (a tau of ±0.3 is within chance at N = 10)."
           if t["n"] < 20 else ""),
        "",
        f"![supernet trust]({image_prefix}policies_trust.png)",
        "",
    ]
    bn = summary["bn_recalibration"]
    lines += ["### BN recalibration batches", ""]
    if "archs" in bn:
        lines += [
            f"Supernet {name} of fixed architectures for `{bn['field']}` = K (configured: {bn['default']}); "
            "K = 0 keeps the running statistics left by supernet training. Evaluated directly, not through the store.",
            "",
            "| K | " + " | ".join(a["label"] for a in bn["archs"]) + " | eval time per arch (s) |",
            "|---:|" + "---:|" * (len(bn["archs"]) + 1),
        ]
        for i, k in enumerate(bn["counts"]):
            times = [a["wall_s"][i] for a in bn["archs"]]
            lines.append(f"| {k} | " + " | ".join(_fmt(a["fitness"][i]) for a in bn["archs"]) + f" | {_fmt(statistics.fmean(times), 1)} |")
        lines += ["", f"![BN recalibration]({image_prefix}policies_bn_recalibration.png)", ""]
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
        f"![policies]({image_prefix}policies_table5.png)",
        "",
        f"![random vs searched]({image_prefix}policies_table3.png)",
    ]
    return "\n".join(lines)


def _observations(summary: Mapping[str, Any]) -> list[str]:
    """What came out, stated from the numbers, including where the paper's ordering does not hold."""
    name = summary["fitness_name"]
    retrained = {p["searcher"]: p["seeds"][0]["retrained"]["fitness"] for p in summary["policies"] if p["seeds"][0]["retrained"]}
    evals = {p["searcher"]: statistics.fmean(s["evaluations"] for s in p["seeds"]) for p in summary["policies"]}
    labels = {p["searcher"]: p["label"] for p in summary["policies"]}
    randoms = [c["retrained"]["fitness"] for c in summary["candidates"]
               if any(r.startswith("random") for r in c["roles"]) and c["retrained"]]
    lines = ["### What came out", ""]
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


# --------------------------------------------------------------------------- CLI dispatch
def available_task_modes() -> list[str]:
    """Task names usable as ``--task`` for this mode."""
    from oneshot.tasks import available_tasks

    return available_tasks()


def task_mode(name: str) -> Callable[..., dict[str, Any]]:
    """The runner of ``oneshot benchmark search-policies --task NAME`` for a registered task."""
    from oneshot.benchmarks.search_policies import available_modes

    if name not in available_task_modes():
        raise ValueError(
            f"unknown benchmark mode {name!r}; available: {', '.join(available_modes())}, "
            f"or a task: {', '.join(available_task_modes())}"
        )

    def runner(*, table: Any = None, sigmas: Sequence[float] = (), **options: Any) -> dict[str, Any]:
        if table is not None or sigmas:
            raise ValueError(f"--table and --sigma belong to the nas-bench-macro mode, not to task {name!r}")
        return run_task_benchmark(name, **options)

    return runner
