"""A resumable, reproducible batch stream for supernet training.

Training must resume exactly where it stopped (bit-identical on CPU for the same seed). That needs
the order of samples *and* the randomness of data augmentation to be functions of the position in
the stream, not of how many batches a process happened to draw before it was killed. This module
provides both: a seeded permutation per epoch, and per-sample RNG seeding derived from
``(seed, epoch, index)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["ResumableBatches", "SeededDataset", "sample_seed"]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample of one epoch (SplitMix-style mixing, stable across runs)."""
    x = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 31
    x = (x * 0xD6E8FEB86659FD93) & (2**64 - 1)
    x ^= x >> 32
    return x & (2**63 - 1)


class SeededDataset(Dataset):
    """Wraps a dataset so that every ``__getitem__`` runs with RNGs seeded from (seed, epoch, index).

    The global torch, numpy and ``random`` states are restored afterwards, so the wrapper does not
    disturb any other randomness of the process.
    """

    def __init__(self, dataset: Dataset, *, seed: int, epoch: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        s = sample_seed(self.seed, self.epoch, index)
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            random.seed(s)
            np.random.seed(s % 2**32)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


class ResumableBatches:
    """An endless stream of batches over epochs, whose position can be saved and restored.

    Args:
        dataset: a map-style dataset.
        batch_size: samples per batch.
        collate_fn: how a list of samples becomes a batch.
        seed: seeds the per-epoch shuffling and the per-sample augmentation RNG.
        shuffle: shuffle each epoch (a permutation seeded by ``seed`` and the epoch).
        num_workers: DataLoader workers (results do not depend on it).
        shard: ``(rank, world_size)``: this process reads every ``world_size``-th batch.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        seed: int = 0,
        shuffle: bool = True,
        num_workers: int = 0,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        if n < batch_size * shard[1]:
            raise ValueError(
                f"dataset has {n} samples, fewer than one batch of {batch_size} per process"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.collate_fn = collate_fn
        self.seed = seed
        self.shuffle = shuffle
        self.num_workers = num_workers
        self.rank, self.world_size = shard
        self.epoch = 0
        self.position = 0  # batches of this epoch already handed out (global, across ranks)
        self._iter: Iterator[Any] | None = None

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        n = len(self.dataset)  # type: ignore[arg-type]
        if self.shuffle:
            g = torch.Generator().manual_seed(sample_seed(self.seed, epoch, -1))
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        per_round = self.batch_size * self.world_size
        usable = (n // per_round) * per_round  # drop the incomplete last round
        return [order[i : i + self.batch_size] for i in range(0, usable, self.batch_size)]

    @property
    def batches_per_epoch(self) -> int:
        n = len(self.dataset)  # type: ignore[arg-type]
        return n // (self.batch_size * self.world_size) * self.world_size

    def _start_epoch_iter(self) -> Iterator[Any]:
        batches = self._epoch_batches(self.epoch)
        mine: Sequence[list[int]] = [
            b for i, b in enumerate(batches) if i >= self.position and i % self.world_size == self.rank
        ]
        # A DataLoader draws its workers' base seed from ``generator``, or from the global RNG
        # when none is given; that draw would make the global RNG depend on where the stream was
        # (re)started, so it gets a generator of its own.
        loader = DataLoader(
            SeededDataset(self.dataset, seed=self.seed, epoch=self.epoch),
            batch_sampler=mine,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, -2)),
        )
        return iter(loader)

    def __iter__(self) -> ResumableBatches:
        return self

    def __next__(self) -> Any:
        while True:
            if self._iter is None:
                self._iter = self._start_epoch_iter()
            try:
                batch = next(self._iter)
            except StopIteration:
                self.epoch += 1
                self.position = 0
                self._iter = None
                continue
            self.position += self.world_size
            return batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.seed = int(state.get("seed", self.seed))
        self._iter = None
