"""The policies of the task benchmark and what they cost: budgets, shared-store accounting, a cost
ledger, and the candidates retrained.

The paper's budgets (Auto-Panoptic, Section 4: path-priority 5 cycles, evolution 50 x 20, random
300) scaled by ``--budget-scale`` or replaced by explicit searcher options (``--policy-set``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oneshot.files import atomic_write_json
from oneshot.search import Searcher, SearchResult, build_searcher
from oneshot.space import Architecture, SearchSpace

__all__ = [
    "DEFAULT_SEARCHERS",
    "PAPER_SEARCHERS",
    "Candidate",
    "CostLedger",
    "PolicySpec",
    "default_policies",
    "describe_searcher",
    "share_accounting",
]

PAPER_SEARCHERS = ("path-priority", "evolution", "random", "path-priority-verify")
#: The policies run by default: the paper's, and the surrogate and model-select searchers at
#: path-priority's budget.
DEFAULT_SEARCHERS = (*PAPER_SEARCHERS, "surrogate", "model-select")


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
    a fair window of ``E``), evolution 50 x 20 (1000), random 300, and path-priority-verify,
    surrogate and model-select at path-priority's budget. Scaled budgets keep at least one fair window for the path-priority
    family and two evaluations for evolution. A searcher named in ``options`` is built with
    those constructor options instead (e.g. ``{"evolution": {"population": 10, "generations": 3}}``).
    """
    if budget_scale <= 0:
        raise ValueError(f"--budget-scale must be > 0, got {budget_scale}")
    options = options or {}
    names = list(names) if names else list(DEFAULT_SEARCHERS)
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
        atomic_write_json(self.path, self.entries)
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


@dataclass
class Candidate:
    """An architecture that is retrained: why it was chosen (``roles``) and its results."""

    arch: Architecture
    roles: list[str]
    supernet: dict[str, Any] | None = None
    retrained: dict[str, Any] | None = None  #: mean over retraining seeds (``fitness_by_seed`` each)
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)  #: retraining seed -> its metrics

    @property
    def kind(self) -> str:
        """``found`` if any policy returned it, else ``top-k``, else ``random``, else ``spread``."""
        for kind in ("found", "top-k", "random", "spread"):
            if any(r.startswith(kind) for r in self.roles):
                return kind
        return self.roles[0]
