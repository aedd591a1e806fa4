"""One-hot encoding of categorical architectures, shared by the model-based searchers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["choice_counts", "onehot_choices", "shares_choices"]


def onehot_choices(choices: np.ndarray | Sequence[Sequence[int]], num_choices: Sequence[int]) -> np.ndarray:
    """``(n, sum(num_choices))`` indicators of (layer, choice) for ``(n, L)`` integer choices.

    Column ``offset[l] + c`` is 1 where layer ``l`` takes choice ``c`` (``offset`` = cumulative
    choice counts of the layers before ``l``).
    """
    choices = np.asarray(choices, dtype=np.int64).reshape(-1, len(num_choices))
    offsets = np.cumsum([0, *num_choices])[:-1]
    x = np.zeros((len(choices), int(sum(num_choices))))
    rows = np.repeat(np.arange(len(choices)), len(num_choices))
    x[rows, (choices + offsets).ravel()] = 1.0
    return x


def shares_choices(num_choices: Sequence[int]) -> bool:
    """Whether every layer (of at least two) has the same number of choices, so that a choice
    index can stand for the same op at every layer (the shared effects of the model-based searchers)."""
    return len(num_choices) > 1 and len(set(num_choices)) == 1


def choice_counts(onehot: np.ndarray, num_layers: int) -> np.ndarray:
    """``(n, K)`` number of layers taking each choice, from ``(n, L * K)`` one-hot rows of a space
    whose ``L`` layers all have ``K`` choices."""
    return onehot.reshape(len(onehot), num_layers, -1).sum(axis=1)
