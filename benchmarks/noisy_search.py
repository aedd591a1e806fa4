"""Every registered searcher with few noisy evaluations, on NAS-Bench-Macro and synthetic tables.

For each table, budget, noise sigma and seed, every searcher is built with
``build_searcher(name, space, budget=n, seed=seed)`` and run on the same noisy table (common random
numbers: the noise is a deterministic function of (seed, architecture)). A run is scored by the
*rank percentile* of the architecture it returns: the share (%) of the table strictly better than
it under the true, noise-free accuracy (0 = the best). Reported: the median over seeds with a
bootstrap 95 % interval, and the share of runs that reach the top 1 %. Each run also records the
rank percentile of the best architecture it *evaluated* (``best_evaluated``): where a searcher
evaluated a top-1 % architecture but returned another, its selection failed, not its exploration.

Synthetic tables come from :mod:`oneshot.search.synthetic_tables` (additive + pairwise
interactions + dead choices), cell tables (``--cells``) from :mod:`oneshot.search.cell_tables`
(a NAS-Bench-201-like cell whose cut edges disconnect paths). The reported ones use
``--table-seed`` (default 0), while the searchers' defaults were chosen on tables of seed 101,
cell tables of seeds 1-3 and NAS-Bench-Macro with search seeds 1000+, never reported.

Run from the repository root, e.g.::

    OMP_NUM_THREADS=1 python benchmarks/noisy_search.py --macro PATH/nas-bench-macro_cifar10.json \
        --seeds 100 --out runs/benchmarks/noisy-search

Writes ``records.jsonl`` (one line per run, appended as runs finish), ``summary.json`` and
``results.md`` (a markdown table) into ``--out``. Runs split over processes (by searcher or by
``--first-seed``) are summarised together with ``--from-records A/records.jsonl --from-records
B/records.jsonl --out C``; ``--only-seeds N`` keeps the runs of seeds ``--first-seed`` ..
``--first-seed + N - 1`` (the first 100 of a 400-seed run, beside searchers run on 100);
``--seed-block 100`` adds the median of each 100 consecutive seeds, to show how far a median over
100 seeds moves between sets of seeds. ``--variant
LABEL=NAME:key=value,...`` adds a searcher run with other options than its defaults, recorded
under ``LABEL`` (e.g. ``--variant surrogate-small=surrogate:init_fraction=0.2``); ``--paired
A:B`` adds, per table, how often A returned a better, equally good or worse architecture than B
on the same seeds (e.g. a variant against its default). ``--from-records FILE:NAME=LABEL`` takes a
searcher's runs of a file under another label (its runs before a change of its defaults, beside
its runs after). ``--relabel-choices SEED`` permutes each layer's choice indices of every table
(:class:`RelabelledTable`): a choice index then names different ops at different layers, a check of
searchers that share effects across layers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from threadpoolctl import threadpool_limits

from benchmarks.tabular import NASBenchMacro
from oneshot.search import (
    BudgetSearcher,
    Searcher,
    available_searchers,
    build_searcher,
    get_searcher_class,
)
from oneshot.search.cell_tables import cell_table
from oneshot.search.synthetic_tables import synthetic_table
from oneshot.space import Architecture, SearchSpace

DEFAULT_SEARCHERS = ("model-select", "saturating-additive", "surrogate", "path-priority-verify", "path-priority", "evolution", "random", "tpe")


class Table(Protocol):
    space: SearchSpace

    def fitness(self, sigma: float = 0.0, *, seed: int = 0) -> Callable[[Architecture], Any]: ...

    def rank_percentile(self, arch: Architecture) -> float: ...

    def accuracy(self, arch: Architecture) -> float: ...


def bootstrap_median_ci(values: Sequence[float], *, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95 % interval of the median."""
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, len(x), size=(reps, len(x)))], axis=1)
    return float(np.quantile(medians, 0.025)), float(np.quantile(medians, 0.975))


def percentile_stats(values: Sequence[float]) -> dict[str, Any]:
    """Median rank percentile of runs, its bootstrap 95 % interval and the share (%) in the top 1 %."""
    lo, hi = bootstrap_median_ci(values)
    return {
        "median": statistics.median(values),
        "ci95": [lo, hi],
        "top1_share": 100.0 * sum(v < 1.0 for v in values) / len(values),
    }


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _searcher_pair(text: str) -> tuple[str, str]:
    a, sep, b = text.partition(":")
    if not (sep and a and b) or ":" in b:
        raise argparse.ArgumentTypeError(f"expected A:B, two searcher labels, got {text!r}")
    return a, b


def add_table_arguments(
    parser: argparse.ArgumentParser, *, shapes: str, table_seed: int, first_seed: int, cells: str | None = None
) -> None:
    """The options that choose the tables and the search seeds (``--macro``, ``--shapes``,
    ``--table-seed``, ``--seeds``, ``--first-seed``; ``--cells`` too when ``cells`` is given) and
    ``--blas-threads`` (pass it to :func:`limit_blas_threads`), shared by the table benchmarks."""
    parser.add_argument("--macro", help="NAS-Bench-Macro JSON file (or its folder); omitted: synthetic tables only")
    parser.add_argument("--shapes", default=shapes, help="synthetic table shapes, comma-separated ('' for none)")
    if cells is not None:
        parser.add_argument("--cells", default=cells,
                            help="cell table shapes NODESxOPS (oneshot.search.cell_tables), comma-separated")
    parser.add_argument("--table-seed", type=int, default=table_seed)
    parser.add_argument("--seeds", type=int, default=100, help="search seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--first-seed", type=int, default=first_seed)
    parser.add_argument("--blas-threads", type=_positive_int, default=1,
                        help="threads of numpy's linear algebra in this process (default 1; see limit_blas_threads)")


def limit_blas_threads(threads: int) -> None:
    """Cap the BLAS threads of this process (numpy's linear algebra) at ``threads``.

    The table benchmarks fit small models (a few hundred points at most), where more threads gain
    nothing alone; with several benchmark processes side by side on the same cores, each spinning
    its own threads, the runs were five to ten times slower (two processes on two cores, 300
    evaluations on NAS-Bench-Macro: 12 runs each in 81 s with two threads, 17 s with one).
    """
    threadpool_limits(limits=threads, user_api="blas")


class RelabelledTable:
    """A table whose choice indices are relabelled at every layer by a random permutation.

    Everything a searcher cannot know is kept (the accuracies, their ranks, the noise of an
    architecture), but a choice index no longer names the same op at every layer: a check of any
    searcher that assumes it does (the shared effects of ``model-select``). Layers keep their
    number of choices.
    """

    def __init__(self, table: Table, seed: int) -> None:
        self.table = table
        self.space = table.space
        rng = np.random.default_rng([int(seed), 4111])
        self.permutations = [rng.permutation(k) for k in table.space.num_choices]

    def original(self, arch: Architecture) -> Architecture:
        """The architecture of the underlying table that ``arch`` stands for."""
        return self.space.validate([int(p[c]) for p, c in zip(self.permutations, arch.choices, strict=True)])

    def fitness(self, sigma: float = 0.0, *, seed: int = 0) -> Callable[[Architecture], Any]:
        inner = self.table.fitness(sigma, seed=seed)
        return lambda arch: inner(self.original(arch))

    def rank_percentile(self, arch: Architecture) -> float:
        return self.table.rank_percentile(self.original(arch))

    def accuracy(self, arch: Architecture) -> float:
        return self.table.accuracy(self.original(arch))


def relabel_tables(tables: dict[str, Table], seed: int | None) -> dict[str, Table]:
    """Every table relabelled by :class:`RelabelledTable` (``seed`` ``None``: unchanged)."""
    if seed is None:
        return tables
    return {f"{name} relabelled (seed {seed})": RelabelledTable(table, seed) for name, table in tables.items()}


def load_tables(macro: str | None, shapes: Sequence[str], table_seed: int, cells: Sequence[str] = ()) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    if macro:
        tables["NAS-Bench-Macro (8x3)"] = NASBenchMacro.load(macro)
    for shape in shapes:
        tables[f"synthetic {shape} (seed {table_seed})"] = synthetic_table(shape, seed=table_seed)
    for shape in cells:
        try:
            tables[f"cell {shape} (seed {table_seed})"] = cell_table(shape, seed=table_seed)
        except ValueError as err:
            raise SystemExit(f"error: --cells: {err}") from None
    return tables


Variant = tuple[str, str, dict[str, Any]]  # (label in the records, registered name, options)


def parse_variant(spec: str) -> Variant:
    """``LABEL=NAME:key=value,key=value`` (values read as YAML scalars: ``false``, ``0.2``)."""
    label, sep, rest = spec.partition("=")
    name, _, opts = rest.partition(":")
    if not sep or not label or not name:
        raise SystemExit(f"error: --variant {spec!r}: expected LABEL=NAME:key=value,key=value")
    options: dict[str, Any] = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SystemExit(f"error: --variant {spec!r}: option {item!r} is not key=value")
        options[key.strip()] = yaml.safe_load(value)
    return label, name, options


def build_variant(name: str, space: SearchSpace, budget: int, seed: int, options: dict[str, Any]) -> Searcher:
    """``build_searcher(name, space, budget=budget, seed=seed)``, with ``options`` changed."""
    if not options:
        return build_searcher(name, space, budget=budget, seed=seed)
    cls = get_searcher_class(name)
    if not issubclass(cls, BudgetSearcher):
        raise ValueError(f"searcher {name!r} has no budget option to combine with other options")
    return cls(space, seed=seed, **{cls.budget_arg: budget, **options})  # the constructor checks the options


def run(
    tables: dict[str, Table],
    searchers: Sequence[Variant],
    budgets: Sequence[int],
    sigmas: Sequence[float],
    seeds: Sequence[int],
    records_path: Path,
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    with records_path.open("w") as out:
        for table_name, table in tables.items():
            for budget in budgets:
                for sigma in sigmas:
                    start = time.perf_counter()
                    for seed in seeds:
                        fitness = table.fitness(sigma, seed=seed)
                        for label, name, options in searchers:
                            t0 = time.perf_counter()
                            result = build_variant(name, table.space, budget, seed, options).run(fitness)
                            rec = {
                                "table": table_name,
                                "searcher": label,
                                "budget": budget,
                                "sigma": sigma,
                                "seed": seed,
                                "percentile": table.rank_percentile(result.best),
                                "evaluations": result.num_evaluated,
                                "seconds": time.perf_counter() - t0,
                                "best": result.best.key,
                                "best_evaluated": min(table.rank_percentile(e.arch) for e in result.history),
                            }
                            if "branch" in result.extras:  # model-select: which model it chose
                                rec["branch"] = result.extras["branch"]
                            records.append(rec)
                            out.write(json.dumps(rec) + "\n")
                        out.flush()
                    print(
                        f"{table_name} budget={budget} sigma={sigma:g}: {time.perf_counter() - start:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    return records


def summarize(records: Sequence[dict[str, Any]], *, seed_block: int | None = None) -> list[dict[str, Any]]:
    """One row per (table, budget, sigma, searcher). With ``seed_block``, a row whose runs fill at
    least two whole blocks of that many consecutive seeds (``seed // seed_block``) also has the
    median of each full block (``block_medians``, by block): how far a median over that many
    seeds moves from one set of seeds to the next."""
    groups: dict[tuple[str, int, float, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["table"], r["budget"], r["sigma"], r["searcher"]), []).append(r)
    out = []
    for (table, budget, sigma, searcher), rs in groups.items():
        stats = percentile_stats([r["percentile"] for r in rs])
        out.append(
            {
                "table": table,
                "budget": budget,
                "sigma": sigma,
                "searcher": searcher,
                "runs": len(rs),
                "median_percentile": stats["median"],
                "ci95": stats["ci95"],
                "top1_share": stats["top1_share"],
                "mean_evaluations": statistics.fmean(r["evaluations"] for r in rs),
                "mean_seconds": statistics.fmean(r["seconds"] for r in rs),
            }
        )
        if all("best_evaluated" in r for r in rs):  # records of older runs lack it
            out[-1]["evaluated_top1_share"] = 100.0 * sum(r["best_evaluated"] < 1.0 for r in rs) / len(rs)
        branches = Counter(r["branch"] for r in rs if "branch" in r)
        if branches:
            out[-1]["branches"] = dict(sorted(branches.items()))
        if seed_block is not None:
            blocks: dict[int, list[float]] = {}
            for r in rs:
                blocks.setdefault(r["seed"] // seed_block, []).append(r["percentile"])
            full = {b: statistics.median(v) for b, v in sorted(blocks.items()) if len(v) == seed_block}
            if len(full) >= 2:
                out[-1]["block_medians"] = {f"{b * seed_block}-{(b + 1) * seed_block - 1}": m for b, m in full.items()}
    return out


def paired(records: Sequence[dict[str, Any]], a: str, b: str) -> list[dict[str, Any]]:
    """Searcher ``a`` against ``b`` on the seeds both ran, per (table, budget, sigma): the medians
    over those seeds, the runs where ``a`` returned a better / equally good / worse architecture
    (rank percentile), and each one's runs in the top 1 %."""
    runs: dict[tuple[str, int, float], dict[str, dict[int, float]]] = {}
    for r in records:
        if r["searcher"] in (a, b):
            by = runs.setdefault((r["table"], r["budget"], r["sigma"]), {a: {}, b: {}})
            by[r["searcher"]][r["seed"]] = r["percentile"]
    out = []
    for (table, budget, sigma), by in sorted(runs.items()):
        seeds = sorted(set(by[a]) & set(by[b]))
        if not seeds:
            continue
        pa, pb = [by[a][s] for s in seeds], [by[b][s] for s in seeds]
        diffs = [x - y for x, y in zip(pa, pb, strict=True)]
        out.append({
            "table": table, "budget": budget, "sigma": sigma, "a": a, "b": b, "runs": len(seeds),
            "median_a": statistics.median(pa), "median_b": statistics.median(pb),
            "better": sum(d < 0 for d in diffs), "equal": sum(d == 0 for d in diffs), "worse": sum(d > 0 for d in diffs),
            "top1_a": sum(x < 1.0 for x in pa), "top1_b": sum(x < 1.0 for x in pb),
        })
    return out


def paired_tables(records: Sequence[dict[str, Any]], pairs: Sequence[tuple[str, ...]]) -> list[dict[str, Any]]:
    """The rows of :func:`paired` for every ``(a, b)`` of ``pairs``, in that order."""
    return [row for a, b in pairs for row in paired(records, a, b)]


def paired_markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| table | evals | sigma | a | b | seeds | median a | median b | a better / equal / worse | top 1 % a / b |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['table']} | {r['budget']} | {r['sigma']:g} | {r['a']} | {r['b']} | {r['runs']} | "
            f"{r['median_a']:.2f} | {r['median_b']:.2f} | {r['better']} / {r['equal']} / {r['worse']} | "
            f"{r['top1_a']} / {r['top1_b']} |"
        )
    return "\n".join(lines)


def markdown(summary: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| table | evals | sigma | searcher | median % better (95 % CI) | runs in top 1 % "
        "| runs that evaluated a top-1 % arch | evals used | s / run |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    ordered = sorted(summary, key=lambda s: (s["table"], s["budget"], s["sigma"], s["median_percentile"]))
    for s in ordered:
        lo, hi = s["ci95"]
        evaluated = f"{s['evaluated_top1_share']:.0f} %" if "evaluated_top1_share" in s else "-"
        lines.append(
            f"| {s['table']} | {s['budget']} | {s['sigma']:g} | {s['searcher']} | "
            f"{s['median_percentile']:.2f} ({lo:.2f} - {hi:.2f}) | {s['top1_share']:.0f} % | {evaluated} | "
            f"{s['mean_evaluations']:.0f} | {s['mean_seconds']:.2f} |"
        )
    for field, title, value in (("branches", "Branches chosen (runs):", "{} {}"),
                                ("block_medians", "Median of each block of seeds (% better):", "{} {:.2f}")):
        rows = [s for s in ordered if s.get(field)]
        if rows:
            lines += ["", title, ""]
            for s in rows:
                items = ", ".join(value.format(k, v) for k, v in s[field].items())
                lines.append(f"- {s['table']}, {s['budget']} evals, sigma {s['sigma']:g}, {s['searcher']}: {items}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_table_arguments(parser, shapes="6x5,8x3,12x4", table_seed=0, first_seed=0, cells="")
    parser.add_argument("--searchers", default=",".join(DEFAULT_SEARCHERS),
                        help="comma-separated; names not registered are skipped (e.g. tpe)")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=NAME:key=value,...",
                        help="also run searcher NAME with these options, recorded as LABEL "
                             "(e.g. surrogate-small=surrogate:init_fraction=0.2); repeatable")
    parser.add_argument("--budgets", default="60,300")
    parser.add_argument("--sigmas", default="0,1")
    parser.add_argument("--out", default="runs/benchmarks/noisy-search")
    parser.add_argument("--seed-block", type=_positive_int, default=None, metavar="N",
                        help="also report the median of each block of N consecutive seeds (seed // N), "
                             "where a row has at least two full blocks")
    parser.add_argument("--from-records", action="append", default=[], metavar="FILE[:NAMES]",
                        help="summarise these records.jsonl files together (runs split over searchers "
                             "or seeds) instead of running; FILE:name,name keeps only those searchers' "
                             "runs of FILE, FILE:name=label records them as label; repeatable")
    parser.add_argument("--only-seeds", type=_positive_int, default=None, metavar="N",
                        help="with --from-records: summarise only the runs of seeds first-seed .. "
                             "first-seed + N - 1 (e.g. the first 100 of a 400-seed run, beside "
                             "searchers run on 100)")
    parser.add_argument("--relabel-choices", type=int, default=None, metavar="SEED",
                        help="relabel each layer's choices of every table by a random permutation of this "
                             "seed (a choice index then names different ops at different layers)")
    parser.add_argument("--paired", action="append", default=[], type=_searcher_pair, metavar="A:B",
                        help="also compare searcher A with B on the seeds both ran (runs better / "
                             "equal / worse); repeatable")
    args = parser.parse_args(argv)
    if args.only_seeds is not None and not args.from_records:
        parser.error("--only-seeds keeps runs of --from-records; to run fewer seeds use --seeds")
    limit_blas_threads(args.blas_threads)
    pairs: list[tuple[str, str]] = args.paired
    command = "python " + " ".join(["benchmarks/noisy_search.py", *(argv if argv is not None else sys.argv[1:])])
    if args.from_records:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        records = load_records(args.from_records)
        if args.only_seeds is not None:
            keep = range(args.first_seed, args.first_seed + args.only_seeds)
            records = [r for r in records if r["seed"] in keep]
            if not records:
                raise SystemExit(f"error: --only-seeds: no run of seeds {keep.start}..{keep.stop - 1} in the records")
        summary = summarize(records, seed_block=args.seed_block)
        write_results(out, command, 0.0, summary, markdown(summary), paired_tables(records, pairs))
        return

    registered = set(available_searchers())
    searchers: list[Variant] = [(s, s, {}) for s in args.searchers.split(",") if s in registered]
    skipped = [s for s in args.searchers.split(",") if s and s not in registered]
    if skipped:
        print(f"not registered, skipped: {', '.join(skipped)}", file=sys.stderr)
    shapes = [s for s in args.shapes.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tables = relabel_tables(load_tables(args.macro, shapes, args.table_seed, [c for c in args.cells.split(",") if c]),
                            args.relabel_choices)
    budgets = [int(b) for b in args.budgets.split(",")]
    sigmas = [float(s) for s in args.sigmas.split(",")]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for spec in args.variant:
        label, name, options = parse_variant(spec)
        try:  # a bad name or option fails here, in one line, not after hours of runs
            build_variant(name, next(iter(tables.values())).space, budgets[0], 0, options)
        except (ValueError, StopIteration) as err:
            raise SystemExit(f"error: --variant {spec!r}: {err}") from None
        searchers.append((label, name, options))
    start = time.perf_counter()
    records = run(tables, searchers, budgets, sigmas, seeds, out / "records.jsonl")
    summary = summarize(records, seed_block=args.seed_block)
    write_results(out, command, time.perf_counter() - start, summary, markdown(summary), paired_tables(records, pairs))


def parse_records_spec(spec: str) -> tuple[Path, dict[str, str] | None]:
    """``FILE`` or ``FILE:NAME[,NAME...]`` (only those searchers' runs of that file); ``NAME=LABEL``
    also records that searcher's runs as ``LABEL`` (e.g. a searcher's runs before a change of its
    defaults, beside its runs after). Returns the path and ``{name: label}`` (``None``: all runs)."""
    path, _, names = spec.rpartition(":")
    if path and names and "/" not in names and not Path(spec).is_file():
        kept: dict[str, str] = {}
        for item in filter(None, names.split(",")):
            name, _, label = item.partition("=")
            kept[name] = label or name
        return Path(path), kept
    return Path(spec), None


def load_records(paths: Sequence[Path | str]) -> list[dict[str, Any]]:
    """The runs of several ``records.jsonl`` files (``FILE:NAME,...`` keeps only those searchers'
    runs of a file: e.g. a searcher rerun after a change, merged with the others' earlier runs;
    ``FILE:NAME=LABEL`` relabels them); a run (table, searcher, budget, sigma, seed) found in two
    files must have the same result (runs are deterministic), and is kept once."""
    runs: dict[tuple[Any, ...], dict[str, Any]] = {}
    for spec in paths:
        path, only = parse_records_spec(str(spec))
        if not path.is_file():
            raise SystemExit(f"error: records file not found: {path}")
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if only is not None:
                    if rec["searcher"] not in only:
                        continue
                    rec["searcher"] = only[rec["searcher"]]
                key = (rec["table"], rec["searcher"], rec["budget"], rec["sigma"], rec["seed"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise SystemExit(f"error: {path}:{number} is not a noisy-search record ({err})") from None
            if key in runs and runs[key]["best"] != rec["best"]:
                raise SystemExit(f"error: {path}:{number}: run {key} differs from an earlier file's")
            runs.setdefault(key, rec)
    return list(runs.values())


def write_results(
    out: Path,
    command: str,
    seconds: float,
    summary: Sequence[dict[str, Any]],
    table: str,
    paired_rows: Sequence[dict[str, Any]] = (),
) -> None:
    """``summary.json`` (command, seconds, summary, paired rows) and ``results.md`` (command,
    markdown tables) into ``out``; the tables are printed too."""
    body: dict[str, Any] = {"command": command, "seconds": seconds, "summary": list(summary)}
    if paired_rows:
        body["paired"] = list(paired_rows)
        table += "\n\nPaired on the same seeds:\n\n" + paired_markdown(paired_rows)
    (out / "summary.json").write_text(json.dumps(body, indent=1) + "\n")
    (out / "results.md").write_text(f"Command: `{command}`\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
