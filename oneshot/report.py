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

__all__ = ["RetrainResult", "ScoredArchitecture", "SearchReport", "summary_markdown"]


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
        return "\n".join(lines)


@dataclass(frozen=True)
class RetrainResult:
    """A frozen architecture trained from scratch and evaluated on ``val``."""

    arch: Architecture
    metrics: dict[str, Any]
    steps: int

    def to_json(self) -> dict[str, Any]:
        return {**self.metrics, "retrain_steps": self.steps}


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
