"""A generic supernet training loop: one optimizer step per fair window, resumable bit for bit.

Each step draws one window of paths from a sampler and one batch per path, accumulates the
gradients of all paths (summed), optionally clips them, and takes one optimizer step. With the
strictly fair sampler every choice of every layer receives the same number of gradients per step.
Because gradients are *summed*, parameters used by more paths of a window receive proportionally
larger updates; :func:`~oneshot.train.component_param_groups` compensates with per-parameter learning-rate
multipliers (``k / m`` for a candidate of a ``k``-choice layer in an ``m``-path window, ``1 / m``
for shared parameters), which reproduces the reference code's backbone lr/3, head lr/2,
inter lr/4, shared lr/12 on the paper's space.

Under ``torchrun`` (a process group is initialised) every process draws the same windows from
the same seeded sampler, reads its own shard of the data, accumulates its window locally, and the
gradients are averaged across processes once per window
(:func:`oneshot.distributed.all_reduce_gradients`); rank 0 writes the checkpoints.

(Not split, at about 490 lines: the step, the checkpoint's state, the resume checks and the
distributed variant are one class whose parts must change together for a resumed run to stay
identical bit for bit.)
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from oneshot.distributed import (
    all_gather_object,
    all_reduce_gradients,
    broadcast_module,
    broadcast_object,
    check_consistent,
    get_rank,
    get_world_size,
    is_initialized,
    is_main,
    raise_if_any_failed,
    sync_batchnorm,
)
from oneshot.errors import CheckpointError, TrainingDiverged
from oneshot.interrupts import raise_if_interrupted
from oneshot.progress import progress_bar
from oneshot.sampling import Sampler
from oneshot.space import Architecture, SearchSpace
from oneshot.supernet import activate
from oneshot.train import checkpoint

__all__ = ["LossFn", "StandaloneTrainer", "SupernetTrainer", "TrainResult", "move_to_device"]

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, Any], "torch.Tensor | Mapping[str, torch.Tensor]"]
"""``loss_fn(model, batch)`` returns a scalar loss or a mapping of named losses (summed)."""


@dataclass
class TrainResult:
    """What one call of :meth:`SupernetTrainer.fit` did.

    Attributes:
        steps: optimizer steps taken in total (resumed ones included).
        losses: loss of every step taken *by this call* (mean over the window's paths); empty
            when a resumed run had nothing left to do.
        seconds: wall time of this call's training.
        resumed_from: the step this call resumed from, or ``None`` for a fresh start.
        history: loss of every step since step 0, resumed ones included (what is checkpointed).
    """

    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int | None = None
    history: list[float] = field(default_factory=list)

    @property
    def steps_this_run(self) -> int:
        """Optimizer steps taken by this call."""
        return len(self.losses)


class SupernetTrainer:
    """Trains a supernet one fair window per optimizer step, with atomic, exact-resume checkpoints.

    Args:
        model: the supernet (holding :class:`ChoiceLayer` s), or a standalone model.
        sampler: yields one window of architectures per step (e.g. :class:`~oneshot.FairSampler`);
            ``None`` trains a standalone (frozen) model, one batch per step.
        batches: an endless iterator of batches; if it has ``state_dict``/``load_state_dict``
            (like :class:`~oneshot.data.ResumableBatches`) its position is checkpointed too.
        loss_fn: ``loss_fn(model, batch)`` for the active path: a scalar or a dict of losses.
        optimizer: built over the model's parameters (see :func:`~oneshot.train.component_param_groups`).
        scheduler: optional, stepped once per optimizer step.
        run_dir: where ``checkpoint.pt`` lives; ``None`` disables checkpoints and resume.
        checkpoint_every: optimizer steps between checkpoints (and one at the end).
        grad_clip: max global gradient norm, or ``None``.
        amp: mixed precision (float16 autocast + grad scaling); only on CUDA.
        device: where batches are moved by ``move_batch`` (the model must already be there).
        move_batch: ``move_batch(batch, device)``; default moves tensors in nested lists/dicts.
        progress: show a tqdm bar with loss and ETA.
        on_step: ``(step, loss, arch)`` after every path's backward pass (this process's loss).
        after_step: ``(step)`` after every optimizer step (and its checkpoint, if any).
        distributed: average gradients across the processes of the ``torch.distributed`` job once
            per window; ``None`` (default) = whenever a process group is initialised. Every
            process must build the same model, sampler (same seed) and optimizer; ``batches``
            must be this process's shard (``shard=(rank, world_size)``). Parameters and buffers
            are broadcast from rank 0 on construction; BatchNorm running statistics are averaged
            once per window; only rank 0 writes checkpoints, which hold every rank's RNG state.
        sync_batchnorm: with ``distributed``, BatchNorm layers normalise with the statistics of
            the whole global batch (:class:`torch.nn.SyncBatchNorm`, GPUs only) while training.
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
        distributed: bool | None = None,
        sync_batchnorm: bool = False,
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
        self.move_batch = move_batch or move_to_device
        self.progress = progress
        self.on_step = on_step
        self.after_step = after_step
        self.checkpoint_name = checkpoint_name
        self.space = SearchSpace.from_module(model) if sampler is not None else None
        self.step = 0
        self.losses: list[float] = []
        self.last_saved: int | None = None  # step of the last checkpoint written or resumed from
        #: Written into every checkpoint (e.g. the provenance of the config that made it).
        self.extra_state: dict[str, Any] = {}
        #: Called with a checkpoint's state before it is resumed: raises to refuse it; returns
        #: ``True`` to keep this trainer's learning rates and clipping instead of the checkpoint's.
        self.resume_check: Callable[[Mapping[str, Any]], bool] | None = None
        self._init_distributed(distributed, sync_batchnorm)

    def _init_distributed(self, distributed: bool | None, sync_bn: bool) -> None:
        if distributed and not is_initialized():
            raise ValueError(
                "distributed=True needs an initialised process group (oneshot.distributed.init_distributed())"
            )
        self.distributed = is_initialized() if distributed is None else bool(distributed)
        self.rank = get_rank() if self.distributed else 0
        self.world_size = get_world_size() if self.distributed else 1
        self.sync_batchnorm = bool(sync_bn) and self.distributed and self.world_size > 1
        if self.sync_batchnorm and self.device.type == "cpu":
            raise ValueError("sync_batchnorm needs GPUs (PyTorch's SyncBatchNorm does not run on CPU)")
        if not self.distributed:
            self._bn_stats: list[torch.Tensor] = []
            return
        shard = (getattr(self.batches, "rank", None), getattr(self.batches, "world_size", None))
        if shard[1] is not None and shard != (self.rank, self.world_size):
            raise ValueError(
                f"training batches are shard {shard[0]} of {shard[1]}, but this is rank {self.rank} of "
                f"{self.world_size}; build them with shard=(rank, world_size)"
            )
        # Running statistics differ between processes (each normalises its own shard); they are
        # averaged once per window. With SyncBatchNorm they are equal everywhere already.
        self._bn_stats = [] if self.sync_batchnorm or self.world_size == 1 else [
            t
            for m in self.model.modules()
            if isinstance(m, _BatchNorm) and m.track_running_stats
            for t in (m.running_mean, m.running_var)
            if t is not None
        ]
        broadcast_module(self.model)  # every process starts from rank 0's weights

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
            "rng": checkpoint.rng_state(),
            **self.extra_state,
        }
        if self.distributed:  # collective: every process's RNG streams, so each resumes its own
            per_rank = all_gather_object(state["rng"])
            state.update(rng=per_rank[0], rng_per_rank=per_rank, world_size=self.world_size)
        return state

    def load_state_dict(self, state: Mapping[str, Any], *, source: str = "checkpoint") -> None:
        if state.get("space") != (self.space.signature() if self.space is not None else None):
            raise CheckpointError(f"{source} was written for a different search space")
        keep_lr = bool(self.resume_check(state)) if self.resume_check is not None else False
        bad = checkpoint.nonfinite_tensors(state.get("model", {}))
        if bad:
            raise CheckpointError(f"{source} holds non-finite values (in {bad[0]}); delete it to train from scratch")
        fresh_lrs = [g.get("initial_lr", g["lr"]) for g in self.optimizer.param_groups]
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"{source} does not fit this model: {first}") from None
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if keep_lr:
            self._rescale_lr(fresh_lrs)
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        if self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])
        if state.get("batches") is not None and hasattr(self.batches, "load_state_dict"):
            self.batches.load_state_dict(state["batches"])
        checkpoint.set_rng_state(self._own_rng_state(state, source))
        self.step = int(state["step"])
        self.losses = list(state["losses"])

    def _rescale_lr(self, fresh_lrs: list[float]) -> None:
        """After resuming, use this trainer's base learning rates (e.g. a lower ``train.lr`` to
        restart a diverged run) at the checkpoint's point of the schedule."""
        base_lrs = getattr(self.scheduler, "base_lrs", None)
        for i, (group, fresh) in enumerate(zip(self.optimizer.param_groups, fresh_lrs, strict=True)):
            old = group.get("initial_lr", group["lr"])
            ratio = fresh / old if old else 1.0
            for key in ("lr", "initial_lr", "max_lr", "min_lr"):
                if key in group:
                    group[key] *= ratio
            if base_lrs is not None:
                base_lrs[i] *= ratio
        last = getattr(self.scheduler, "_last_lr", None)
        if last is not None:
            self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]  # type: ignore[union-attr]

    def _diverged(self, reason: str, step: int | None = None) -> TrainingDiverged:
        """The error for a non-finite state found at optimizer step ``step`` (1-based; default:
        the step just taken)."""
        step = self.step if step is None else step
        last = f"; the last checkpoint is from step {self.last_saved}" if self.last_saved is not None else ""
        return TrainingDiverged(
            f"training diverged at step {step}: {reason}{last}; lower the learning rate or clip gradients",
            step=step, reason=reason, last_good=self.last_saved,
        )

    def _own_rng_state(self, state: Mapping[str, Any], source: str) -> Mapping[str, Any]:
        """This process's RNG state from a checkpoint (rank 0's for a one-process checkpoint)."""
        per_rank = state.get("rng_per_rank")
        if not self.distributed or not per_rank:
            return state["rng"]
        if len(per_rank) != self.world_size:
            log.warning(
                "%s was written by %d processes and is resumed by %d: training continues, "
                "but not bit-identically to an uninterrupted run",
                source, len(per_rank), self.world_size,
            )
        return per_rank[self.rank % len(per_rank)]

    def save(self) -> None:
        """Write the checkpoint (collective under ``distributed``: rank 0 writes, the others wait)."""
        if self.checkpoint_path is None:
            return
        if not checkpoint.all_finite(self.model.state_dict().values()):  # never save a diverged state
            raise self._diverged("the parameters are not finite")
        state = self.state_dict()
        if not self.distributed:
            checkpoint.save_checkpoint(self.checkpoint_path, state)
            self.last_saved = self.step
            return
        error = None
        if is_main():
            try:
                checkpoint.save_checkpoint(self.checkpoint_path, state)
            except Exception as exc:  # every process must learn of it, not wait forever
                error = exc
        raise_if_any_failed(error, "writing the checkpoint")
        self.last_saved = self.step

    def try_resume(self) -> bool:
        """Load ``run_dir/checkpoint.pt`` when it exists. Returns whether it resumed.

        Under ``distributed`` rank 0 decides whether a checkpoint exists and every process loads
        the same file (the run directory must be on a shared file system).
        """
        path = self.checkpoint_path
        if path is None:
            return False
        exists = broadcast_object(path.exists()) if self.distributed else path.exists()
        if not exists:
            return False
        if not self.distributed:
            self.load_state_dict(checkpoint.load_checkpoint(path, map_location=self.device), source=str(path))
            self.last_saved = self.step
            return True
        error = None
        try:
            self.load_state_dict(checkpoint.load_checkpoint(path, map_location=self.device), source=str(path))
        except Exception as exc:
            error = exc
        raise_if_any_failed(error, f"resuming from {path}")
        self.last_saved = self.step
        return True

    def _fingerprint(self) -> str:
        """What must agree across processes before training: step, sampler and data position."""
        sampler = self.sampler.state_dict() if self.sampler is not None else None
        batches = self.batches.state_dict() if hasattr(self.batches, "state_dict") else None
        return repr((self.step, sampler, batches, self.space.signature() if self.space is not None else None))

    # ----------------------------------------------------------------- training
    def train_step(self) -> float:
        """One optimizer step over one window of paths; returns the mean loss of the window."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        window: list[Architecture | None] = list(self.sampler.next_window()) if self.sampler is not None else [None]
        total = 0.0
        failure: str | None = None
        bn_start = [t.clone() for t in self._bn_stats]
        with sync_batchnorm(self.model) if self.sync_batchnorm else contextlib.nullcontext():
            for arch in window:
                loss = self._path_backward(arch)
                if not math.isfinite(loss):
                    failure = failure or (
                        f"the loss is {loss}"
                        + (f" for architecture {arch.key}" if arch is not None else "")
                        + (f" on rank {self.rank}" if self.distributed else "")
                    )
                    if not self.distributed:
                        raise self._diverged(failure, self.step + 1)
                total += loss
        if self.distributed:
            # one collective: gradients, running-statistics deltas, the window's loss
            for t, start in zip(self._bn_stats, bn_start, strict=True):
                t.sub_(start)
            (total,) = all_reduce_gradients(self.model.parameters(), buffers=self._bn_stats, scalars=[total])
            for t, start in zip(self._bn_stats, bn_start, strict=True):
                t.add_(start)
            total /= self.world_size
            if failure is not None:
                raise self._diverged(failure, self.step + 1)
            if not math.isfinite(total):
                raise self._diverged("the loss is not finite on another process", self.step + 1)
        self._optimizer_step()
        # Checked after every update (the last one too): a blow-up never reaches a checkpoint.
        if not checkpoint.all_finite(self.model.parameters()):
            raise self._diverged("the parameters are not finite after the update")
        mean = total / len(window)
        self.losses.append(mean)
        return mean

    def _path_backward(self, arch: Architecture | None) -> float:
        """Forward and backward of one path on the next batch; returns its loss.

        A non-finite loss is returned without a backward pass (the caller raises).
        """
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
            value = float(loss.detach())
            if not math.isfinite(value):
                return value
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
        if self.on_step is not None and arch is not None:
            self.on_step(self.step, value, arch)
        return value

    def _optimizer_step(self) -> None:
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
        if self.distributed:
            check_consistent(self._fingerprint(), "the training state (step, sampler, data position)")
        first_step = len(self.losses)  # what this call trains starts here (after any resume)
        start = time.perf_counter()
        bar = None
        if self.progress and (not self.distributed or self.rank == 0):
            bar = progress_bar(total=num_steps, initial=self.step, desc=desc, unit="step")
        try:
            while self.step < num_steps:
                loss = self.train_step()
                if bar is not None:
                    lr = self.optimizer.param_groups[0]["lr"] / self.optimizer.param_groups[0].get("lr_multiplier", 1.0)
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
                    bar.update(1)
                if self.step % self.checkpoint_every == 0 or self.step == num_steps:
                    self.save()
                if self.after_step is not None:
                    self.after_step(self.step)
                raise_if_interrupted()
        finally:
            if bar is not None:
                bar.close()
        return TrainResult(
            steps=self.step,
            losses=list(self.losses[first_step:]),
            seconds=time.perf_counter() - start,
            resumed_from=resumed_from,
            history=list(self.losses),
        )


class StandaloneTrainer(SupernetTrainer):
    """Trains a standalone model (e.g. a frozen architecture retrained from scratch): one batch
    per optimizer step, with the same checkpoints, exact resume, clipping, AMP and distributed
    gradient averaging as :class:`SupernetTrainer` (whose arguments it takes, less ``sampler``)."""

    def __init__(self, model: nn.Module, **kwargs: Any) -> None:
        if "sampler" in kwargs:
            raise TypeError("StandaloneTrainer trains one fixed model: it takes no sampler")
        super().__init__(model, sampler=None, **kwargs)


def move_to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch
