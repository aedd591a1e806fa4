"""A generic supernet training loop: one optimizer step per fair window, resumable bit for bit.

Each step draws one window of paths from a sampler and one batch per path, accumulates the
gradients of all paths (summed), optionally clips them, and takes one optimizer step. With the
strictly fair sampler every choice of every layer receives the same number of gradients per step.
Because gradients are *summed*, parameters used by more paths of a window receive proportionally
larger updates; :func:`component_param_groups` compensates with per-parameter learning-rate
multipliers (``k / m`` for a candidate of a ``k``-choice layer in an ``m``-path window, ``1 / m``
for shared parameters), which reproduces the reference code's backbone lr/3, head lr/2,
inter lr/4, shared lr/12 on the paper's space.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from oneshot.errors import CheckpointError
from oneshot.sampling import Sampler
from oneshot.space import Architecture, ChoiceLayer, SearchSpace
from oneshot.supernet import activate

__all__ = [
    "SupernetTrainer",
    "TrainResult",
    "LossFn",
    "component_param_groups",
    "warmup_multistep",
    "save_checkpoint",
    "load_checkpoint",
]

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, Any], "torch.Tensor | Mapping[str, torch.Tensor]"]
"""``loss_fn(model, batch)`` returns a scalar loss or a mapping of named losses (summed)."""

CHECKPOINT_FORMAT = "oneshot-supernet-checkpoint/1"


def component_param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.0,
    multipliers: Mapping[str, float] | None = None,
    window_size: int | None = None,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with a learning-rate multiplier per component.

    Parameters inside a :class:`ChoiceLayer` belong to that layer's component; all others are
    ``"shared"``. With ``multipliers=None`` the multipliers follow from fair windows: a candidate of
    a layer with ``k`` choices is used ``m / k`` times per ``m``-path window, so its group gets
    ``k / m`` (``m`` = ``window_size`` or the model's fair window) and shared parameters ``1 / m``.
    Explicit ``multipliers`` map component names (and ``"shared"``) to factors.

    Every group carries ``"component"`` and ``"lr_multiplier"`` keys; ``lr`` is the base rate.
    """
    space = SearchSpace.from_module(model)
    m = window_size or space.window_size
    owner: dict[int, tuple[str, int]] = {}
    for layer in (mod for mod in model.modules() if isinstance(mod, ChoiceLayer)):
        for p in layer.parameters():
            owner.setdefault(id(p), (layer.component, layer.num_choices))
    groups: dict[tuple[str, float], list[nn.Parameter]] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        component, k = owner.get(id(p), ("shared", 1))
        if multipliers is not None:
            if component not in multipliers:
                raise ValueError(
                    f"no learning-rate multiplier for component {component!r}; given: {sorted(multipliers)}"
                )
            mult = float(multipliers[component])
        else:
            mult = k / m
        groups.setdefault((component, mult), []).append(p)
    return [
        {
            "params": params,
            "lr": lr * mult,
            "initial_lr": lr * mult,
            "weight_decay": weight_decay,
            "component": component,
            "lr_multiplier": mult,
        }
        for (component, mult), params in groups.items()
    ]


def warmup_multistep(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int = 0,
    warmup_factor: float = 0.001,
    milestones: tuple[int, ...] = (),
    gamma: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup then step decay at ``milestones`` (optimizer steps), as in Detectron."""

    def factor(step: int) -> float:
        decay = gamma ** sum(step >= m for m in milestones)
        if step < warmup_steps:
            alpha = step / max(1, warmup_steps)
            return decay * (warmup_factor * (1 - alpha) + alpha)
        return decay

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class TrainResult:
    """What a training run did: steps taken, loss per step (mean over the window's paths)."""

    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int | None = None


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` with ``torch.save`` atomically (temp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; a damaged file is detected, not loaded."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with open(path, "rb") as fh:
            payload = torch.load(fh, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for damaged files
        raise CheckpointError(f"checkpoint {path} is corrupted or unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a oneshot supernet checkpoint")
    return payload


class SupernetTrainer:
    """Trains a supernet one fair window per optimizer step, with atomic, exact-resume checkpoints.

    Args:
        model: the supernet (holding :class:`ChoiceLayer` s), or a standalone model.
        sampler: yields one window of architectures per step (e.g. :class:`~oneshot.FairSampler`);
            ``None`` trains a standalone (frozen) model, one batch per step.
        batches: an endless iterator of batches; if it has ``state_dict``/``load_state_dict``
            (like :class:`~oneshot.data.ResumableBatches`) its position is checkpointed too.
        loss_fn: ``loss_fn(model, batch)`` for the active path: a scalar or a dict of losses.
        optimizer: built over the model's parameters (see :func:`component_param_groups`).
        scheduler: optional, stepped once per optimizer step.
        run_dir: where ``checkpoint.pt`` lives; ``None`` disables checkpoints and resume.
        checkpoint_every: optimizer steps between checkpoints (and one at the end).
        grad_clip: max global gradient norm, or ``None``.
        amp: mixed precision (float16 autocast + grad scaling); only on CUDA.
        device: where batches are moved by ``move_batch`` (the model must already be there).
        move_batch: ``move_batch(batch, device)``; default moves tensors in nested lists/dicts.
        progress: show a tqdm bar with loss and ETA.
        on_step: ``(step, loss, arch)`` after every path's backward pass.
        after_step: ``(step)`` after every optimizer step (and its checkpoint, if any).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        sampler: Sampler | None,
        batches: Iterator[Any],
        loss_fn: LossFn,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        run_dir: str | Path | None = None,
        checkpoint_every: int = 100,
        grad_clip: float | None = None,
        amp: bool = False,
        device: str | torch.device = "cpu",
        move_batch: Callable[[Any, torch.device], Any] | None = None,
        progress: bool = True,
        on_step: Callable[[int, float, Architecture], None] | None = None,
        after_step: Callable[[int], None] | None = None,
        checkpoint_name: str = "checkpoint.pt",
    ) -> None:
        self.model = model
        self.sampler = sampler
        self.batches = batches
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.grad_clip = grad_clip
        self.device = torch.device(device)
        self.amp = bool(amp) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.move_batch = move_batch or _move_to_device
        self.progress = progress
        self.on_step = on_step
        self.after_step = after_step
        self.checkpoint_name = checkpoint_name
        self.space = SearchSpace.from_module(model) if sampler is not None else None
        self.step = 0
        self.losses: list[float] = []

    # ----------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / self.checkpoint_name if self.run_dir is not None else None

    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step,
            "losses": list(self.losses),
            "space": self.space.signature() if self.space is not None else None,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "sampler": self.sampler.state_dict() if self.sampler is not None else None,
            "batches": self.batches.state_dict() if hasattr(self.batches, "state_dict") else None,
            "rng": _rng_state(),
        }
        return state

    def load_state_dict(self, state: Mapping[str, Any], *, source: str = "checkpoint") -> None:
        if state.get("space") != (self.space.signature() if self.space is not None else None):
            raise CheckpointError(f"{source} was written for a different search space")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"{source} does not fit this model: {first}") from None
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        if self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])
        if state.get("batches") is not None and hasattr(self.batches, "load_state_dict"):
            self.batches.load_state_dict(state["batches"])
        _set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.losses = list(state["losses"])

    def save(self) -> None:
        if self.checkpoint_path is not None:
            save_checkpoint(self.checkpoint_path, self.state_dict())

    def try_resume(self) -> bool:
        """Load ``run_dir/checkpoint.pt`` when it exists. Returns whether it resumed."""
        path = self.checkpoint_path
        if path is None or not path.exists():
            return False
        self.load_state_dict(load_checkpoint(path, map_location=self.device), source=str(path))
        return True

    # ----------------------------------------------------------------- training
    def train_step(self) -> float:
        """One optimizer step over one window of paths; returns the mean loss of the window."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        window: list[Architecture | None] = list(self.sampler.next_window()) if self.sampler is not None else [None]
        total = 0.0
        for arch in window:
            batch = self.move_batch(next(self.batches), self.device)
            with activate(self.model, arch) if arch is not None else contextlib.nullcontext():
                autocast = (
                    torch.autocast(device_type="cuda", dtype=torch.float16)
                    if self.amp
                    else contextlib.nullcontext()
                )
                with autocast:
                    out = self.loss_fn(self.model, batch)
                loss = out if isinstance(out, torch.Tensor) else sum(out.values())
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"loss is {loss.item()} at step {self.step}"
                        + (f" for architecture {arch.key}" if arch is not None else "")
                        + "; "
                        "lower the learning rate or enable gradient clipping"
                    )
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                else:
                    loss.backward()
            total += float(loss.detach())
            if self.on_step is not None and arch is not None:
                self.on_step(self.step, float(loss.detach()), arch)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.step += 1
        mean = total / len(window)
        self.losses.append(mean)
        return mean

    def fit(self, num_steps: int, *, resume: bool = True, desc: str = "train supernet") -> TrainResult:
        """Train until ``num_steps`` optimizer steps have been taken in total (resuming first).

        A checkpoint is written every ``checkpoint_every`` steps and at the end, atomically, so a
        run killed at any moment resumes from its last checkpoint and continues exactly as an
        uninterrupted run would.
        """
        resumed_from = None
        if resume and self.try_resume():
            resumed_from = self.step
            log.info("resumed supernet training at step %d", self.step)
        start = time.perf_counter()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=num_steps, initial=self.step, desc=desc, unit="step", dynamic_ncols=True)
        try:
            while self.step < num_steps:
                loss = self.train_step()
                if bar is not None:
                    lr = self.optimizer.param_groups[0]["lr"] / self.optimizer.param_groups[0].get("lr_multiplier", 1.0)
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
                    bar.update(1)
                if not math.isfinite(loss):
                    break
                if self.step % self.checkpoint_every == 0 or self.step == num_steps:
                    self.save()
                if self.after_step is not None:
                    self.after_step(self.step)
        finally:
            if bar is not None:
                bar.close()
        return TrainResult(
            steps=self.step,
            losses=list(self.losses),
            seconds=time.perf_counter() - start,
            resumed_from=resumed_from,
        )


def _move_to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_move_to_device(v, device) for v in batch)
    return batch
