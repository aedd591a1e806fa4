"""The cost of an architecture: FLOPs, parameters and latency, and constraints on them.

Task-agnostic: everything works from a supernet and an *example input at batch 1* (what
:meth:`oneshot.tasks.Task.example_input` returns), passed to the model as ``model(x)`` (a tuple is
unpacked) unless a ``forward(model, x)`` is given. A batch of ``b`` is made from it by
:func:`batch_example` (tensors are repeated along dim 0, lists of per-image tensors repeated).

* :class:`CostModel` caches FLOPs/parameters (``count_flops_params``) and measured latencies per
  architecture, or predicts latency from a :class:`~oneshot.latency_table.LatencyTable`;
* :func:`measure_latency`: warm-up, then the median of ``repeats`` timed forward passes (CUDA
  synchronised), recorded with the device name and the torch version;
* :func:`with_costs` adds cost metrics (``flops``, ``params``, ``latency_ms``, ...) to what a
  fitness returns, so that they can be search objectives;
* :func:`build_constraint` turns ``search.constraints`` into a constraint that counts rejections.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from oneshot.search.base import BatchFitness, Evaluation, Fitness, FitnessValue
from oneshot.space import Architecture
from oneshot.supernet import FlopsParams, activate, count_flops_params

__all__ = [
    "CostConstraint",
    "CostModel",
    "LatencyMeasurement",
    "batch_example",
    "build_constraint",
    "device_name",
    "measure_latency",
    "run_forward",
    "with_costs",
]

ForwardFn = Callable[[nn.Module, Any], Any]


def device_name(device: torch.device | str) -> str:
    """A readable name of ``device``: the GPU model, or the CPU model and thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"cpu: {cpu} ({torch.get_num_threads()} torch threads)"


def batch_example(example: Any, batch_size: int) -> Any:
    """The batch-1 ``example`` as a batch of ``batch_size``.

    A tensor is repeated along dim 0; a list of tensors (one per image) is repeated as a list; a
    tuple or dict is batched element-wise; anything else is returned unchanged.
    """
    if batch_size == 1:
        return example
    if isinstance(example, torch.Tensor):
        return torch.cat([example] * batch_size, dim=0)
    if isinstance(example, list):
        return list(example) * batch_size
    if isinstance(example, tuple):
        return tuple(batch_example(x, batch_size) for x in example)
    if isinstance(example, Mapping):
        return {k: batch_example(v, batch_size) for k, v in example.items()}
    return example


def run_forward(model: nn.Module, example: Any, forward: ForwardFn | None = None) -> Any:
    """One forward pass: ``forward(model, x)``, else ``model(*x)`` for a tuple, else ``model(x)``."""
    if forward is not None:
        return forward(model, example)
    if isinstance(example, tuple):
        return model(*example)
    return model(example)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@dataclass(frozen=True)
class LatencyMeasurement:
    """Median latency of ``repeats`` forward passes at ``batch_size``, on ``device``."""

    median_ms: float
    batch_size: int
    warmup: int
    repeats: int
    times_ms: tuple[float, ...]
    device: str
    torch_version: str

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["times_ms"] = list(self.times_ms)
        return out


@torch.no_grad()
def time_call(fn: Callable[[], Any], *, device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def measure_latency(
    model: nn.Module,
    example: Any,
    *,
    arch: Architecture | Sequence[int] | None = None,
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 10,
    forward: ForwardFn | None = None,
) -> LatencyMeasurement:
    """Latency of one forward pass (eval mode, no gradient) of ``model`` or of its path ``arch``.

    ``example`` is at batch 1 and on the model's device; it is batched with :func:`batch_example`.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    device = _model_device(model)
    x = batch_example(example, int(batch_size))
    was_training = model.training
    model.eval()
    try:
        if arch is not None:
            with activate(model, arch):
                times = time_call(lambda: run_forward(model, x, forward), device=device, warmup=warmup, repeats=repeats)
        else:
            times = time_call(lambda: run_forward(model, x, forward), device=device, warmup=warmup, repeats=repeats)
    finally:
        model.train(was_training)
    return LatencyMeasurement(
        statistics.median(times), int(batch_size), int(warmup), int(repeats), tuple(times),
        device_name(device), torch.__version__,
    )


class CostModel:
    """FLOPs, parameters and latency of the architectures of one supernet, cached per architecture.

    Args:
        model: the supernet (on the device whose latency is wanted).
        example: the example input at batch 1, on the model's device.
        forward: how to run the model on an input (default :func:`run_forward`).
        batch_size: the evaluation batch: when above 1, ``latency_ms_batch`` is measured too.
        warmup, repeats: latency measurement settings.
        table: a :class:`~oneshot.latency_table.LatencyTable`; when given, ``latency_ms`` is its
            prediction (no run of the architecture) and ``latency_source`` is ``"predicted"``.
    """

    def __init__(
        self,
        model: nn.Module,
        example: Any,
        *,
        forward: ForwardFn | None = None,
        batch_size: int = 1,
        warmup: int = 3,
        repeats: int = 10,
        table: Any = None,
    ) -> None:
        self.model = model
        self.example = example
        self.forward = forward
        self.batch_size = int(batch_size)
        self.warmup = int(warmup)
        self.repeats = int(repeats)
        self.table = table
        self._flops: dict[Architecture, FlopsParams] = {}
        self._latency: dict[tuple[Architecture, int], LatencyMeasurement] = {}

    def flops_params(self, arch: Architecture) -> FlopsParams:
        if arch not in self._flops:
            self._flops[arch] = count_flops_params(self.model, arch, self.example, forward=self.forward)
        return self._flops[arch]

    def measured_latency(self, arch: Architecture, batch_size: int = 1) -> LatencyMeasurement:
        key = (arch, int(batch_size))
        if key not in self._latency:
            self._latency[key] = measure_latency(
                self.model, self.example, arch=arch, batch_size=batch_size,
                warmup=self.warmup, repeats=self.repeats, forward=self.forward,
            )
        return self._latency[key]

    def latency_ms(self, arch: Architecture) -> float:
        """Batch-1 latency: the table's prediction when there is a table, else measured."""
        if self.table is not None:
            return float(self.table.predict(arch))
        return self.measured_latency(arch).median_ms

    def metrics(self, arch: Architecture, keys: Sequence[str] = ("flops", "params", "latency_ms")) -> dict[str, Any]:
        """The requested cost metrics of ``arch`` (``flops``, ``params``, ``latency_ms``,
        ``latency_ms_batch``); ``latency_source`` tells whether latencies were measured or predicted."""
        unknown = sorted(set(keys) - {"flops", "params", "latency_ms", "latency_ms_batch"})
        if unknown:
            raise ValueError(f"unknown cost metric {unknown[0]!r}; known: flops, params, latency_ms, latency_ms_batch")
        out: dict[str, Any] = {}
        if "flops" in keys or "params" in keys:
            fp = self.flops_params(arch)
            out.update({k: float(getattr(fp, k)) for k in ("flops", "params") if k in keys})
        if "latency_ms" in keys:
            out["latency_ms"] = self.latency_ms(arch)
            out["latency_source"] = "predicted" if self.table is not None else "measured"
        if "latency_ms_batch" in keys:
            out["latency_ms_batch"] = self.measured_latency(arch, self.batch_size).median_ms
        return out

    def describe(self) -> dict[str, Any]:
        """Where the latencies come from: device, torch version, batch sizes, table or measurement."""
        return {
            "device": device_name(_model_device(self.model)),
            "torch_version": torch.__version__,
            "batch_size": self.batch_size,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "latency": "predicted by a per-layer table" if self.table is not None else "measured",
        }


def with_costs(fitness: Fitness, cost_model: CostModel, keys: Sequence[str] = ("flops", "params", "latency_ms")) -> Fitness:
    """``fitness`` whose values also carry the cost metrics ``keys`` of each architecture.

    Keeps the kind of fitness (per architecture or :class:`~oneshot.search.BatchFitness`).
    """
    keys = tuple(keys)

    def merge(arch: Architecture, value: FitnessValue) -> dict[str, Any]:
        ev = Evaluation.from_value(value, arch=arch)
        return {"fitness": ev.fitness, **ev.metrics, **cost_model.metrics(arch, keys)}

    if isinstance(fitness, BatchFitness):
        batch = fitness

        class _Costed(BatchFitness):
            def __call__(self, archs: Sequence[Architecture]) -> list[FitnessValue]:
                values = list(batch(archs))
                if len(values) != len(archs):
                    raise ValueError(f"batch fitness returned {len(values)} values for {len(archs)} architectures")
                return [merge(a, v) for a, v in zip(archs, values, strict=True)]

        return _Costed()

    per_arch: Callable[[Architecture], FitnessValue] = fitness

    def costed(arch: Architecture) -> dict[str, Any]:
        return merge(arch, per_arch(arch))

    return costed


_LIMITS = {"max_flops": "flops", "max_params": "params", "max_latency_ms": "latency_ms"}


@dataclass
class CostConstraint:
    """``arch -> bool``: within every limit. Counts its checks and rejections.

    ``rejected`` counts rejected checks (a searcher may check one architecture more than once);
    ``rejected_archs`` the distinct architectures rejected; ``reasons`` which limit rejected how
    many distinct architectures.
    """

    cost_model: CostModel
    limits: dict[str, float]
    checked: int = 0
    rejected: int = 0
    rejected_archs: set[Architecture] = field(default_factory=set)
    reasons: Counter[str] = field(default_factory=Counter)

    def __call__(self, arch: Architecture) -> bool:
        self.checked += 1
        costs = self.cost_model.metrics(arch, sorted({_LIMITS[k] for k in self.limits}))
        violated = [k for k, limit in self.limits.items() if costs[_LIMITS[k]] > limit]
        if violated:
            self.rejected += 1
            if arch not in self.rejected_archs:
                self.rejected_archs.add(arch)
                self.reasons.update(violated)
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "limits": dict(self.limits),
            "checked": self.checked,
            "rejected": self.rejected,
            "rejected_architectures": len(self.rejected_archs),
            "rejected_by": dict(self.reasons),
        }


def build_constraint(cost_model: CostModel, constraints: Any) -> CostConstraint | None:
    """A :class:`CostConstraint` from ``search.constraints`` (a pydantic model or a mapping with
    ``max_flops``, ``max_params``, ``max_latency_ms``); ``None`` when no limit is set.

    Latency limits use the cost model's latency (the table's prediction when it has a table).
    """
    data = constraints.model_dump() if hasattr(constraints, "model_dump") else dict(constraints or {})
    unknown = sorted(set(data) - set(_LIMITS))
    if unknown:
        raise ValueError(f"unknown constraint {unknown[0]!r}; known: {', '.join(_LIMITS)}")
    limits = {k: float(v) for k, v in data.items() if v is not None}
    bad = [k for k, v in limits.items() if not (v > 0 and math.isfinite(v))]
    if bad:
        raise ValueError(f"constraint {bad[0]} must be a positive number, got {limits[bad[0]]}")
    return CostConstraint(cost_model, limits) if limits else None


def has_limits(search_config: Any) -> bool:
    """Whether ``search.constraints`` sets any limit."""
    return any(v is not None for v in search_config.constraints.model_dump().values())
