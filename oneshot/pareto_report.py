"""Report files of a multi-objective search: ``pareto.json`` and ``pareto.png``.

:func:`write_pareto` takes the search history (:class:`~oneshot.search.HistoryEntry` s whose
metrics carry the costs, e.g. from :func:`oneshot.cost.with_costs`), the objectives and a
reference point, and writes

* ``pareto.json``: the objectives, the reference point, the hypervolume of the front against it,
  the number of architectures evaluated, and every front architecture with its fitness, metrics
  and costs;
* ``pareto.png``: every evaluated architecture as fitness against each cost present in the
  metrics (``latency_ms``, ``flops``, ``params``), the fitness-vs-cost front of that panel drawn
  as a staircase, the front under the search objectives circled and the ``marked`` ones (e.g. the
  architecture the search returned) starred. ``reference_lines`` adds labelled vertical lines
  (e.g. the cost of a published architecture).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from oneshot.files import atomic_write_json
from oneshot.search.base import HistoryEntry
from oneshot.search.multiobjective import pareto_entries
from oneshot.search.objectives import ObjectiveLike, objective_values, parse_objectives
from oneshot.search.pareto import hypervolume, non_dominated
from oneshot.space import Architecture
from oneshot.viz import _figure, _save

__all__ = ["COST_AXES", "pareto_summary", "plot_pareto", "write_pareto"]

PathLike = str | os.PathLike[str]
COST_AXES = {"latency_ms": "latency (ms)", "flops": "GFLOPs", "params": "parameters (M)"}
_SCALE = {"latency_ms": 1.0, "flops": 1e-9, "params": 1e-6}


def _distinct(history: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    first: dict[Architecture, HistoryEntry] = {}
    for h in history:
        first.setdefault(h.arch, h)
    return list(first.values())


def pareto_summary(
    history: Sequence[HistoryEntry],
    objectives: Sequence[ObjectiveLike],
    reference_point: Sequence[float],
    *,
    marked: Iterable[Architecture] = (),
) -> dict[str, Any]:
    """The content of ``pareto.json`` (see the module docstring)."""
    objs = parse_objectives(objectives)
    if len(reference_point) != len(objs):
        raise ValueError(f"the reference point has {len(reference_point)} values for {len(objs)} objectives")
    front = pareto_entries(history, objs)
    values = [objective_values(h.fitness, h.metrics, objs) for h in front]
    return {
        "objectives": [o.to_json() for o in objs],
        "reference_point": [float(v) for v in reference_point],
        "hypervolume": hypervolume(values, reference_point, [o.direction for o in objs]),
        "num_evaluated": len(_distinct(history)),
        "front": [
            {"key": h.arch.key, "arch": h.arch.to_json(), "fitness": h.fitness, "objective_values": v, "metrics": dict(h.metrics)}
            for h, v in zip(front, values, strict=True)
        ],
        "marked": [a.key for a in marked],
    }


def plot_pareto(
    history: Sequence[HistoryEntry],
    objectives: Sequence[ObjectiveLike],
    *,
    marked: Iterable[Architecture] = (),
    reference_lines: Mapping[str, Mapping[str, float]] | None = None,
    path: PathLike | None = None,
    title: str = "Fitness against cost",
) -> Any:
    """Fitness against every cost axis present in the metrics (see the module docstring)."""
    entries = _distinct(history)
    if not entries:
        raise ValueError("nothing was evaluated")
    axes = [k for k in COST_AXES if all(k in h.metrics for h in entries)]
    if not axes:
        raise ValueError(f"no cost metric ({', '.join(COST_AXES)}) in the evaluations' metrics")
    front_keys = {h.arch for h in pareto_entries(entries, parse_objectives(objectives))}
    marked = set(marked)
    fig = _figure((4.6 * len(axes), 3.8))
    for i, key in enumerate(axes):
        ax = fig.add_subplot(1, len(axes), i + 1)
        xs = [float(h.metrics[key]) * _SCALE[key] for h in entries]
        ys = [h.fitness for h in entries]
        ax.scatter(xs, ys, s=10, alpha=0.45, color="0.45", label=f"evaluated ({len(entries)})")
        idx = non_dominated(list(zip(ys, xs, strict=True)), ["maximize", "minimize"])
        pts = sorted((xs[j], ys[j]) for j in idx)
        if pts:
            ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="C0", lw=1.5,
                    label=f"fitness-{key} front")
        on_front = [j for j, h in enumerate(entries) if h.arch in front_keys]
        ax.scatter([xs[j] for j in on_front], [ys[j] for j in on_front], s=40, facecolor="none",
                   edgecolor="C1", lw=1.3, label="front of the objectives", zorder=3)
        star = [j for j, h in enumerate(entries) if h.arch in marked]
        if star:
            ax.scatter([xs[j] for j in star], [ys[j] for j in star], marker="*", s=180, color="C3",
                       edgecolor="black", zorder=4, label="found")
        for label, value in ((reference_lines or {}).get(key) or {}).items():
            ax.axvline(value * _SCALE[key], color="C2", ls="--", lw=1.2, label=label)
        ax.set_xlabel(COST_AXES[key])
        ax.set_ylabel("fitness")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def write_pareto(
    path_json: PathLike,
    path_png: PathLike | None,
    history: Sequence[HistoryEntry],
    objectives: Sequence[ObjectiveLike],
    reference_point: Sequence[float],
    *,
    marked: Iterable[Architecture] = (),
    reference_lines: Mapping[str, Mapping[str, float]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``pareto.json`` (atomically; ``extra`` merged in, e.g. the cost model's device and the
    constraint's rejection counts) and, when ``path_png`` is given, ``pareto.png``; returns the JSON."""
    marked = list(marked)
    summary = {**pareto_summary(history, objectives, reference_point, marked=marked), **dict(extra or {})}
    atomic_write_json(path_json, summary)
    if path_png is not None:
        plot_pareto(history, objectives, marked=marked, reference_lines=reference_lines, path=path_png)
    return summary
