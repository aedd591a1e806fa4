"""Checkpoints of a training run: atomic writes, damage detection, and the RNG streams for exact resume."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from oneshot.errors import CheckpointError
from oneshot.files import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "all_finite",
    "load_checkpoint",
    "nonfinite_tensors",
    "peek_checkpoint",
    "read_provenance",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

CHECKPOINT_FORMAT = "oneshot-supernet-checkpoint/1"


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` with ``torch.save`` atomically (temp file, fsync, rename)."""
    atomic_write(path, lambda fh: torch.save({"format": CHECKPOINT_FORMAT, **payload}, fh))


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




def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every floating-point element of ``tensors`` is finite (one fused reduction)."""
    ts = [t.detach() for t in tensors if t.is_floating_point() and t.numel()]
    if not ts:
        return True
    norms = torch._foreach_norm(ts, float("inf"))  # fused max |x| per tensor; nan/inf propagate
    return bool(torch.isfinite(torch.stack([n.float() for n in norms])).all())


def nonfinite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors of a state dict that hold a non-finite value."""
    return [k for k, v in state.items() if isinstance(v, torch.Tensor) and not all_finite([v])]


def read_provenance(path: str | Path) -> dict[str, Any] | None:
    """The ``provenance`` record of a checkpoint, read without loading its tensors into memory
    (memory-mapped); a damaged file raises :class:`CheckpointError`."""
    record = peek_checkpoint(path).get("provenance")
    return dict(record) if isinstance(record, Mapping) else None


def peek_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's payload with its tensors memory-mapped (cheap: for its small fields)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise CheckpointError(f"checkpoint {path} is corrupted or unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a oneshot supernet checkpoint")
    return payload
