"""Tasks: the plug-in protocol behind ``oneshot search --task NAME``, and their registry.

A task bundles everything problem-specific: its config model and presets, data preparation,
the supernet, training batches and loss, and the evaluation of architectures on the supernet
(the search fitness). Third-party packages register tasks through the ``oneshot.tasks``
entry-point group (``name = "package.module:TaskClass"``), scripts in-process with
:func:`register_task`, and an unpackaged task is addressed as ``module:Class``
(``oneshot search --task mypkg.tasks:MyTask``). The core never imports a task package directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from oneshot.config import RunConfig
from oneshot.errors import OneshotError
from oneshot.registry import Registry, UnknownNameError
from oneshot.space import Architecture

__all__ = ["TASKS", "Task", "UnknownTaskError", "available_tasks", "get_task", "register_task"]

ENTRY_POINT_GROUP = "oneshot.tasks"

Stage = Literal["supernet", "retrain"]


UnknownTaskError = UnknownNameError


class Task(ABC):
    """Base class of a task plug-in.

    Subclasses set ``name`` and ``config_class`` and implement the abstract methods. The pipeline
    creates one instance per run: ``Task(config, device=..., progress=...)``. (``run_dir`` is
    still accepted for tasks written against earlier versions; no task needs it.)
    """

    name: ClassVar[str]
    config_class: ClassVar[type[RunConfig]] = RunConfig
    description: ClassVar[str] = ""
    #: Whether :meth:`prepare_data` runs the task's full (slow) check of the data files; the
    #: pipeline sets it to ``False`` for ``--no-validate``.
    validate_data: bool = True

    #: Metric keys shown in reports and benchmark tables, in order (``fitness`` is always shown).
    report_columns: ClassVar[tuple[str, ...]] = ()
    #: Whether :meth:`evaluate` accepts ``fraction=`` (scoring on the first share of the split),
    #: which multi-fidelity racing (``search.racing``) needs.
    supports_fraction: ClassVar[bool] = False

    def __init__(
        self,
        config: RunConfig,
        *,
        device: str | torch.device = "cpu",
        progress: bool = True,
        run_dir: str | Path | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else None
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
        self, model: nn.Module, archs: Sequence[Architecture], *, split: str = "search", fraction: float = 1.0
    ) -> list[dict[str, float]]:
        """Evaluate architectures on the supernet (inherited weights; BN recalibrated as needed).

        Returns one metrics dict per architecture with a ``"fitness"`` key (higher is better).
        ``split`` is ``"search"`` (the held-out search split) or ``"val"`` (final evaluation).
        ``fraction`` < 1 scores on the first share of the split only (tasks that set
        :attr:`supports_fraction`); the same share every time, so partial scores compare.
        """

    def evaluation_size(self, split: str = "search", fraction: float = 1.0) -> int | None:
        """How many items (e.g. images) :meth:`evaluate` scores on ``split`` at ``fraction``,
        counted from the data it would select (a task may round a fraction to whole batches);
        ``None`` when the task cannot say. Benchmarks measure the cost of evaluations with it."""
        return None

    def example_input(self) -> Any:
        """One input at batch 1, on ``self.device``, as the supernet takes it (``model(x)``, a tuple
        unpacked): what FLOPs and latency are measured on (see :mod:`oneshot.cost`). Use the size
        the task evaluates at. Optional: only cost-aware search needs it."""
        raise OneshotError(
            f"task {self.name!r} does not provide an example input (Task.example_input), "
            "needed to measure FLOPs, parameters and latency"
        )

    def reference_architectures(self) -> dict[str, Any]:
        """Published architectures of this supernet's search space, by label (JSON forms), whose
        costs the Pareto plots mark as reference lines; default none. A task returns only those
        that belong to the configured space (e.g. the paper's at its search width)."""
        return {}

    def evaluate_standalone(self, model: nn.Module, *, split: str = "val") -> dict[str, float]:
        """Evaluate a frozen, retrained model; metrics dict with a ``"fitness"`` key."""
        raise NotImplementedError(f"task {self.name!r} does not support evaluating standalone models")

    # ----------------------------------------------------------------- shipping (docs/ship.md)
    def standalone_model(self, supernet: nn.Module, arch: Architecture) -> nn.Module:
        """``arch`` frozen out of the trained supernet with its inherited weights, ready to use as
        :meth:`evaluate` scores it (override to recalibrate BatchNorm first). Default: frozen, eval."""
        from oneshot.supernet import freeze

        return freeze(supernet, arch).eval()

    def model_spec(self) -> dict[str, Any]:
        """JSON-able data from which :meth:`build_model` rebuilds a frozen network without the
        run directory or the data (saved in ``state_dict`` exports). Default: the whole config."""
        return {"config": self.config.model_dump(mode="json")}

    @classmethod
    def build_model(cls, spec: Mapping[str, Any], arch: Architecture | Mapping[str, Any]) -> nn.Module:
        """The frozen network of ``arch`` (an :class:`Architecture` or its JSON) with fresh weights,
        from a :meth:`model_spec`; on the CPU, eval mode. Default: the task rebuilt from the saved
        config builds its supernet, which is frozen."""

        from oneshot.space import SearchSpace
        from oneshot.supernet import freeze

        config = cls.config_class.model_validate(spec["config"])
        task = cls(config, device="cpu", progress=False)
        supernet = task.build_supernet()
        if not isinstance(arch, Architecture):
            arch = Architecture.from_json(SearchSpace.from_module(supernet), dict(arch))
        return freeze(supernet, arch).eval()

    def export_part(self, model: nn.Module) -> Any:
        """What TorchScript and ONNX export of the frozen ``model``: an
        :class:`oneshot.export.ExportPart`. Default: the whole model on :meth:`example_input`."""
        from oneshot.export import ExportPart

        x = self.example_input()
        example = tuple(x) if isinstance(x, (list, tuple)) else (x,)
        return ExportPart(model, example, f"the whole {self.name} network", fixed_shape=False)

    def load_image(self, path: str | Path) -> torch.Tensor:
        """One input image file as the model takes it: ``(3, H, W)`` float in ``[0, 1]`` (default)."""
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()

    def predict(self, model: nn.Module, images: Sequence[Any]) -> list[Any]:
        """Predictions of the frozen ``model`` for ``images`` (tensors ``(3, H, W)`` in ``[0, 1]`` or
        PIL images), one per image; what a prediction is, the task decides."""
        raise NotImplementedError(f"task {self.name!r} does not support predictions")

    def prediction_writer(self, output_dir: str | Path) -> Any:
        """An object with ``add(name, image, prediction)`` and ``close() -> dict`` that writes
        predictions under ``output_dir`` (used by ``oneshot predict``)."""
        raise NotImplementedError(f"task {self.name!r} does not support writing predictions")

    def example_pictures(self, models: Mapping[str, nn.Module], *, count: int = 3) -> list[list[tuple[str, Any]]]:
        """Rows of ``(title, HxWx3 uint8 picture)`` for the report's picture grid: a few ``val``
        inputs, their ground truth and each model's prediction. Default: none."""
        return []

    def param_groups(self, model: nn.Module, *, stage: Stage = "supernet") -> list[dict[str, Any]]:
        """Optimizer parameter groups for ``stage`` (``"supernet"`` training or ``"retrain"``).

        Default: the supernet gets per-component learning-rate multipliers that average a
        window's summed gradients (see :func:`oneshot.train.component_param_groups`); a
        retrained model gets one group of all its trainable parameters.
        """
        if stage == "retrain":
            return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": self.config.retrain.lr}]
        from oneshot.train import component_param_groups

        t = self.config.train
        return component_param_groups(
            model, lr=t.lr, weight_decay=t.weight_decay, multipliers=t.lr_multipliers, window_size=t.paths_per_step
        )

    def build_optimizer(
        self, model: nn.Module, *, stage: Stage = "supernet"
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """The optimizer and learning-rate schedule for ``stage``; default: from the config section
        (``train`` or ``retrain``: ``optimizer``, ``schedule`` and their options) over
        :meth:`param_groups`. Override to use another optimizer or schedule altogether."""
        from oneshot.train import build_optimizer, build_scheduler

        cfg = self.config.train if stage == "supernet" else self.config.retrain
        optimizer = build_optimizer(self.param_groups(model, stage=stage), cfg)
        return optimizer, build_scheduler(optimizer, cfg)

    def move_batch(self, batch: Any, device: torch.device) -> Any:
        """Move one training batch to ``device`` (default: every tensor in nested lists/dicts)."""
        from oneshot.train import move_to_device

        return move_to_device(batch, device)


TASKS: Registry[Task] = Registry("task", base=Task, entry_point_group=ENTRY_POINT_GROUP)
"""Every task: registered in-process, installed through the ``oneshot.tasks`` entry points, or
addressed as ``module:Class``."""


def register_task(cls: type[Task]) -> type[Task]:
    """Register a task class in-process under its ``name`` (a decorator). Duplicate names are an error."""
    return TASKS.register(cls)


def available_tasks() -> list[str]:
    """Names of all tasks: registered in-process or through the ``oneshot.tasks`` entry points."""
    return TASKS.names()


def get_task(name: str) -> type[Task]:
    """The task registered as ``name``, or the class at ``module:Class``; an unknown name lists
    the available ones."""
    return TASKS.get(name)
