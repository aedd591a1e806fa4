"""``torch.distributed`` helpers: process-group set-up, collectives and gradient reduction.

Every helper also works in a plain single process (no process group): ranks collapse to ``0`` of
``1``, collectives return their input, barriers do nothing. So library code calls them
unconditionally and behaves exactly as before when nobody launched it with ``torchrun``.

Two designs (see ``docs/distributed.md``); the first lives here:

* **Supernet training** does not wrap the model in ``DistributedDataParallel``. Each process
  accumulates the gradients of a whole fair window locally, then :func:`all_reduce_gradients`
  averages every parameter's gradient across processes in *one* collective (one flat buffer per
  device and dtype), together with a per-parameter "has a gradient" flag: a candidate that no
  process used keeps ``grad=None`` (the optimizer skips it, exactly as in one process), one used
  only somewhere counts as zero elsewhere. This is correct for single-path supernets without
  ``find_unused_parameters`` and keeps the model unwrapped (``activate``, task losses calling
  model methods and checkpoint keys all stay as they are).
* **Candidate evaluation** is split by candidates, not by data: that lives with the evaluations,
  in :class:`oneshot.study.ShardedExecutor`; :func:`shard_bounds` here gives a process its slice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Hashable, Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from oneshot.errors import OneshotError

__all__ = [
    "DistributedError",
    "all_gather_object",
    "all_reduce_gradients",
    "barrier",
    "broadcast_module",
    "broadcast_object",
    "check_consistent",
    "get_local_rank",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_initialized",
    "is_main",
    "local_device",
    "raise_if_any_failed",
    "shard_bounds",
    "sync_batchnorm",
]

T = TypeVar("T")
R = TypeVar("R")

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(OneshotError):
    """The processes of a distributed job disagree, or another process failed."""


# ----------------------------------------------------------------------------- process group
def is_initialized() -> bool:
    """Whether a default ``torch.distributed`` process group exists."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's global rank (``0`` without a process group)."""
    import torch.distributed as dist

    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    """Number of processes in the job (``1`` without a process group)."""
    import torch.distributed as dist

    return dist.get_world_size() if is_initialized() else 1


def get_local_rank() -> int:
    """Rank on this machine (``LOCAL_RANK``, set by ``torchrun``; ``0`` otherwise)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on the process that writes files (rank 0), and in a plain single process."""
    return get_rank() == 0


def init_distributed(backend: str | None = None, *, timeout: timedelta | None = None) -> bool:
    """Join the process group described by ``torchrun``'s environment variables, if any.

    Returns ``False`` (and does nothing) outside ``torchrun`` (no ``RANK``/``WORLD_SIZE``),
    ``True`` once the default group exists (also when it already existed). ``backend`` defaults
    to ``$ONESHOT_DIST_BACKEND`` or, where CUDA is available, ``"cpu:gloo,cuda:nccl"`` (NCCL for
    CUDA tensors, gloo for CPU tensors and object collectives), else ``"gloo"``. With CUDA, the
    process's current device becomes ``cuda:LOCAL_RANK``. ``timeout`` (how long a collective
    waits for the slowest process, e.g. while rank 0 prepares data or one rank evaluates a slow
    candidate) defaults to ``$ONESHOT_DIST_TIMEOUT`` minutes, else PyTorch's default.
    """
    import torch.distributed as dist

    if is_initialized():
        return True
    if "WORLD_SIZE" not in os.environ and "RANK" not in os.environ:
        return False
    missing = [v for v in _TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise DistributedError(
            f"incomplete torch.distributed environment (missing {', '.join(missing)}); launch with torchrun"
        )
    if not dist.is_available():
        raise DistributedError("this PyTorch build has no torch.distributed support")
    if backend is None:
        backend = os.environ.get("ONESHOT_DIST_BACKEND") or (
            "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        )
    if torch.cuda.is_available() and get_local_rank() < torch.cuda.device_count():
        torch.cuda.set_device(get_local_rank())
    kwargs: dict[str, Any] = {"backend": backend}
    if timeout is None and os.environ.get("ONESHOT_DIST_TIMEOUT"):
        try:
            timeout = timedelta(minutes=float(os.environ["ONESHOT_DIST_TIMEOUT"]))
        except ValueError:
            raise DistributedError(
                f"ONESHOT_DIST_TIMEOUT must be a number of minutes, got {os.environ['ONESHOT_DIST_TIMEOUT']!r}"
            ) from None
    if timeout is not None:
        kwargs["timeout"] = timeout
    dist.init_process_group(**kwargs)
    return True


def local_device(device: str | torch.device) -> torch.device:
    """The device this process should use: plain ``"cuda"`` becomes ``cuda:LOCAL_RANK`` in a job."""
    dev = torch.device(device)
    if dev.type != "cuda" or dev.index is not None or not is_initialized():
        return dev
    local = get_local_rank()
    if torch.cuda.is_available() and local >= torch.cuda.device_count():
        raise DistributedError(
            f"process with LOCAL_RANK={local} has no GPU of its own ({torch.cuda.device_count()} visible); "
            "start at most one process per GPU"
        )
    return torch.device("cuda", local)


# ----------------------------------------------------------------------------- collectives
def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    import torch.distributed as dist

    if get_world_size() > 1:
        dist.barrier()


def broadcast_object(obj: T, src: int = 0) -> T:
    """``src``'s ``obj`` on every process (picklable objects)."""
    import torch.distributed as dist

    if get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]  # type: ignore[return-value]


def all_gather_object(obj: T) -> list[T]:
    """Every process's ``obj``, in rank order, on every process."""
    import torch.distributed as dist

    if get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def raise_if_any_failed(error: BaseException | None, what: str) -> None:
    """Collective error check: if any process failed ``what``, every process raises.

    The failing process re-raises its own exception; the others raise a :class:`DistributedError`
    naming the failing rank, so no process is left waiting in a later collective.
    """
    messages = all_gather_object(None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    for rank, message in enumerate(messages):
        if message is not None:
            raise DistributedError(f"{what} failed on rank {rank}: {message}")


def check_consistent(value: Hashable, what: str) -> None:
    """Collective check that ``value`` is the same on every process; a clear error otherwise."""
    values = all_gather_object(value)
    differing = [rank for rank, v in enumerate(values) if v != values[0]]
    if differing:
        raise DistributedError(
            f"processes disagree on {what} (rank 0 differs from rank(s) {differing}); "
            "every rank must run the same config and seed on the same run directory"
        )


def broadcast_module(model: nn.Module, src: int = 0) -> None:
    """Overwrite every parameter and buffer of ``model`` with ``src``'s values, in place."""
    import torch.distributed as dist

    if get_world_size() == 1:
        return
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=src)


def all_reduce_gradients(
    parameters: Iterable[nn.Parameter],
    *,
    buffers: Sequence[torch.Tensor] = (),
    scalars: Sequence[float] = (),
    average: bool = True,
) -> list[float]:
    """Average (or sum) gradients across processes in one collective per device and dtype.

    Every ``.grad`` is copied into one flat buffer with a presence flag per parameter; one
    ``all_reduce`` later each gradient is the mean over processes (a process without a gradient
    for a parameter contributes zeros), and a parameter without a gradient on *every* process
    keeps ``grad=None``, as a one-process run leaves unused supernet candidates. ``buffers`` are
    averaged in place in the same collective; ``scalars`` are summed and returned.
    """
    import torch.distributed as dist

    unique: dict[int, nn.Parameter] = {}
    for p in parameters:
        if p.requires_grad:
            unique.setdefault(id(p), p)  # a parameter shared by two modules is reduced once
    params = list(unique.values())
    world = get_world_size()
    if world == 1:
        return [float(s) for s in scalars]
    for p in params:
        if p.grad is not None and p.grad.is_sparse:
            raise ValueError("all_reduce_gradients does not support sparse gradients")
    meta_device = params[0].device if params else buffers[0].device if buffers else torch.device("cpu")
    meta = torch.tensor([float(p.grad is not None) for p in params] + [float(s) for s in scalars],
                        dtype=torch.float32, device=meta_device)
    # One flat buffer per (device, dtype); the flags and scalars join the float32 buffer of their device.
    groups: dict[tuple[torch.device, torch.dtype], list[tuple[torch.Tensor | None, int]]] = {}
    for p in params:
        groups.setdefault((p.device, p.dtype), []).append((p.grad, p.numel()))
    for b in buffers:
        groups.setdefault((b.device, b.dtype), []).append((b, b.numel()))
    meta_key = (meta.device, meta.dtype)
    flats: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}
    for key, items in groups.items():
        extra = meta.numel() if key == meta_key else 0
        flat = torch.zeros(sum(n for _, n in items) + extra, device=key[0], dtype=key[1])
        offset = 0
        for t, n in items:
            if t is not None:
                flat[offset : offset + n].copy_(t.reshape(-1))
            offset += n
        if extra:
            flat[offset:].copy_(meta)
        flats[key] = flat
    if meta_key not in flats:
        flats[meta_key] = meta.clone()
    for flat in flats.values():
        dist.all_reduce(flat)
    meta_flat = flats[meta_key]
    reduced_meta = meta_flat[meta_flat.numel() - meta.numel() :].tolist()
    present = reduced_meta[: len(params)]
    offsets = dict.fromkeys(flats, 0)
    with torch.no_grad():
        for p, flag in zip(params, present, strict=True):
            key = (p.device, p.dtype)
            n = p.numel()
            chunk = flats[key][offsets[key] : offsets[key] + n].view_as(p)
            offsets[key] += n
            if flag == 0:
                continue  # unused on every process: stays None, as in one process
            if p.grad is None:
                p.grad = chunk.clone()
            else:
                p.grad.copy_(chunk)
            if average:
                p.grad.div_(world)
        for b in buffers:
            key = (b.device, b.dtype)
            n = b.numel()
            b.copy_(flats[key][offsets[key] : offsets[key] + n].view_as(b)).div_(world)
            offsets[key] += n
    return [float(s) for s in reduced_meta[len(params) :]]


# ----------------------------------------------------------------------------- SyncBatchNorm
@contextlib.contextmanager
def sync_batchnorm(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block every BatchNorm of ``model`` is a :class:`torch.nn.SyncBatchNorm`.

    The SyncBatchNorm modules share the original parameters and buffers (same tensor objects),
    so optimizers, checkpoints and state-dict keys are unaffected; the original modules are put
    back on exit, so BN recalibration during search never synchronises across processes.
    PyTorch supports SyncBatchNorm on GPUs only.
    """
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
                sync = nn.SyncBatchNorm(
                    child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
                )
                if child.affine:
                    sync.weight, sync.bias = child.weight, child.bias
                sync.running_mean, sync.running_var = child.running_mean, child.running_var
                sync.num_batches_tracked = child.num_batches_tracked
                sync.train(child.training)
                setattr(parent, name, sync)
                swapped.append((parent, name, child))
    try:
        yield model
    finally:
        for parent, name, child in reversed(swapped):
            child.train(getattr(parent, name).training)
            setattr(parent, name, child)


# ----------------------------------------------------------------------------- sharding
def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[start, stop)`` of rank's contiguous slice of ``n`` items; sizes differ by at most one."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size}")
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)
