"""Plots of the search-policy benchmark on a task's supernet (paper Tables 3 and 5, supernet trust).

Every function builds a matplotlib :class:`~matplotlib.figure.Figure` on the Agg canvas (no
pyplot, no global backend change), returns it, and writes it to ``path`` when one is given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from oneshot.viz import _figure, _save  # one Agg-canvas figure helper for all plots

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "PolicyBar",
    "TrustPoint",
    "plot_bn_recalibration",
    "plot_policy_comparison",
    "plot_random_vs_searched",
    "plot_supernet_trust",
]

PathLike = str | os.PathLike[str]

KIND_COLOURS = {"found": "tab:red", "top-k": "tab:orange", "random": "tab:blue", "spread": "tab:purple"}


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class PolicyBar:
    """One policy of the Table 5 plot: evaluations spent, supernet and retrained fitness of its pick."""

    label: str
    evaluations: float
    supernet: float | None
    retrained: float | None
    supernet_sd: float | None = None
    retrained_low: float | None = None  #: bootstrap interval of the retrained mean over search seeds
    retrained_high: float | None = None
    retrained_seeds: tuple[float, ...] = ()  #: one retrained value per search seed


def _ci_err(rows: Sequence[PolicyBar]) -> np.ndarray | None:
    """Asymmetric error bars (2 x n) of the retrained intervals, or None if no row has one."""
    low = [r.retrained - r.retrained_low if _finite(r.retrained) and _finite(r.retrained_low) else 0.0 for r in rows]
    high = [r.retrained_high - r.retrained if _finite(r.retrained) and _finite(r.retrained_high) else 0.0 for r in rows]
    return np.array([low, high]) if any(low) or any(high) else None


def plot_policy_comparison(
    rows: Sequence[PolicyBar],
    *,
    fitness_name: str = "fitness",
    path: PathLike | None = None,
    title: str = "Search policies on one supernet",
) -> Figure:
    """Left: supernet-inherited and retrained fitness of each policy's architecture (bars: means over
    search seeds, with the standard deviation on the supernet bar and the bootstrap 95% interval on
    the retrained bar when given; dots: each search seed). Right: retrained fitness against the
    number of models evaluated (log scale, with the same intervals), the trade-off of Table 5."""
    if not rows:
        raise ValueError("no policies to plot")
    fig = _figure((11.0, 4.2))
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    x = np.arange(len(rows))
    width = 0.38
    sup = [r.supernet if _finite(r.supernet) else np.nan for r in rows]
    err = [r.supernet_sd if _finite(r.supernet_sd) else 0.0 for r in rows]
    ret = [r.retrained if _finite(r.retrained) else np.nan for r in rows]
    left.bar(x - width / 2, sup, width, yerr=err if any(err) else None, capsize=3, label="supernet (inherited weights)",
             color="tab:gray")
    ci = _ci_err(rows)
    left.bar(x + width / 2, ret, width, yerr=ci, capsize=3, label="retrained from scratch (95% interval)",
             color="tab:green")
    for i, r in enumerate(rows):
        if r.retrained_seeds:
            left.scatter(np.full(len(r.retrained_seeds), x[i] + width / 2), r.retrained_seeds, s=10, color="k",
                         zorder=3)
    for i, r in enumerate(rows):
        top = np.nanmax([sup[i], ret[i], 0.0])
        left.annotate(f"{r.evaluations:.0f} evals", (x[i], top), ha="center", va="bottom", fontsize=8,
                      xytext=(0, 3), textcoords="offset points")
    left.set_xticks(x, [r.label for r in rows], rotation=15, ha="right", fontsize=8)
    left.set_ylabel(fitness_name)
    left.legend(fontsize=8, loc="lower right")
    left.set_title(title, fontsize=10)
    for i, r in enumerate(rows):
        if _finite(r.retrained) and r.evaluations > 0:
            err = ci[:, i : i + 1] if ci is not None else None
            right.errorbar([r.evaluations], [r.retrained], yerr=err, fmt="o", capsize=3, color=f"C{i % 10}")
            right.annotate(r.label, (r.evaluations, r.retrained), fontsize=7, xytext=(4, 3), textcoords="offset points")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    right.set_xscale("log")
    ticks = sorted({r.evaluations for r in rows if r.evaluations > 0})
    if ticks:
        right.set_xticks(ticks)
        right.set_xlim(ticks[0] / 1.5, ticks[-1] * 1.5)
    right.xaxis.set_major_formatter(ScalarFormatter())
    right.xaxis.set_minor_formatter(NullFormatter())
    right.set_xlabel("models evaluated on the supernet (log)")
    right.set_ylabel(f"retrained {fitness_name}")
    right.set_title("Cost against result", fontsize=10)
    right.grid(alpha=0.3)
    return _save(fig, path)


def plot_random_vs_searched(
    random_values: Sequence[float],
    searched: Mapping[str, float],
    *,
    fitness_name: str = "fitness",
    path: PathLike | None = None,
    title: str = "Retrained from scratch: random vs searched architectures",
) -> Figure:
    """Strip plot of the paper's Table 3 comparison: every random architecture's retrained fitness
    (with their mean) beside each policy's searched architecture."""
    if not random_values and not searched:
        raise ValueError("nothing to plot")
    fig = _figure((7.0, 4.0))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # horizontal jitter only
    if random_values:
        xs = rng.uniform(-0.12, 0.12, len(random_values))
        ax.scatter(xs, random_values, color=KIND_COLOURS["random"], alpha=0.7, label="random architectures")
        mean = float(np.mean(random_values))
        ax.hlines(mean, -0.25, 0.25, colors=KIND_COLOURS["random"], linestyles="--", label=f"random mean {mean:.2f}")
    for i, (label, value) in enumerate(searched.items()):
        ax.scatter([1.0], [value], color=f"C{(i + 3) % 10}", marker="D", s=45, label=label)
    ax.set_xticks([0, 1], ["random", "searched"])
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylabel(f"retrained {fitness_name}")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


@dataclass(frozen=True)
class TrustPoint:
    """One architecture of the supernet-trust study."""

    supernet: float
    retrained: float
    kind: str  # "found", "top-k" or "random"
    label: str = ""


def plot_supernet_trust(
    points: Sequence[TrustPoint],
    *,
    tau: float,
    rho: float,
    tau_ci: Mapping[str, Any] | None = None,
    rho_ci: Mapping[str, Any] | None = None,
    fitness_name: str = "fitness",
    path: PathLike | None = None,
    title: str = "Can the supernet be trusted?",
) -> Figure:
    """Scatter of supernet-inherited fitness (after BN recalibration) against retrained fitness,
    coloured by how the architecture was chosen, with Kendall's tau-b and Spearman's rho (and their
    bootstrap 95% intervals, ``{"low": .., "high": ..}``, when given)."""
    if not points:
        raise ValueError("no architectures to plot")
    fig = _figure((6.0, 5.0))
    ax = fig.add_subplot()
    for kind in dict.fromkeys(p.kind for p in points):
        sel = [p for p in points if p.kind == kind]
        ax.scatter([p.supernet for p in sel], [p.retrained for p in sel], label=f"{kind} ({len(sel)})",
                   color=KIND_COLOURS.get(kind), s=40, alpha=0.8)
        for p in sel:
            if p.label:
                ax.annotate(p.label, (p.supernet, p.retrained), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel(f"supernet {fitness_name} (inherited weights, BN recalibrated)")
    ax.set_ylabel(f"retrained {fitness_name}")
    def shown(v: float) -> str:
        return f"{v:.2f}" if math.isfinite(v) else "undefined"

    def bounds(ci: Mapping[str, Any] | None) -> str:
        if not ci or ci.get("low") is None or ci.get("high") is None:
            return ""
        return f" [{ci['low']:.2f}, {ci['high']:.2f}]"

    ax.set_title(f"{title} N = {len(points)}\nKendall tau-b = {shown(tau)}{bounds(tau_ci)}, "
                 f"Spearman rho = {shown(rho)}{bounds(rho_ci)}" + ("\n(bootstrap 95% intervals)" if tau_ci else ""),
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_bn_recalibration(
    counts: Sequence[int],
    series: Mapping[str, Sequence[float]],
    *,
    default: int | None = None,
    fitness_name: str = "fitness",
    path: PathLike | None = None,
    title: str = "Supernet fitness against BN recalibration batches",
) -> Figure:
    """Fitness of fixed architectures against the number of BN recalibration batches (0 = the
    running statistics left by supernet training), one line per architecture; the configured
    default is marked."""
    if not series:
        raise ValueError("nothing to plot")
    fig = _figure((6.5, 4.0))
    ax = fig.add_subplot()
    for label, values in series.items():
        if len(values) != len(counts):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(counts)} counts")
        ax.plot(list(counts), list(values), marker="o", label=label)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks(list(counts), [str(c) for c in counts])
    if default is not None:
        ax.axvline(default, color="gray", linestyle=":", label=f"configured default ({default})")
    ax.set_xlabel("BN recalibration batches")
    ax.set_ylabel(f"supernet {fitness_name}")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)
