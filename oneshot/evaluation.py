"""Evaluators: accumulate a metric over batches (``reset / process / evaluate``), and one loop that
runs a model over batches into an evaluator.

A task's evaluation of an architecture is "recalibrate BN on the active path, then run the model
over the evaluation batches into the task's evaluator"; a retrained standalone model is evaluated
by the same loop. Metrics are a flat ``{name: float}`` mapping; the one named ``"fitness"`` is what
searchers maximise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["Evaluator", "inference_on_batches"]


class Evaluator(ABC):
    """Accumulates predictions against ground truth and reduces them to metrics.

    ``reset()`` starts over, ``process(inputs, outputs)`` takes one batch (whatever the task's
    batches and its model's outputs are), ``evaluate()`` returns the metrics so far, with a
    ``"fitness"`` key when used as a search fitness (higher is better).
    """

    def reset(self) -> None:  # noqa: B027  (optional: stateless evaluators need nothing)
        """Forget every processed batch."""

    @abstractmethod
    def process(self, inputs: Any, outputs: Any) -> None:
        """Accumulate one batch: the model's ``inputs`` (with their targets) and its ``outputs``."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """The metrics of everything processed since the last :meth:`reset`."""


def _call_model(model: nn.Module, batch: Any) -> Any:
    return model(batch)


@torch.no_grad()
def inference_on_batches(
    model: nn.Module,
    batches: Iterable[Any],
    evaluator: Evaluator,
    *,
    forward: Callable[[nn.Module, Any], Any] = _call_model,
) -> dict[str, float]:
    """Run ``model`` in eval mode over ``batches`` into ``evaluator`` and return its metrics.

    ``forward(model, batch)`` turns a batch into the model's outputs (default: ``model(batch)``);
    the evaluator receives ``process(batch, outputs)``. The model's train/eval mode is restored.
    """
    was_training = model.training
    model.eval()
    evaluator.reset()
    try:
        for batch in batches:
            evaluator.process(batch, forward(model, batch))
    finally:
        model.train(was_training)
    return evaluator.evaluate()
