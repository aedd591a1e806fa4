"""A latency predictor that needs no run of the architecture: a per-layer lookup table.

Building it (:func:`build_latency_table`): one forward pass of a reference architecture with
forward pre-hooks on every :class:`~oneshot.space.ChoiceLayer` captures each layer's inputs in
place; every candidate of every layer is then timed on its layer's captured inputs (all calls of
the layer in one forward pass), warm-up then median of ``repeats``. The *fixed part* (stem,
heads, everything outside the choice layers) is the median, over a few calibration
architectures, of measured latency minus the sum of their table entries. Prediction:
``fixed_ms + sum over layers of table[layer][choice]``.

The table is a JSON file written atomically after every layer, so an interrupted build resumes
where it stopped (the file records the space signature, device, torch version and settings; a
mismatch is an error rather than a silently mixed table).

Assumption: a layer's input shape does not depend on the choices before it (true for spaces whose
candidates keep shapes, as in SPOS and Auto-Panoptic). Layers whose captured input shapes differ
between two architectures are listed in ``shape_dependent`` and predicted at the reference shape.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from oneshot.cost import (
    ForwardFn,
    batch_example,
    device_name,
    measure_latency,
    run_forward,
    time_call,
)
from oneshot.errors import OneshotError
from oneshot.files import atomic_write_json
from oneshot.space import Architecture, ChoiceLayer, SearchSpace
from oneshot.supernet import activate, choice_layers

__all__ = ["LatencyTable", "build_latency_table", "capture_layer_inputs", "latency_table_for_task", "predictor_error"]

FORMAT = 1


@dataclass
class LatencyTable:
    """Per-layer candidate latencies (ms) plus the fixed part; see the module docstring."""

    meta: dict[str, Any]
    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    fixed_ms: float | None = None
    calibration: list[dict[str, Any]] = field(default_factory=list)
    shape_dependent: list[str] = field(default_factory=list)
    rounds_ms: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def predict(self, arch: Architecture) -> float:
        """Predicted batch latency (ms) of ``arch``; needs a complete table."""
        labels = self.meta["labels"]
        names = self.meta["choice_names"]
        if self.fixed_ms is None or len(self.layers) != len(labels):
            raise OneshotError("the latency table is incomplete; finish building it first")
        if len(arch.choices) != len(labels):
            raise OneshotError(f"architecture has {len(arch.choices)} layers, the latency table {len(labels)}")
        return self.fixed_ms + sum(
            self.layers[label][names[i][c]] for i, (label, c) in enumerate(zip(labels, arch.choices, strict=True))
        )

    def layer_sum(self, arch: Architecture) -> float:
        labels, names = self.meta["labels"], self.meta["choice_names"]
        return sum(self.layers[label][names[i][c]] for i, (label, c) in enumerate(zip(labels, arch.choices, strict=True)))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "meta": self.meta,
            "layers": self.layers,
            "fixed_ms": self.fixed_ms,
            "calibration": self.calibration,
            "shape_dependent": self.shape_dependent,
            "rounds_ms": self.rounds_ms,
        }

    def save(self, path: str | Path) -> None:
        """Write atomically (a temporary file replaced in one step)."""
        atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        try:
            obj = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise OneshotError(f"cannot read latency table {path}: {exc}") from None
        if obj.get("format") != FORMAT:
            raise OneshotError(f"latency table {path} has format {obj.get('format')!r}, expected {FORMAT}")
        return cls(
            obj["meta"], obj["layers"], obj["fixed_ms"], obj.get("calibration", []),
            obj.get("shape_dependent", []), obj.get("rounds_ms", {}),
        )


def _shapes(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return list(obj.shape)
    if isinstance(obj, (list, tuple)):
        return [_shapes(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _shapes(v) for k, v in obj.items()}
    return None


@torch.no_grad()
def capture_layer_inputs(
    model: nn.Module, arch: Architecture, example: Any, *, forward: ForwardFn | None = None
) -> dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]]:
    """Label -> the ``(args, kwargs)`` of every call of that choice layer in one forward pass."""
    captured: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = {}

    def hook(layer: ChoiceLayer) -> Any:
        def fn(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            captured.setdefault(layer.label, []).append((args, dict(kwargs)))

        return fn

    handles = [layer.register_forward_pre_hook(hook(layer), with_kwargs=True) for layer in choice_layers(model)]
    was_training = model.training
    model.eval()
    try:
        with activate(model, arch):
            run_forward(model, example, forward)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return captured


def build_latency_table(
    model: nn.Module,
    example: Any,
    path: str | Path,
    *,
    forward: ForwardFn | None = None,
    batch_size: int = 1,
    warmup: int = 2,
    repeats: int = 7,
    rounds: int = 1,
    calibration_archs: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> LatencyTable:
    """Build (or resume) the latency table of ``model`` at ``path``; returns the complete table.

    ``example`` is at batch 1 on the model's device; the table is for ``batch_size``. Each entry
    is the median of ``repeats`` timed calls; with ``rounds > 1`` the whole table is timed that
    many times, one layer after the other, and each entry is the median over rounds (a burst of
    load on a shared machine then spoils one round of a few entries rather than whole entries).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    space = SearchSpace.from_module(model)
    layers = choice_layers(model)
    for layer in layers:
        for name, cand in layer.candidates.items():
            if any(isinstance(m, ChoiceLayer) for m in cand.modules()):
                raise OneshotError(f"layer {layer.label!r}: candidate {name!r} holds choice layers; nested spaces have no per-layer table")
    device = next(model.parameters()).device
    meta = {
        "space": space.signature(),
        "labels": list(space.labels),
        "choice_names": [list(layer.choice_names) for layer in space.layers],
        "device": device_name(device),
        "torch_version": torch.__version__,
        "batch_size": int(batch_size),
        "warmup": int(warmup),
        "repeats": int(repeats),
        "rounds": int(rounds),
        "seed": int(seed),
    }
    path = Path(path)
    table = LatencyTable(meta)
    if path.exists():
        table = LatencyTable.load(path)
        diff = sorted(k for k in meta if table.meta.get(k) != meta[k])
        if diff:
            raise OneshotError(
                f"latency table {path} was built with other settings ({', '.join(diff)} differ); "
                "write to a new file"
            )
    x = batch_example(example, int(batch_size))
    rng = np.random.default_rng(seed)
    reference = space.sample(rng)
    def done(layer: ChoiceLayer, r: int) -> bool:
        return len(table.rounds_ms.get(layer.label, {}).get(layer.choice_names[-1], [])) > r

    todo = [(r, layer) for r in range(rounds) for layer in layers if not done(layer, r)]
    if todo:
        inputs = capture_layer_inputs(model, reference, x, forward=forward)
        other = capture_layer_inputs(model, space.sample(rng), x, forward=forward)
        table.shape_dependent = sorted(
            label for label in inputs if _shapes(inputs[label]) != _shapes(other.get(label, []))
        )
        del other
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(layer.num_choices for _, layer in todo), desc="latency table", unit="op")
        was_training = model.training
        model.eval()
        try:
            for r, layer in todo:
                calls = inputs.get(layer.label)
                if not calls:
                    raise OneshotError(f"layer {layer.label!r} did not run in a forward pass of {reference.key}")
                row = table.rounds_ms.setdefault(layer.label, {})
                for name, cand in layer.candidates.items():

                    def run(cand: nn.Module = cand, calls: Any = calls) -> None:
                        for args, kwargs in calls:
                            cand(*args, **kwargs)

                    times = row.setdefault(name, [])
                    del times[r:]  # a round interrupted inside this layer is redone
                    times.append(statistics.median(time_call(run, device=device, warmup=warmup, repeats=repeats)))
                    if bar is not None:
                        bar.update(1)
                if r == rounds - 1:
                    table.layers[layer.label] = {n: statistics.median(v) for n, v in row.items()}
                table.save(path)
        finally:
            model.train(was_training)
            if bar is not None:
                bar.close()
        del inputs
    if table.fixed_ms is None:
        archs = [reference] + [space.sample(rng) for _ in range(max(0, calibration_archs - 1))]
        measured: list[list[float]] = [[] for _ in archs]
        for _ in range(rounds):
            for i, arch in enumerate(archs):
                measured[i].append(measure_latency(
                    model, example, arch=arch, batch_size=batch_size, warmup=warmup, repeats=repeats, forward=forward
                ).median_ms)
        table.calibration = [
            {"key": arch.key, "measured_ms": statistics.median(m), "layer_sum_ms": table.layer_sum(arch)}
            for arch, m in zip(archs, measured, strict=True)
        ]
        table.fixed_ms = statistics.median(c["measured_ms"] - c["layer_sum_ms"] for c in table.calibration)
        table.save(path)
    return table


def predictor_error(
    table: LatencyTable,
    model: nn.Module,
    example: Any,
    archs: Sequence[Architecture],
    *,
    forward: ForwardFn | None = None,
    warmup: int = 2,
    repeats: int = 7,
    rounds: int = 3,
) -> dict[str, Any]:
    """Predicted against measured latency on ``archs`` (use architectures not in the calibration).

    Measured latency: the median over ``rounds`` interleaved rounds (every architecture once per
    round) of :func:`~oneshot.cost.measure_latency` medians.

    Returns the median, mean and largest absolute percentage error, Pearson's r of predicted with
    measured, and every architecture's pair.
    """
    rounds_ms: list[list[float]] = [[] for _ in archs]
    for _ in range(rounds):  # interleaved, so a burst of load on the machine hits every architecture
        for i, arch in enumerate(archs):
            rounds_ms[i].append(measure_latency(
                model, example, arch=arch, batch_size=table.meta["batch_size"], warmup=warmup, repeats=repeats,
                forward=forward,
            ).median_ms)
    rows: list[dict[str, Any]] = []
    for arch, times in zip(archs, rounds_ms, strict=True):
        measured = statistics.median(times)
        predicted = table.predict(arch)
        rows.append({"key": arch.key, "measured_ms": measured, "predicted_ms": predicted,
                     "abs_pct_error": 100.0 * abs(predicted - measured) / measured})
    errors: list[float] = [r["abs_pct_error"] for r in rows]
    m = np.array([r["measured_ms"] for r in rows])
    p = np.array([r["predicted_ms"] for r in rows])
    corr = float(np.corrcoef(m, p)[0, 1]) if len(rows) > 2 and m.std() > 0 and p.std() > 0 else float("nan")
    return {
        "num_architectures": len(rows),
        "median_abs_pct_error": statistics.median(errors),
        "mean_abs_pct_error": statistics.fmean(errors),
        "max_abs_pct_error": max(errors),
        "pearson_r": corr,
        "rounds": rounds,
        "device": table.meta["device"],
        "torch_version": table.meta["torch_version"],
        "architectures": rows,
    }


def latency_table_for_task(task: Any, path: str | Path, **options: Any) -> LatencyTable:
    """Build (or resume) the latency table of ``task``'s supernet on ``task.device`` at its
    :meth:`~oneshot.tasks.Task.example_input`; ``options`` go to :func:`build_latency_table`."""
    model = task.build_supernet().eval()
    return build_latency_table(model, task.example_input(), path, progress=task.progress, **options)
