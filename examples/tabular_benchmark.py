"""Search NAS-Bench-Macro with every registered searcher, from the table's file path.

NAS-Bench-Macro (Su et al., CVPR 2021) lists the CIFAR-10 accuracy of all 3^8 = 6,561
architectures of an 8-layer, 3-choice space, so a search costs table look-ups instead of
trainings, and the architecture a searcher returns can be scored by its *true* accuracy and its
rank in the table. The table is never bundled: pass its path.

Every searcher in :func:`oneshot.search.available_searchers` (the built-in ones and any a
third party registered) runs at the same budget of evaluations (``Searcher.with_budget``);
``--sigma`` adds deterministic Gaussian noise to the fitness, as a noisy supernet would.

Run::

    python examples/tabular_benchmark.py                         # table at ../shared/data/nas_bench_macro/
    python examples/tabular_benchmark.py --table PATH --budget 60 --sigma 1 --seed 3
    python examples/tabular_benchmark.py --smoke                 # tiny budget (what the tests run)

For the full multi-seed comparison behind docs/benchmarks.md, use
``oneshot benchmark search-policies --table PATH``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from oneshot.benchmarks import load_nas_bench_macro
from oneshot.benchmarks.tabular import NASBenchMacro
from oneshot.errors import OneshotError
from oneshot.search import available_searchers, build_searcher
from oneshot.space import Architecture

DEFAULT_TABLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nas_bench_macro" / "nas-bench-macro_cifar10.json"


@dataclass
class SearcherOutcome:
    """What one searcher found, scored by the table."""

    searcher: str
    evaluations: int
    architecture: str  # per-layer choice names
    key: str  # the table key, one digit per layer
    seen_fitness: float | None  # the (noisy) fitness the searcher saw for it; None if never evaluated
    true_accuracy: float
    rank_percentile: float  # % of the table strictly better; 0 = the best
    seconds: float


def describe(bench: NASBenchMacro, arch: Architecture) -> str:
    """``identity,mbv2_k3_e3,...`` grouped by stage, e.g. ``stage1=... stage2=...``."""
    space = bench.space
    short = {"identity": "id", "mbv2_k3_e3": "k3e3", "mbv2_k5_e6": "k5e6"}
    return " ".join(
        f"{component}={','.join(short.get(n, n) for n in (space.layers[i].choice_names[arch[i]] for i in layers))}"
        for component, layers in space.components.items()
    )


def run_searchers(
    bench: NASBenchMacro, *, budget: int, sigma: float, seed: int, searchers: Sequence[str] | None = None
) -> list[SearcherOutcome]:
    """Run each searcher (default: every registered one) once at ``budget`` evaluations."""
    fitness = bench.fitness(sigma, seed=seed)
    outcomes = []
    for name in searchers or available_searchers():
        searcher = build_searcher(name, bench.space, budget=budget, seed=seed)
        start = time.perf_counter()
        result = searcher.run(fitness)
        seconds = time.perf_counter() - start
        outcomes.append(
            SearcherOutcome(
                searcher=name,
                evaluations=result.num_evaluated,
                architecture=describe(bench, result.best),
                key=bench.key(result.best),
                seen_fitness=result.best_fitness,
                true_accuracy=bench.accuracy(result.best),
                rank_percentile=bench.rank_percentile(result.best),
                seconds=seconds,
            )
        )
    return outcomes


def print_table(bench: NASBenchMacro, outcomes: Sequence[SearcherOutcome], *, budget: int, sigma: float, seed: int) -> None:
    print(f"\nNAS-Bench-Macro ({len(bench)} architectures, best {bench.best_accuracy:.3f} %), "
          f"budget {budget} evaluations, noise sigma {sigma:g}, seed {seed}\n")
    print("| searcher | evaluations | found architecture | key | fitness seen | true accuracy (%) | rank percentile (% better) |")
    print("|---|---:|---|---|---:|---:|---:|")
    for o in outcomes:
        seen = "not evaluated" if o.seen_fitness is None else f"{o.seen_fitness:.3f}"
        print(f"| {o.searcher} | {o.evaluations} | {o.architecture} | {o.key} | {seen} | "
              f"{o.true_accuracy:.3f} | {o.rank_percentile:.2f} |")
    print("\n(path-priority returns the per-layer argmax of its scores, which it never evaluates: 'not evaluated')")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE,
                        help="nas-bench-macro_cifar10.json or its folder [../shared/data/nas_bench_macro/ beside the repo]")
    parser.add_argument("--budget", type=int, default=60, help="evaluations per searcher [60]")
    parser.add_argument("--sigma", type=float, default=0.0, help="fitness noise, accuracy points [0]")
    parser.add_argument("--seed", type=int, default=0, help="searcher and noise seed [0]")
    parser.add_argument("--searcher", action="append", default=None,
                        help=f"only this searcher (repeatable) [all: {', '.join(available_searchers())}]")
    parser.add_argument("--smoke", action="store_true", help="budget 12: checks that every searcher runs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[SearcherOutcome]:
    """Run the example; returns one outcome per searcher. A missing table exits with status 2."""
    args = parse_args(argv)
    budget = 12 if args.smoke else args.budget
    try:
        bench = load_nas_bench_macro(args.table)
        outcomes = run_searchers(bench, budget=budget, sigma=args.sigma, seed=args.seed, searchers=args.searcher)
    except (OneshotError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print_table(bench, outcomes, budget=budget, sigma=args.sigma, seed=args.seed)
    return outcomes


if __name__ == "__main__":
    main()
