"""Search objectives: which metric of an evaluation to optimise, and in which direction.

An objective is written as a string or a mapping:

* ``"fitness"``, ``"pq"``: maximised, except the cost metrics (:data:`COST_METRICS`:
  ``flops``, ``params``, ``latency_ms``, ``latency_ms_batch``) which are minimised;
* ``"+name"`` / ``"-name"``: explicitly maximised / minimised;
* ``{"name": "latency_ms", "direction": "minimize"}``.

The value of ``"fitness"`` is the evaluation's fitness; any other name is read from its metrics
(what the fitness returned besides ``"fitness"``, or the cost metrics added by
:func:`oneshot.cost.with_costs`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["COST_METRICS", "Objective", "ObjectiveLike", "objective_values", "parse_objectives"]

COST_METRICS = frozenset({"flops", "params", "latency_ms", "latency_ms_batch"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class Objective:
    """One objective: a metric name and ``"maximize"`` or ``"minimize"``."""

    name: str
    direction: str = "maximize"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"objective name must be a metric name like 'fitness' or 'latency_ms', got {self.name!r}")
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"objective {self.name!r}: direction must be 'maximize' or 'minimize', got {self.direction!r}")

    @classmethod
    def parse(cls, value: ObjectiveLike) -> Objective:
        """An objective from ``"name"``, ``"+name"``, ``"-name"``, a mapping or an Objective."""
        if isinstance(value, Objective):
            return value
        if isinstance(value, Mapping):
            extra = sorted(set(value) - {"name", "direction"})
            if extra or "name" not in value:
                raise ValueError(f"an objective mapping needs 'name' (and optionally 'direction'), got keys {sorted(value)}")
            name = value["name"]
            direction = value.get("direction") or _default_direction(str(name))
            return cls(name, direction)
        if isinstance(value, str):
            text = value.strip()
            if text[:1] in "+-" and text:
                return cls(text[1:].strip(), "maximize" if text[0] == "+" else "minimize")
            return cls(text, _default_direction(text))
        raise ValueError(f"an objective must be a name or a mapping, got {type(value).__name__}")

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "direction": self.direction}

    def __str__(self) -> str:
        return ("+" if self.direction == "maximize" else "-") + self.name


ObjectiveLike = str | Mapping[str, Any] | Objective


def _default_direction(name: str) -> str:
    return "minimize" if name in COST_METRICS else "maximize"


def parse_objectives(values: Sequence[ObjectiveLike] | ObjectiveLike) -> tuple[Objective, ...]:
    """Objectives from config values; ``ValueError`` for an empty list or a repeated name."""
    if isinstance(values, (str, Mapping, Objective)):
        values = [values]
    out = tuple(Objective.parse(v) for v in values)
    if not out:
        raise ValueError("at least one objective is needed")
    names = [o.name for o in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"objective {dupes[0]!r} is listed twice")
    return out


def objective_values(fitness: float, metrics: Mapping[str, Any], objectives: Sequence[Objective]) -> list[float]:
    """The value of every objective for one evaluation (``"fitness"`` or a metric).

    Raises ``ValueError`` naming the missing metric and the available ones.
    """
    out = []
    for obj in objectives:
        if obj.name == "fitness":
            value: Any = fitness
        elif obj.name in metrics:
            value = metrics[obj.name]
        else:
            raise ValueError(
                f"objective {obj.name!r} is not among the evaluation's metrics "
                f"(available: fitness, {', '.join(sorted(metrics)) or 'none'}); "
                "cost objectives need oneshot.cost.with_costs around the fitness"
            )
        out.append(as_number(value, f"objective {obj.name!r}"))
    return out


def as_number(value: Any, what: str) -> float:
    """``value`` as a float; ``ValueError`` naming ``what`` for a bool, a non-number or NaN."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {type(value).__name__}") from None
    if math.isnan(number):
        raise ValueError(f"{what} is NaN")
    return number
