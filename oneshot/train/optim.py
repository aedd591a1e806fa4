"""Optimizers and learning-rate schedules: per-component parameter groups for supernets, and the
optimizer and schedule built from a training config (``optimizer: sgd|adamw``,
``schedule: multistep|cosine|onecycle``), used alike by supernet training and retraining."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from oneshot.space import ChoiceLayer, SearchSpace

if TYPE_CHECKING:
    from oneshot.config import OptimConfig

__all__ = ["build_optimizer", "build_scheduler", "component_param_groups", "warmup_cosine", "warmup_multistep"]


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
    ``"shared"``. With ``multipliers=None`` the multipliers turn a window's summed gradient into an
    average over the paths that used a parameter: a candidate of a layer with ``k`` choices is used
    ``m / k`` times per ``m``-path window, so its group gets ``k / m`` (``m`` = ``window_size`` or
    the model's fair window) and shared parameters ``1 / m``. When ``m < k`` (e.g. single-path
    uniform sampling, ``m = 1``) a candidate is used at most once per window and gets ``1``.
    Explicit ``multipliers`` map component names (and ``"shared"``) to factors.

    Every group carries ``"component"`` and ``"lr_multiplier"`` keys; ``lr`` is the base rate.
    """
    space = SearchSpace.from_module(model)
    m = window_size or space.window_size
    owner: dict[int, tuple[str, int]] = {}
    for layer in (mod for mod in model.modules() if isinstance(mod, ChoiceLayer)):
        for p in layer.parameters():
            owner.setdefault(id(p), (layer.component, layer.num_choices))
    if multipliers is not None:
        known = {component for component, _ in owner.values()} | {"shared"}
        unknown = sorted(set(multipliers) - known)
        if unknown:
            raise ValueError(f"lr_multipliers: unknown component {unknown[0]!r}; components: {sorted(known)}")
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
            mult = min(1.0, k / m)
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


def warmup_cosine(
    optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int = 0, warmup_factor: float = 0.001
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup then a cosine decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            alpha = step / max(1, warmup_steps)
            return warmup_factor * (1 - alpha) + alpha
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_optimizer(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.optimizer`` over parameter ``groups`` (each may set its own lr)."""
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule named by ``cfg.schedule``, stepped once per optimizer step over ``cfg.iterations``.

    ``multistep``: linear warmup, then x0.1 at each of ``cfg.milestones`` (fractions of the run);
    ``cosine``: linear warmup, then cosine decay to zero; ``onecycle``: PyTorch's one-cycle policy
    peaking at each group's learning rate (warmup share ``warmup_iterations / iterations``, 0.3 when 0).
    """
    steps = max(1, cfg.iterations)
    if cfg.schedule == "cosine":
        return warmup_cosine(optimizer, total_steps=steps, warmup_steps=cfg.warmup_iterations)
    if cfg.schedule == "onecycle":
        pct = min(0.9, cfg.warmup_iterations / steps) if cfg.warmup_iterations else 0.3
        cycle_momentum = cfg.optimizer == "adamw" or cfg.momentum > 0
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=steps,
            pct_start=max(pct, 1.0 / steps), cycle_momentum=cycle_momentum,
        )
    milestones = tuple(int(round(f * cfg.iterations)) for f in cfg.milestones)
    return warmup_multistep(optimizer, warmup_steps=cfg.warmup_iterations, milestones=milestones)
