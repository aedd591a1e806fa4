"""Tasks: the plug-in protocol behind ``oneshot search --task NAME``, and their registry.

A task bundles everything problem-specific: its config model and presets, data preparation,
the supernet, training batches and loss, and the evaluation of architectures on the supernet
(the search fitness). Third-party packages register tasks through the ``oneshot.tasks``
entry-point group (``name = "package.module:TaskClass"``) or in-process with
:func:`register_task`. The core never imports a task package directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from oneshot.config import RunConfig
from oneshot.errors import OneshotError
from oneshot.space import Architecture

__all__ = ["Task", "register_task", "get_task", "available_tasks", "UnknownTaskError"]

ENTRY_POINT_GROUP = "oneshot.tasks"


class UnknownTaskError(OneshotError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class Task(ABC):
    """Base class of a task plug-in.

    Subclasses set ``name`` and ``config_class`` and implement the abstract methods. The pipeline
    creates one instance per run: ``Task(config, run_dir=..., device=..., progress=...)``.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[RunConfig]] = RunConfig
    description: ClassVar[str] = ""

    def __init__(
        self,
        config: RunConfig,
        *,
        run_dir: str | Path,
        device: str | torch.device = "cpu",
        progress: bool = True,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = torch.device(device)
        self.progress = progress

    # ----------------------------------------------------------------- configuration
    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        """Named partial configs (e.g. ``tiny``, ``small``, ``paper``); the first is the default."""
        return {"default": {}}

    @classmethod
    def default_preset(cls) -> str:
        return next(iter(cls.presets()))

    # ----------------------------------------------------------------- the pipeline's needs
    def prepare_data(self) -> None:  # noqa: B027  (optional hook: most tasks have nothing to prepare)
        """Make the data ready (download/generate/validate). Called once before anything else."""

    @abstractmethod
    def build_supernet(self) -> nn.Module:
        """A freshly initialised supernet (holding ChoiceLayers), on ``self.device``."""

    @abstractmethod
    def train_batches(
        self, *, seed: int, shard: tuple[int, int] = (0, 1), batch_size: int | None = None
    ) -> Iterator[Any]:
        """Endless training batches; preferably resumable (``state_dict``/``load_state_dict``).

        ``shard=(rank, world_size)`` selects this process's share; ``batch_size`` (when given, e.g.
        ``retrain.batch_size`` for retraining) replaces ``train.batch_size``.
        """

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor | Mapping[str, torch.Tensor]:
        """Training loss of the active path on one batch."""

    @abstractmethod
    def evaluate(
        self, model: nn.Module, archs: Sequence[Architecture], *, split: str = "search"
    ) -> list[dict[str, float]]:
        """Evaluate architectures on the supernet (inherited weights; BN recalibrated as needed).

        Returns one metrics dict per architecture with a ``"fitness"`` key (higher is better).
        ``split`` is ``"search"`` (the held-out search split) or ``"val"`` (final evaluation).
        """

    def example_input(self) -> Any:
        """One input at batch 1, on ``self.device``, as the supernet takes it (``model(x)``, a tuple
        unpacked): what FLOPs and latency are measured on (see :mod:`oneshot.cost`). Use the size
        the task evaluates at. Optional: only cost-aware search needs it."""
        raise OneshotError(
            f"task {self.name!r} does not provide an example input (Task.example_input), "
            "needed to measure FLOPs, parameters and latency"
        )

    def evaluate_standalone(self, model: nn.Module, *, split: str = "val") -> dict[str, float]:
        """Evaluate a frozen, retrained model; metrics dict with a ``"fitness"`` key."""
        raise NotImplementedError(f"task {self.name!r} does not support evaluating standalone models")

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Optimizer parameter groups; default: fair per-component multipliers (see oneshot.train)."""
        from oneshot.train import component_param_groups

        t = self.config.train
        return component_param_groups(
            model, lr=t.lr, weight_decay=t.weight_decay, multipliers=t.lr_multipliers, window_size=t.paths_per_step
        )

    def move_batch(self, batch: Any, device: torch.device) -> Any:
        from oneshot.train import _move_to_device

        return _move_to_device(batch, device)


_REGISTRY: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Register a task class in-process (a decorator). Duplicate names are an error."""
    name = getattr(cls, "name", None)
    if not name:
        raise ValueError(f"{cls.__name__} has no task name")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"task {name!r} is already registered by {existing.__module__}.{existing.__name__}")
    _REGISTRY[name] = cls
    return cls


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_tasks() -> list[str]:
    """Names of all tasks: registered in-process or through the ``oneshot.tasks`` entry points."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_task(name: str) -> type[Task]:
    """The task class registered as ``name``; an unknown name lists the available ones."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    ep = _entry_points().get(name)
    if ep is None:
        raise UnknownTaskError(f"unknown task {name!r}; available tasks: {', '.join(available_tasks()) or 'none'}")
    try:
        cls = ep.load()
    except ImportError as exc:
        raise OneshotError(f"task {name!r} ({ep.value}) could not be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise OneshotError(f"entry point {name!r} ({ep.value}) is not a oneshot Task subclass")
    if getattr(cls, "name", name) != name:
        raise OneshotError(f"entry point {name!r} loads a task named {cls.name!r}")
    return register_task(cls)
