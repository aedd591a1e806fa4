"""Supernet utilities: activate a path, freeze a standalone subnet, recalibrate BN, count cost."""

from __future__ import annotations

import contextlib
import copy
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from oneshot.space import Architecture, ChoiceLayer, SearchSpace

__all__ = [
    "choice_layers",
    "clear_layer_cache",
    "activate",
    "freeze",
    "recalibrate_bn",
    "count_flops_params",
    "FlopsParams",
    "active_parameters",
]


def choice_layers(model: nn.Module) -> list[ChoiceLayer]:
    """Every :class:`ChoiceLayer` of ``model`` in traversal order (the search-space order)."""
    return [m for m in model.modules() if isinstance(m, ChoiceLayer)]


# Walking a large supernet's modules costs milliseconds (about 7 ms for the 56-layer Auto-Panoptic
# supernet), paid on every path of every step; the choice layers of a model are therefore
# collected once per model (held weakly) and re-collected when its top-level children change.
# A model restructured deeper down must call clear_layer_cache(model).
_LAYER_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], list[ChoiceLayer], SearchSpace]] = (
    weakref.WeakKeyDictionary()
)


def _children_key(model: nn.Module) -> tuple[int, ...]:
    return tuple(id(m) for m in model._modules.values())


def clear_layer_cache(model: nn.Module | None = None) -> None:
    """Forget the cached choice layers of ``model`` (or of every model) after restructuring it."""
    if model is None:
        _LAYER_CACHE.clear()
    else:
        _LAYER_CACHE.pop(model, None)


def _resolve(model: nn.Module, arch: Architecture | Sequence[int]) -> tuple[list[ChoiceLayer], Architecture]:
    key = _children_key(model)
    cached = _LAYER_CACHE.get(model)
    if cached is None or cached[0] != key:
        cached = (key, choice_layers(model), SearchSpace.from_module(model))
        _LAYER_CACHE[model] = cached
    _, layers, space = cached
    return layers, space.validate(arch)


@contextlib.contextmanager
def activate(model: nn.Module, arch: Architecture | Sequence[int]) -> Iterator[nn.Module]:
    """Make ``arch`` the active path of ``model`` inside the ``with`` block.

    The previously active choices are restored on exit, so calls may be nested.
    """
    layers, arch = _resolve(model, arch)
    previous = [layer.active for layer in layers]
    try:
        for layer, choice in zip(layers, arch.choices, strict=True):
            layer.set_active(choice)
        yield model
    finally:
        for layer, choice in zip(layers, previous, strict=True):
            layer.set_active(choice)


def freeze(model: nn.Module, arch: Architecture | Sequence[int]) -> nn.Module:
    """A standalone copy of ``model`` with every choice layer replaced by its chosen candidate.

    The copy holds only the chosen candidates (weights and buffers copied from the supernet), has
    no :class:`ChoiceLayer` left and gives the supernet's outputs for ``arch``. Unchosen
    candidates are never copied.
    """
    layers, arch = _resolve(model, arch)
    memo: dict[int, Any] = {}
    # Inner choice layers come later in traversal order; resolve them first so that a chosen
    # candidate which itself holds choice layers is copied with its own choices applied.
    for layer, choice in reversed(list(zip(layers, arch.choices, strict=True))):
        chosen = layer.candidates[layer.choice_names[choice]]
        memo[id(layer)] = copy.deepcopy(chosen, memo)
    frozen = copy.deepcopy(model, memo)
    if any(isinstance(m, ChoiceLayer) for m in frozen.modules()):
        raise RuntimeError("freeze left a ChoiceLayer in the model; this is a bug in oneshot")
    return frozen


def active_parameters(model: nn.Module, arch: Architecture | Sequence[int]) -> list[nn.Parameter]:
    """The parameters that the path ``arch`` uses (shared parts plus chosen candidates)."""
    layers, arch = _resolve(model, arch)
    inactive: set[int] = set()
    for layer, choice in zip(layers, arch.choices, strict=True):
        for i, name in enumerate(layer.choice_names):
            if i != choice:
                inactive.update(id(p) for p in layer.candidates[name].parameters())
    return [p for p in model.parameters() if id(p) not in inactive]


def _default_forward(model: nn.Module, batch: Any) -> Any:
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    forward: Callable[[nn.Module, Any], Any] = _default_forward,
    num_batches: int | None = None,
    progress: bool = False,
) -> int:
    """Re-estimate BatchNorm statistics of the active path on ``batches``.

    Every BN layer that runs during the first forward pass gets its running statistics reset and
    then re-estimated as a cumulative average over all batches (``momentum=None``); BN layers that
    do not run (unchosen candidates) keep their statistics. The rest of the model stays in eval
    mode and no gradient is computed. ``forward(model, batch)`` runs one batch (default:
    ``model(batch[0])`` for tuples, else ``model(batch)``). Returns the number of batches used.
    """
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    was_training = {m: m.training for m in model.modules()}
    momenta = {bn: bn.momentum for bn in bns}
    seen: set[int] = set()

    def _reset_on_first_use(module: _BatchNorm, _inputs: Any) -> None:
        if id(module) not in seen:
            seen.add(id(module))
            module.reset_running_stats()
            module.momentum = None

    hooks = [bn.register_forward_pre_hook(_reset_on_first_use) for bn in bns]
    used = 0
    try:
        model.eval()
        for bn in bns:
            bn.train()
        iterator: Iterable[Any] = batches
        if progress and sys.stderr.isatty():  # a transient bar: not worth a log line elsewhere
            from tqdm.auto import tqdm

            iterator = tqdm(batches, total=num_batches, desc="recalibrate BN", leave=False)
        for batch in iterator:
            if num_batches is not None and used >= num_batches:
                break
            forward(model, batch)
            used += 1
    finally:
        for h in hooks:
            h.remove()
        for bn, momentum in momenta.items():
            bn.momentum = momentum
        for m, flag in was_training.items():
            m.training = flag
    return used


@dataclass(frozen=True)
class FlopsParams:
    """Cost of one architecture: floating-point operations of one forward pass and parameters."""

    flops: int
    params: int

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6


@torch.no_grad()
def count_flops_params(
    model: nn.Module,
    arch: Architecture | Sequence[int],
    example_input: Any,
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> FlopsParams:
    """FLOPs (``torch.utils.flop_counter``, one multiply-add = 2 FLOPs) and parameters of ``arch``.

    Only the chosen path runs; parameters count the shared parts plus the chosen candidates.
    ``example_input`` is passed to ``model`` (a tuple is unpacked) unless ``forward`` is given.
    """
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in active_parameters(model, arch))
    was_training = model.training
    model.eval()
    try:
        with activate(model, arch), FlopCounterMode(display=False) as counter:
            if forward is not None:
                forward(model, example_input)
            elif isinstance(example_input, tuple):
                model(*example_input)
            else:
                model(example_input)
    finally:
        model.train(was_training)
    return FlopsParams(flops=int(counter.get_total_flops()), params=int(params))
