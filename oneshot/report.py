"""What the stages of a run return, and the reports rendered from them (JSON and Markdown).

:class:`SearchReport` is the result of the report stage for one searcher (the found architecture
and random baselines evaluated the same way); :class:`RetrainResult` that of retraining one
architecture. :func:`summary_markdown` compares every searcher run so far in one run directory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oneshot.space import Architecture

__all__ = [
    "NOISE_FRACTION",
    "RetrainComparison",
    "RetrainResult",
    "ScoredArchitecture",
    "SearchReport",
    "learning_warnings",
    "noise_tolerance",
    "summary_markdown",
]

#: Default evaluation-noise tolerance: this fraction of the metric's scale (the largest absolute
#: fitness in the report), used when the config states none (``search.noise_tolerance``).
NOISE_FRACTION = 0.02

ADVICE = (
    "What usually helps: train the supernet longer (train.iterations), single-path steps "
    "(train.paths_per_step=1 with train.sampler=uniform), another learning rate (train.lr; "
    "check the loss curve in training_loss.png), and enough BatchNorm recalibration (eval.bn_batches)."
)


@dataclass(frozen=True)
class ScoredArchitecture:
    """An architecture with the metrics it was evaluated to (``metrics["fitness"]`` included)."""

    arch: Architecture
    metrics: dict[str, Any]

    @property
    def fitness(self) -> float:
        return float(self.metrics["fitness"])

    def to_json(self) -> dict[str, Any]:
        return {"architecture": self.arch.to_json(), "metrics": dict(self.metrics)}


@dataclass
class SearchReport:
    """The report stage's result for one searcher.

    Attributes:
        task: task name. searcher: searcher name.
        found: the selected architecture, evaluated on the search split.
        random: random architectures evaluated the same way (the baseline).
        evaluations: distinct architectures the search evaluated; search_seconds: their cost.
        supernet_steps: optimizer steps the supernet was trained for (read from ``supernet.pt``).
        untrained: the found architecture's metrics on a freshly initialised supernet, if known.
        columns: metric keys the task wants shown, in order.
        warnings: signs that the supernet has not learned (see :func:`learning_warnings`).
        retrained: the found and random architectures retrained from scratch, once done.
    """

    task: str
    searcher: str
    found: ScoredArchitecture
    random: list[ScoredArchitecture]
    evaluations: int
    search_seconds: float
    supernet_steps: int | None
    untrained: dict[str, Any] | None = None
    columns: tuple[str, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    retrained: RetrainComparison | None = None

    @property
    def random_median_fitness(self) -> float | None:
        return float(np.median([r.fitness for r in self.random])) if self.random else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task": self.task,
            "searcher": self.searcher,
            "found": self.found.to_json(),
            "random": [r.to_json() for r in self.random],
            "random_median_fitness": self.random_median_fitness,
            "search_cost": {"evaluations": self.evaluations, "seconds": self.search_seconds},
            "supernet_steps": self.supernet_steps,
        }
        if self.untrained is not None:
            out["untrained_supernet"] = dict(self.untrained)
        out["warnings"] = list(self.warnings)
        if self.retrained is not None:
            out["retrained"] = self.retrained.to_json()
        out.update(self.extras)
        return out

    def __getitem__(self, key: str) -> Any:
        """Dictionary-style access to the JSON form (``report["found"]``), as earlier versions returned."""
        return self.to_json()[key]

    def shown_columns(self) -> list[str]:
        """``fitness`` then the task's report columns (or every numeric metric when it names none)."""
        metrics = self.found.metrics
        wanted = list(self.columns) or [k for k in metrics if k != "fitness"]
        return ["fitness"] + [k for k in wanted if k != "fitness" and isinstance(metrics.get(k), (int, float))]

    def to_markdown(self) -> str:
        keys = self.shown_columns()
        rows = [("found", self.found.metrics)]
        if self.untrained is not None:
            rows.append(("found, untrained supernet", self.untrained))
        rows += [(f"random {i}", r.metrics) for i, r in enumerate(self.random)]
        lines = [
            f"# Search report ({self.task}, {self.searcher})",
            "",
            f"Found architecture: `{json.dumps(self.found.arch.to_json())}`",
            "",
            *[f"> **Warning:** {w}\n" for w in self.warnings],
            "| model | " + " | ".join(keys) + " |",
            "|---|" + "---|" * len(keys),
        ]
        lines += [f"| {name} | " + " | ".join(_fmt(m.get(k, "")) for k in keys) + " |" for name, m in rows]
        lines += [
            "",
            f"Median fitness of the random architectures: {_fmt(self.random_median_fitness)}",
            "",
            f"Search cost: {self.evaluations} evaluations, {self.search_seconds:.1f} s of evaluation.",
            "",
        ]
        if self.retrained is not None:
            lines += [self.retrained.to_markdown(), ""]
        return "\n".join(lines)


@dataclass(frozen=True)
class RetrainResult:
    """A frozen architecture trained from scratch and evaluated on ``val``."""

    arch: Architecture
    metrics: dict[str, Any]
    steps: int

    def to_json(self) -> dict[str, Any]:
        return {**self.metrics, "retrain_steps": self.steps}


@dataclass(frozen=True)
class RetrainComparison:
    """The found architecture and random baselines, each retrained from scratch the same way and
    evaluated on ``val``: is the found one better than random after retraining?"""

    found: RetrainResult
    random: list[RetrainResult]

    @property
    def random_median_fitness(self) -> float | None:
        return float(np.median([float(r.metrics["fitness"]) for r in self.random])) if self.random else None

    @property
    def found_rank(self) -> int:
        """1 + how many retrained random baselines beat the found architecture."""
        found = float(self.found.metrics["fitness"])
        return 1 + sum(float(r.metrics["fitness"]) > found for r in self.random)

    def to_json(self) -> dict[str, Any]:
        return {
            "found": {"architecture": self.found.arch.to_json(), **self.found.to_json()},
            "random": [{"architecture": r.arch.to_json(), **r.to_json()} for r in self.random],
            "random_median_fitness": self.random_median_fitness,
            "found_rank": self.found_rank,
        }

    def to_markdown(self) -> str:
        keys = ["fitness"] + [k for k, v in self.found.metrics.items() if k != "fitness" and isinstance(v, (int, float))]
        rows = [("found", self.found)] + [(f"random {i}", r) for i, r in enumerate(self.random)]
        lines = [
            "## After retraining from scratch (val split)",
            "",
            "| model | architecture | steps | " + " | ".join(keys) + " |",
            "|---|---|---|" + "---|" * len(keys),
        ]
        lines += [
            f"| {name} | `{r.arch.key}` | {r.steps} | " + " | ".join(_fmt(r.metrics.get(k, "")) for k in keys) + " |"
            for name, r in rows
        ]
        if self.random:
            lines += [
                "",
                f"Median fitness of the {len(self.random)} retrained random architectures: "
                f"{_fmt(self.random_median_fitness)}; the found architecture ranks {self.found_rank} of {len(self.random) + 1}.",
            ]
        return "\n".join(lines)


def noise_tolerance(fitnesses: Sequence[float], stated: float | None = None) -> float:
    """The evaluation's noise, in fitness units: ``stated`` when given (``search.noise_tolerance``),
    else :data:`NOISE_FRACTION` of the metric's scale (the largest absolute fitness; 1 if all are 0)."""
    if stated is not None:
        return float(stated)
    finite = [abs(f) for f in fitnesses if math.isfinite(f)]
    scale = max(finite, default=0.0) or 1.0
    return NOISE_FRACTION * scale


def learning_warnings(
    found: float, random: Sequence[float], untrained: float | None, tolerance: float
) -> list[str]:
    """Signs that the supernet has not learned, each a sentence ending with what usually helps.

    Flags: every architecture (found and random) scores the same; the random baselines span no
    more than ``tolerance`` (at least two needed); the found architecture scores no more than
    ``tolerance`` above itself on an untrained supernet.
    """
    out = []
    tolerance = tolerance * (1 + 1e-9)  # a spread "of 0.6" computed as 0.6000000000000014 is within 0.6
    scores = [found, *random]
    spread = max(scores) - min(scores)
    if len(scores) > 1 and spread <= 1e-9 * max(1.0, max(abs(f) for f in scores)):
        out.append(
            f"every architecture scores the same ({_fmt(float(found))}): the supernet's output does not "
            "depend on the architecture (or the metric is saturated), so the found architecture is arbitrary."
        )
    elif len(random) >= 2 and max(random) - min(random) <= tolerance:
        out.append(
            f"the {len(random)} random architectures span only {max(random) - min(random):.3g} in fitness, within "
            f"the evaluation's noise tolerance {tolerance:.3g}: the supernet does not tell architectures apart, "
            "so the found architecture is not shown to be better than random."
        )
    if untrained is not None and found - untrained <= tolerance:
        out.append(
            f"the found architecture scores {_fmt(float(found))} on the trained supernet and {_fmt(float(untrained))} "
            f"on an untrained one (noise tolerance {tolerance:.3g}): training has not improved it."
        )
    return [f"{w} {ADVICE}" for w in out]


def summary_markdown(reports: Sequence[Mapping[str, Any]]) -> str:
    """A table comparing the searchers run in one run directory, from their ``report.json``."""
    lines = [
        "# Searchers run in this directory",
        "",
        "| searcher | evaluations | found fitness | random median | found − random median | found architecture |",
        "|---|---|---|---|---|---|",
    ]
    for r in reports:
        found = float(r["found"]["metrics"]["fitness"])
        median = r.get("random_median_fitness")
        gap = found - median if median is not None else None
        lines.append(
            f"| [{r['searcher']}](search/{r['searcher']}/report.md) | {r['search_cost']['evaluations']} | {_fmt(found)} "
            f"| {_fmt(median)} | {_fmt(gap)} | `{json.dumps(r['found']['architecture'])}` |"
        )
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "undefined" if math.isnan(value) else f"{value:.2f}"
    return "" if value is None else str(value)
