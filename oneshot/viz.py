"""Plots: per-layer path scores (paper Fig. 2a), explored models (Fig. 2b), search curves, training loss.

Every function builds a matplotlib :class:`~matplotlib.figure.Figure` on the Agg canvas (no
pyplot, no global backend change), returns it, and writes it to ``path`` when one is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from oneshot.search.base import SearchResult
    from oneshot.space import SearchSpace

__all__ = ["plot_best_so_far", "plot_explored_models", "plot_picture_grid", "plot_score_heatmap", "plot_training_loss"]

PathLike = str | os.PathLike[str]


def _figure(size: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: PathLike | None) -> Figure:
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


def plot_score_heatmap(
    scores: SearchResult | Sequence[Sequence[float]],
    space: SearchSpace,
    *,
    path: PathLike | None = None,
    title: str = "Path-priority scores per layer",
    cell_names: bool | None = None,
) -> Figure:
    """Heatmap of accumulated path scores: layers on x grouped by component, choices on y.

    Args:
        scores: a path-priority :class:`SearchResult` (its ``score_table``) or the table itself,
            one row per layer in space order (layers may have different numbers of choices;
            missing cells are blank).
        space: the search space, for component groups and choice names.
        path: where to save the figure (format from the suffix), if given.
        cell_names: write each layer's own candidate name in its cells (default: when the space
            has at most 60 layers).

    Columns are grouped by component (components in the order of their first layer), whatever the
    layer order: a component whose layers are interleaved with another's (the decoder and fusion
    layers of a U-Net) still gets one contiguous block. Tick labels are the layers' indices in the
    space (the position in ``arch.key``). The chosen (argmax) choice of every layer is outlined.
    """
    table = cast("Sequence[Sequence[float]] | None", getattr(scores, "score_table", scores))
    if table is None:
        raise ValueError("this search result has no score table (only path-priority searches have one)")
    if len(table) != space.num_layers:
        raise ValueError(f"score table has {len(table)} layers, the space has {space.num_layers}")
    for layer, row in enumerate(table):
        if len(row) != space.num_choices[layer]:
            raise ValueError(f"layer {layer}: {len(row)} scores for {space.num_choices[layer]} choices")
    order = [i for idx in space.components.values() for i in idx]  # column -> layer index
    width = max(space.num_choices)
    grid = np.full((width, space.num_layers), np.nan)
    for column, layer in enumerate(order):
        grid[: len(table[layer]), column] = table[layer]

    fig = _figure((max(7.0, 0.42 * space.num_layers + 2.5), 1.4 + 0.5 * width))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis", origin="lower")
    fig.colorbar(image, ax=ax, label="accumulated score")
    for column, layer in enumerate(order):
        ax.add_patch(_rectangle(column - 0.5, int(np.argmax(table[layer])) - 0.5))
    column = 0
    for name, idx in space.components.items():
        ax.axvline(column - 0.5, color="white", lw=1.5)
        ax.text(column + (len(idx) - 1) / 2, width - 0.45, name, ha="center", va="bottom", fontsize=9)
        column += len(idx)
    if cell_names if cell_names is not None else space.num_layers <= 60:
        for column, layer in enumerate(order):
            for c, choice in enumerate(space.layers[layer].choice_names):
                ax.text(column, c, choice, ha="center", va="center", fontsize=6, color="white", rotation=90)
    ax.set_xticks(range(space.num_layers))
    ax.set_xticklabels([str(i) for i in order], fontsize=7)
    ax.set_yticks(range(width))
    ax.set_yticklabels(_choice_labels(space, width), fontsize=8)
    ax.set_xlabel("layer index in the space (grouped by component)")
    ax.set_ylabel("choice")
    ax.set_title(title, pad=16)
    return _save(fig, path)


def _rectangle(x: float, y: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), 1, 1, fill=False, edgecolor="red", lw=1.2)


def _choice_labels(space: SearchSpace, width: int) -> list[str]:
    """Choice names when all layers with that many choices agree, else indices (the cells then
    carry each layer's own names)."""
    labels = []
    for c in range(width):
        names = {layer.choice_names[c] for layer in space.layers if c < layer.num_choices}
        labels.append(f"{c}: {names.pop()}" if len(names) == 1 else str(c))
    return labels


def plot_explored_models(
    results: Mapping[str, SearchResult],
    *,
    path: PathLike | None = None,
    value: Callable[[Any], float] | None = None,
    ylabel: str = "fitness",
    title: str = "Models explored by each searcher",
) -> Figure:
    """Fitness of every explored model in evaluation order, one series per searcher.

    Args:
        results: searcher label -> result.
        value: optional ``history entry -> number`` to plot instead of the fitness (e.g. a
            metric such as the true accuracy of a tabular benchmark).
        path: where to save the figure, if given.

    The final choice of each searcher is marked with a star when it was evaluated.
    """
    fig = _figure((7.5, 4.0))
    ax = fig.add_subplot()
    get = value or (lambda h: h.fitness)
    every = [get(h) for r in results.values() for h in r.history]
    for i, (label, result) in enumerate(results.items()):
        ys = [get(h) for h in result.history]
        color = f"C{i}"
        ax.scatter(range(1, len(ys) + 1), ys, s=10, alpha=0.6, color=color, label=f"{label} ({result.num_evaluated})")
        for n, h in enumerate(result.history, start=1):
            if h.arch == result.best:
                ax.scatter([n], [get(h)], marker="*", s=160, color=color, edgecolor="black", zorder=3)
                break
    ax.set_xscale("log" if max((len(r.history) for r in results.values()), default=1) > 200 else "linear")
    if len(every) > 20:  # keep a few catastrophic models from squashing the interesting range
        low, high = np.percentile(every, [1, 100])
        ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
    ax.set_xlabel("evaluation")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_best_so_far(
    curves: Mapping[str, Sequence[Sequence[float]] | SearchResult | Sequence[SearchResult]],
    *,
    path: PathLike | None = None,
    ylabel: str = "best fitness so far",
    title: str = "Best so far against the number of evaluations",
) -> Figure:
    """Best-so-far curves against the number of evaluations, mean and spread over runs.

    Args:
        curves: label -> one result, several results (e.g. one per seed; their
            :meth:`SearchResult.best_so_far`), or several precomputed curves (lists of numbers).
            Runs of different lengths are averaged over the runs still going.
        path: where to save the figure, if given.
    """
    fig = _figure((7.0, 4.0))
    ax = fig.add_subplot()
    for i, (label, item) in enumerate(curves.items()):
        runs = _as_curves(item)
        if not runs:
            continue
        length = max(len(r) for r in runs)
        data = np.full((len(runs), length), np.nan)
        for j, run in enumerate(runs):
            data[j, : len(run)] = run
        x = np.arange(1, length + 1)
        mean = np.nanmean(data, axis=0)
        ax.plot(x, mean, color=f"C{i}", label=f"{label} (n={len(runs)})")
        if len(runs) > 1:
            low, high = np.nanpercentile(data, [25, 75], axis=0)
            ax.fill_between(x, low, high, color=f"C{i}", alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("number of evaluations")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _as_curves(item: Any) -> list[list[float]]:
    if hasattr(item, "best_so_far"):
        return [item.best_so_far()]
    out = []
    for run in item:
        out.append(run.best_so_far() if hasattr(run, "best_so_far") else [float(v) for v in run])
    return out


def plot_training_loss(
    losses: Sequence[float],
    *,
    path: PathLike | None = None,
    smooth: int | None = None,
    title: str = "Supernet training loss",
) -> Figure:
    """Loss per optimizer step, with a moving average over ``smooth`` steps (default: ~1/20 of them)."""
    values = np.asarray([float(v) for v in losses], dtype=float)
    if values.size == 0:
        raise ValueError("no losses to plot")
    fig = _figure((7.0, 3.5))
    ax = fig.add_subplot()
    steps = np.arange(1, values.size + 1)
    ax.plot(steps, values, color="C0", alpha=0.35, lw=0.8, label="loss")
    window = smooth if smooth is not None else max(1, values.size // 20)
    if window > 1 and values.size >= window:
        averaged = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], averaged, color="C0", lw=1.8, label=f"moving average ({window})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_picture_grid(rows: Sequence[Sequence[tuple[str, Any]]], *, path: PathLike | None = None, cell: float = 2.0) -> Figure:
    """A grid of pictures: one row per example, ``(title, (H, W, 3) uint8 array)`` per cell; the
    titles of the first row head the columns (every row has the same columns)."""
    if not rows:
        raise ValueError("no pictures to plot")
    ncols = max(len(r) for r in rows)
    fig = _figure((cell * ncols, cell * len(rows)))
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for i, row in enumerate(rows):
        for j in range(ncols):
            ax = axes[i][j]
            ax.set_axis_off()
            if j < len(row):
                title, picture = row[j]
                ax.imshow(np.asarray(picture), interpolation="nearest")
                if i == 0:
                    ax.set_title(title, fontsize=9)
    return _save(fig, path)

