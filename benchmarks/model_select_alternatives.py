"""Ideas tried for ``model-select``'s open step and dropped, rerun side by side on the same seeds.

The figures of "Tried since and dropped" in docs/benchmark-runs/noisy-search.md come from this
script. For each table and search seed (60 evaluations, noise ``--sigma``) it writes one record
with the rank percentile (% of the table strictly better) of what each variant returns:

* ``reference``: ``model-select``, ``saturating-additive`` and ``surrogate``, as registered.
* ``surrogate-first``: ``surrogate`` alone up to 36 evaluations, then the cross-validated error
  ratio (saturating / GP) on everything it measured (``r36``); below 1.0 the rest goes to fair
  windows and the saturating model's argmax (``fair36``: that continuation in every run).
* ``top-third``: on model-select's 45-evaluation fair design, the ratio on the whole design
  (``cv_all``) and on its top third by measured value only (``cv_top``).
* ``last-test``: model-select; on its saturating branches the ratio on every evaluation, and above
  1.0 the GP's best posterior mean over the space instead of its pick.
* ``residual-gp``: model-select; on its noisy saturating branch the argmax over the space of the
  saturating model plus a GP on its residuals (``residual-gp``: the surrogate's kernel grid,
  ``residual-gp-pairs``: pairwise kernels only).
* ``duel``: model-select with 3 evaluations of the GP's best new architectures after the probes;
  the surrogate takes the rest when their mean beats the probes' by more than ``margin`` standard
  deviations of all measurements (``duel-never``: the duel is measured, never acted on).
* ``early-test``: model-select with its first test at 18 evaluations, thresholds 1.5, 2, 2.5, 3.
* ``hedged``: model-select whose surrogate branch, when the model test that chose it had a ratio
  under 2.5 and its GP estimated the noise at more than 0.3 times the spread of the design's
  measurements, draws every second batch as a fair window of the design (the last 8 evaluations
  excepted): on NAS-Bench-Macro the surrogate branch loses for want of a balanced sample of the
  whole table, and a noisy design is where the test's evidence of interactions is weakest.
* ``no-quick``: ``model-select`` as registered and without its quick test at 18 evaluations
  (``quick_check=None``: the tests at 30 and 45 only, the default before the quick test).
* ``no-clip``: ``model-select`` and ``surrogate`` as registered and with ``clip_outliers=None``
  (failed measurements fitted as measured), to show what clipping them changes.

The variants built on ``model-select`` run it as registered, so with pair-balanced windows since
that became its default design; the documented figures were measured before, with plain fair
windows, which ``surrogate-first`` and ``top-third`` still draw (``--variants`` ``reference``
with ``model-select.design=fair`` is not an option here: use ``benchmarks.noisy_search --variant``).

The last four need a space small enough to enumerate (NAS-Bench-Macro, 8 x 3). Example::

    OMP_NUM_THREADS=1 python -m benchmarks.model_select_alternatives --macro PATH/nas-bench-macro_cifar10.json \\
        --shapes 8x3 --table-seed 104 --first-seed 1000 --seeds 100 --out runs/ms-alternatives-104

Writes ``records.jsonl`` (appended as runs finish; a rerun skips the records already there) and
prints the median and the share of runs in the top 1 % of every variant per table, with the runs
where it returned a better / equal / worse architecture than ``model-select`` on the same seed
(``hedged-runs``: how many runs hedged).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.noisy_search import Table, add_table_arguments, limit_blas_threads, load_tables
from oneshot.sampling import FairSampler
from oneshot.search import (
    ModelSelectSearcher,
    SurrogateSearcher,
    build_searcher,
    get_searcher_class,
)
from oneshot.search.base import Evaluation, HistoryEntry
from oneshot.search.match_kernel import MatchKernelGP
from oneshot.search.model_select import cross_validated_error_ratio
from oneshot.search.path_priority import ranked_combinations
from oneshot.search.saturating import SaturatingAdditiveModel
from oneshot.space import Architecture, SearchSpace

BUDGET = 60
VARIANTS = ("reference", "surrogate-first", "top-third", "last-test", "residual-gp", "duel", "early-test", "hedged", "no-quick", "no-clip")
ENUMERABLE = ("top-third", "last-test", "residual-gp", "duel")


def _xy(evaluated: dict[Architecture, float]) -> tuple[np.ndarray, np.ndarray]:
    archs = list(evaluated)
    return np.array([a.choices for a in archs], dtype=np.int64), np.array([evaluated[a] for a in archs])


def _fits(num_choices: tuple[int, ...]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    return (
        lambda x, y: SaturatingAdditiveModel(num_choices).fit(x, y).predict,
        lambda x, y: MatchKernelGP(num_choices).fit(x, y).averaged_mean,
    )


def _grid(space: SearchSpace) -> np.ndarray:
    if space.size > 20000:
        raise SystemExit(f"error: these variants enumerate the space; {space.size} architectures is too many")
    grids = np.meshgrid(*[np.arange(k) for k in space.num_choices], indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def _argmax(space: SearchSpace, grid: np.ndarray, values: np.ndarray) -> Architecture:
    return space.validate([int(c) for c in grid[int(np.argmax(values))]])


def _fill_fair(space: SearchSpace, seed: int, evaluated: dict[Architecture, float], size: int, fitness: Callable[[Architecture], float]) -> None:
    """Add new architectures of fair windows (seeded ``seed``) to ``evaluated`` up to ``size``."""
    sampler = FairSampler(space, seed=seed)
    while len(evaluated) < size:
        for arch in sampler.next_window():
            if arch not in evaluated and len(evaluated) < size:
                evaluated[arch] = fitness(arch)


def _measured(history: Sequence[HistoryEntry]) -> dict[Architecture, float]:
    return {h.arch: h.fitness for h in history}


def _saturating_argmax(space: SearchSpace, evaluated: dict[Architecture, float]) -> Architecture:
    model = SaturatingAdditiveModel(space.num_choices).fit(*_xy(evaluated))
    return space.validate(list(next(iter(ranked_combinations([e.tolist() for e in model.effects])))))


def surrogate_first(table: Table, fitness: Callable[[Architecture], float], seed: int, check: int = 36) -> dict[str, Any]:
    """``surrogate`` alone, the ratio at ``check`` evaluations and the saturating continuation."""
    space = table.space
    searcher = SurrogateSearcher(space, budget=BUDGET, seed=seed)
    out: dict[str, Any] = {}
    while batch := searcher.ask():
        searcher.tell([(a, fitness(a)) for a in batch])
        evaluated = _measured(searcher.history)
        if "r36" not in out and len(evaluated) >= check:
            out["r36"] = cross_validated_error_ratio(*_xy(evaluated), *_fits(space.num_choices))
            _fill_fair(space, seed + 7777, evaluated, BUDGET - 1, fitness)
            out["fair36"] = table.rank_percentile(_saturating_argmax(space, evaluated))
    out["surrogate"] = table.rank_percentile(searcher.result().best)
    out["surrogate-first"] = out["fair36"] if out["r36"] < 1.0 else out["surrogate"]
    return out


def top_third(table: Table, fitness: Callable[[Architecture], float], seed: int, size: int = 45) -> dict[str, Any]:
    """Cross-validated errors on model-select's fair design, whole and on its top third."""
    evaluated: dict[Architecture, float] = {}
    _fill_fair(table.space, seed, evaluated, size, fitness)
    x, y = _xy(evaluated)
    fit_s, fit_g = _fits(table.space.num_choices)
    fold = np.arange(len(y)) % 10
    pred_s, pred_g = np.zeros(len(y)), np.zeros(len(y))
    for f in range(10):
        train, test = fold != f, fold == f
        pred_s[test], pred_g[test] = fit_s(x[train], y[train])(x[test]), fit_g(x[train], y[train])(x[test])
    err_s, err_g = (pred_s - y) ** 2, (pred_g - y) ** 2
    top = y >= np.quantile(y, 0.67)
    return {"cv_all": float(err_s.sum() / err_g.sum()), "cv_top": float(err_s[top].sum() / err_g[top].sum())}


class DuelSearcher(ModelSelectSearcher):
    """``model-select`` with a duel of the GP's best new architectures against the probes."""

    def __init__(self, *args: Any, duel: int = 3, margin: float = 0.5, **kwargs: Any) -> None:
        self.duel_size, self.margin, self.gap, self._duel = duel, margin, None, []
        super().__init__(*args, **kwargs)

    def _after_probes(self) -> None:
        super()._after_probes()
        if self._phase == "fair" and self.duel_size > 0 and self._probes:
            self._phase = "duel"  # type: ignore[assignment]

    def _ask(self) -> list[Architecture]:
        while True:
            if self._phase == "duel":
                batch = self._duel_step()
                if batch:
                    return batch
            batch = super()._ask()
            if batch or self._phase != "duel":  # the base class stops at a phase it does not know
                return batch

    def _duel_step(self) -> list[Architecture]:
        """The duel's batch, or (once it is measured) the decision it leads to."""
        if not self._duel:
            grid = _grid(self.space)
            gp = MatchKernelGP(self.space.num_choices).fit(*_xy(self._evaluated))
            keep = max(0, min(self.duel_size, self.budget - len(self._evaluated) - 1))
            for i in np.argsort(-gp.averaged_mean(grid), kind="stable"):
                arch = self.space.validate([int(c) for c in grid[i]])
                if len(self._duel) < keep and arch not in self._evaluated:
                    self._duel.append(arch)
            if self._duel:
                return list(self._duel)
            self._phase = "fair"
            return []
        y = np.array(list(self._evaluated.values()))
        gap = np.mean([self._evaluated[a] for a in self._duel]) - np.mean([self._evaluated[a] for a in self._probes])
        self.gap = float(gap / (y.std() or 1.0))
        if self.gap > self.margin and len(self._evaluated) < self.budget:
            self._start_surrogate()
            assert self._inner is not None
            self._inner._evaluated.update(self._evaluated)  # all of it counts, none is asked again
        else:
            self._phase = "fair"
        return []


class HedgedSearcher(ModelSelectSearcher):
    """``model-select`` whose surrogate branch interleaves fair windows when the evidence is weak."""

    def __init__(self, *args: Any, ratio: float = 2.5, noise: float = 0.3, every: int = 2, reserve: int = 8, **kwargs: Any) -> None:
        self.hedge_ratio, self.hedge_noise, self.hedge_every, self.hedge_reserve = ratio, noise, every, reserve
        self.hedged, self._batches, self._window_pending = False, 0, False
        super().__init__(*args, **kwargs)

    def _start_surrogate(self) -> None:
        super()._start_surrogate()
        archs = list(self._evaluated)  # the design of the test that chose the surrogate
        y = self._values(archs)
        if len(y) >= 4 and float(y.std()) > 0.0 and self._ratios[-1] < self.hedge_ratio:
            x = np.array([a.choices for a in archs], dtype=np.int64)
            noise_to_spread = MatchKernelGP(self.space.num_choices).fit(x, y).noise_std / float(y.std())
            self.hedged = noise_to_spread > self.hedge_noise

    def _surrogate_ask(self) -> list[Architecture]:
        self._batches += 1
        remaining = self.budget - len(self._evaluated)
        if self.hedged and self._batches % self.hedge_every == 0 and remaining > self.hedge_reserve:
            window = self._next_window(limit=remaining - self.hedge_reserve)
            if window:
                self._window_pending = True
                return window
        return super()._surrogate_ask()

    def _tell(self, results: list[tuple[Architecture, float]]) -> None:
        if self._window_pending:  # a fair window the surrogate did not ask for: it is told directly
            self._window_pending = False
            for arch, fitness in results:
                self._evaluated.setdefault(arch, fitness)
            assert self._inner is not None
            self._inner._tell(results)
            return
        super()._tell(results)


def _model_select_variants(table: Table, sigma: float, seed: int, variants: set[str]) -> dict[str, Any]:
    space, out = table.space, {}
    noisy = table.fitness(sigma, seed=seed)
    searcher = ModelSelectSearcher(space, budget=BUDGET, seed=seed)
    result = searcher.run(noisy)
    out["model-select"] = pick = table.rank_percentile(result.best)
    if "reference" in variants:
        out["saturating-additive"] = table.rank_percentile(build_searcher("saturating-additive", space, budget=BUDGET, seed=seed).run(noisy).best)
    branch = result.extras["branch"]
    grid = _grid(space) if variants & set(ENUMERABLE) else None
    if "last-test" in variants:
        out["last-test"] = pick
        if branch.startswith("saturating"):
            x, y = _xy(_measured(result.history))
            ratio = cross_validated_error_ratio(x, y, *_fits(space.num_choices))
            if ratio > 1.0:
                out["last-test"] = table.rank_percentile(_argmax(space, grid, MatchKernelGP(space.num_choices).fit(x, y).averaged_mean(grid)))
    if "residual-gp" in variants:
        out["residual-gp"] = out["residual-gp-pairs"] = pick
        if branch == "saturating-noisy":
            evaluated = _measured(result.history)
            if result.history[-1].arch == result.best:
                evaluated.pop(result.best)  # decided before the last evaluation
            x, y = _xy(evaluated)
            sat = SaturatingAdditiveModel(space.num_choices).fit(x, y)
            residuals = y - sat.predict(x)
            for key, gp in (("residual-gp", MatchKernelGP(space.num_choices)),
                            ("residual-gp-pairs", MatchKernelGP(space.num_choices, pair_grid=(0.3, 0.6), local_grid=(0.0,)))):
                gp.fit(x, residuals)
                out[key] = table.rank_percentile(_argmax(space, grid, sat.predict(grid) + gp.averaged_mean(grid)))
    if "duel" in variants:
        for key, margin in (("duel-never", 1e9), ("duel-0.25", 0.25), ("duel-0.5", 0.5)):
            out[key] = table.rank_percentile(DuelSearcher(space, budget=BUDGET, seed=seed, margin=margin).run(noisy).best)
    if "hedged" in variants:
        hedged = HedgedSearcher(space, budget=BUDGET, seed=seed)
        out["hedged"] = table.rank_percentile(hedged.run(noisy).best)
        out["hedged-runs"] = float(hedged.hedged)
    if "early-test" in variants:
        for ratio in (1.5, 2.0, 2.5, 3.0):
            found = ModelSelectSearcher(space, budget=BUDGET, seed=seed, first_check=18, early_ratio=ratio).run(noisy).best
            out[f"early-test-{ratio:g}"] = table.rank_percentile(found)
    return out


def run_one(table: Table, sigma: float, seed: int, variants: set[str]) -> dict[str, Any]:
    noisy = table.fitness(sigma, seed=seed)

    def fitness(arch: Architecture) -> float:
        return Evaluation.from_value(noisy(arch)).fitness

    out: dict[str, Any] = {}
    if variants & {"reference", "last-test", "residual-gp", "duel", "early-test", "hedged"}:
        out.update(_model_select_variants(table, sigma, seed, variants))
    if variants & {"reference", "surrogate-first"}:
        out.update(surrogate_first(table, fitness, seed))
    if "top-third" in variants:
        out.update(top_third(table, fitness, seed))
    # the registered searcher beside itself with one option turned off, on the same noisy table
    switched_off = {"no-quick": ({"quick_check": None}, ("model-select",)),
                    "no-clip": ({"clip_outliers": None}, ("model-select", "surrogate"))}
    for variant, (option, names) in switched_off.items():
        if variant not in variants:
            continue
        for name in names:
            cls = get_searcher_class(name)
            if name not in out:
                out[name] = table.rank_percentile(cls(table.space, budget=BUDGET, seed=seed).run(noisy).best)
            out[f"{name}-{variant}"] = table.rank_percentile(cls(table.space, budget=BUDGET, seed=seed, **option).run(noisy).best)
    return out


def summarise(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for name in dict.fromkeys(r["table"] for r in records):
        rows = [r for r in records if r["table"] == name]
        lines.append(f"{name}: {len(rows)} seeds")
        for key in sorted({k for r in rows for k in r["results"]}):
            values = [r["results"][key] for r in rows if key in r["results"]]
            if key.startswith(("cv_", "r36")):
                below = 100.0 * sum(v < 1.0 for v in values) / len(values)
                lines.append(f"  {key:22s} median {statistics.median(values):.2f}, below 1 in {below:.0f} % of runs")
            elif key.endswith("-runs"):
                lines.append(f"  {key:22s} {sum(values):.0f} of {len(values)}")
            else:
                share = 100.0 * sum(v <= 1.0 for v in values) / len(values)
                line = f"  {key:22s} median {statistics.median(values):.2f} %, {share:.0f} % of runs in the top 1 %"
                paired = [(r["results"][key], r["results"]["model-select"]) for r in rows if key in r["results"] and "model-select" in r["results"]]
                if key != "model-select" and paired:
                    better, worse = sum(a < b for a, b in paired), sum(a > b for a, b in paired)
                    line += f"; against model-select {better} better / {len(paired) - better - worse} equal / {worse} worse"
                lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_table_arguments(parser, shapes="8x3", table_seed=101, first_seed=1000, cells="")
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    limit_blas_threads(args.blas_threads)
    variants = {v for v in args.variants.split(",") if v}
    if unknown := variants - set(VARIANTS):
        raise SystemExit(f"error: unknown variant(s) {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    tables = load_tables(args.macro, [s for s in args.shapes.split(",") if s], args.table_seed, [c for c in args.cells.split(",") if c])
    if variants & set(ENUMERABLE):
        for table in tables.values():
            _grid(table.space)  # fails before any work on a space too large to enumerate
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "records.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    done = {(r["table"], r["seed"]) for r in records}
    with path.open("a") as fh:
        for name, table in tables.items():
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                if (name, seed) in done:
                    continue
                record = {"table": name, "sigma": args.sigma, "seed": seed, "results": run_one(table, args.sigma, seed, variants)}
                fh.write(json.dumps(record) + "\n")
                fh.flush()
                records.append(record)
    wanted = {(name, seed) for name in tables for seed in range(args.first_seed, args.first_seed + args.seeds)}
    print("\n".join(summarise([r for r in records if (r["table"], r["seed"]) in wanted])))


if __name__ == "__main__":
    main()
