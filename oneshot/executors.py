"""Where a study's evaluations run, and how a run's evaluation store is shared between processes.

:class:`LocalExecutor` evaluates in this process. :class:`ShardedExecutor` splits each batch of
candidates across the processes of a ``torchrun`` job (:func:`sharded_map`): every process
evaluates a contiguous slice and appends its results to the shared store file at once, looks
evaluations up through a :class:`StoreReplica`, and receives the gathered results, so every
process sees the same (see ``docs/distributed.md``).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from oneshot.distributed import (
    DistributedError,
    all_gather_object,
    barrier,
    get_rank,
    get_world_size,
    is_main,
    raise_if_any_failed,
    shard_bounds,
)
from oneshot.search.base import HistoryEntry
from oneshot.space import Architecture, SearchSpace

if TYPE_CHECKING:
    from oneshot.search.store import EvaluationStore

__all__ = ["Executor", "LocalExecutor", "ShardedExecutor", "StoreReplica", "StoreView", "default_executor", "sharded_map"]

T = TypeVar("T")
R = TypeVar("R")


class StoreView(Protocol):
    """What a study reads and records evaluations through (an EvaluationStore or a replica)."""

    def get(self, arch: Architecture) -> HistoryEntry | None: ...
    def add(self, entry: HistoryEntry) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[HistoryEntry]: ...


# ----------------------------------------------------------------------------- executors
def sharded_map(fn: Callable[[list[T]], Sequence[R]], items: Sequence[T], *, key: Callable[[T], Any] | None = None) -> list[R]:
    """``fn(items)`` computed in parallel: each process maps its contiguous slice, results gathered.

    Every process must call it with the same ``items`` (checked through ``key(item)`` when
    given); all get the full list of results in item order. If ``fn`` fails on one process,
    every process raises. In a single process this is ``fn(items)``.
    """
    items = list(items)
    world = get_world_size()
    if world == 1:
        out = list(fn(items)) if items else []
        if len(out) != len(items):
            raise ValueError(f"sharded function returned {len(out)} results for {len(items)} items")
        return out
    start, stop = shard_bounds(len(items), get_rank(), world)
    mine = items[start:stop]
    keys = [key(i) for i in items] if key is not None else len(items)
    error: BaseException | None = None
    results: list[R] = []
    try:
        results = list(fn(mine)) if mine else []
        if len(results) != len(mine):
            raise ValueError(f"sharded function returned {len(results)} results for {len(mine)} items")
    except Exception as exc:  # reported to every process below
        error = exc
    gathered = all_gather_object((keys, None if error is None else f"{type(error).__name__}: {error}", results))
    if error is not None:
        raise error
    for rank, (_, message, _) in enumerate(gathered):
        if message is not None:
            raise DistributedError(f"evaluation failed on rank {rank}: {message}")
    disagree = [rank for rank, (k, _, _) in enumerate(gathered) if k != gathered[0][0]]
    if disagree:
        raise DistributedError(
            f"processes were asked to evaluate different candidates (rank 0 vs rank(s) {disagree}); "
            "every rank must run the same searcher, seed and evaluation store"
        )
    return [r for _, _, rs in gathered for r in rs]


class Executor(ABC):
    """Where evaluations run, and how a run's evaluation store is shared between processes."""

    @abstractmethod
    def map(self, fn: Callable[[list[Architecture]], Sequence[R]], archs: Sequence[Architecture]) -> list[R]:
        """``fn`` over ``archs`` (possibly split across processes); results for all, in order."""

    @abstractmethod
    def open_store(self, path: str | os.PathLike[str], space: SearchSpace) -> tuple[EvaluationStore, StoreView]:
        """``(file, view)``: the store file this process appends its results to, and the view
        through which it looks evaluations up (identical on every process)."""


class LocalExecutor(Executor):
    """Everything in this process."""

    def map(self, fn: Callable[[list[Architecture]], Sequence[R]], archs: Sequence[Architecture]) -> list[R]:
        return list(fn(list(archs))) if archs else []

    def open_store(self, path: str | os.PathLike[str], space: SearchSpace) -> tuple[EvaluationStore, StoreView]:
        from oneshot.search.store import EvaluationStore

        store = EvaluationStore(path, space=space)
        return store, store


class ShardedExecutor(Executor):
    """Candidates split across the processes of a ``torchrun`` job (see docs/distributed.md).

    Each candidate is evaluated exactly as one process would evaluate it, so a sharded search
    equals a one-process search as long as a candidate's value does not depend on which other
    candidates the same process evaluated before it.
    """

    def map(self, fn: Callable[[list[Architecture]], Sequence[R]], archs: Sequence[Architecture]) -> list[R]:
        return sharded_map(fn, archs, key=lambda a: a.key)

    def open_store(self, path: str | os.PathLike[str], space: SearchSpace) -> tuple[EvaluationStore, StoreView]:
        """Collective. Rank 0 creates the file; every process appends what it computes to it
        (appends are locked) and looks up through a :class:`StoreReplica` read once the file
        exists, so every process skips exactly the same stored architectures."""
        from oneshot.search.store import EvaluationStore

        error: BaseException | None = None
        if is_main():
            try:
                EvaluationStore(path, space=space)
            except Exception as exc:
                error = exc
        raise_if_any_failed(error, f"opening the evaluation store {os.fspath(path)}")
        file = EvaluationStore(path, space=space)
        view = StoreReplica(path, space=space)
        barrier()
        return file, view


def default_executor() -> Executor:
    """:class:`ShardedExecutor` inside a ``torchrun`` job, else :class:`LocalExecutor`."""
    return ShardedExecutor() if get_world_size() > 1 else LocalExecutor()


class StoreReplica:
    """An in-memory, read-once copy of an :class:`~oneshot.search.EvaluationStore`.

    In a job every process appends what it computes to the store file; the searchers look up
    through this replica, read once and then told the gathered results, so its contents evolve
    identically on every process without racing on the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, space: SearchSpace) -> None:
        from oneshot.search.store import EvaluationStore, StoreError

        self.path = os.fspath(path)
        if not os.path.isfile(self.path) or os.path.getsize(self.path) == 0:
            raise StoreError(f"evaluation store {self.path} does not exist yet; rank 0 must create it first")
        store = EvaluationStore(self.path, space=space)
        self.space = space
        self._entries: dict[str, HistoryEntry] = {e.arch.key: e for e in store}
        self._partials: dict[tuple[str, float], HistoryEntry] = {
            (e.arch.key, fraction): e for fraction, e in store.partials()
        }

    def bind(self, space: SearchSpace) -> None:
        from oneshot.search.store import StoreError

        if space.signature() != self.space.signature():
            raise StoreError(f"evaluation store {self.path} is bound to another search space")

    def get(self, arch: Architecture) -> HistoryEntry | None:
        return self._entries.get(arch.key)

    def add(self, entry: HistoryEntry) -> None:
        self._entries.setdefault(self.space.validate(entry.arch).key, entry)

    def get_partial(self, arch: Architecture, fraction: float) -> HistoryEntry | None:
        return self._partials.get((arch.key, float(fraction)))

    def add_partial(self, entry: HistoryEntry, fraction: float) -> None:
        self._partials.setdefault((self.space.validate(entry.arch).key, float(fraction)), entry)

    def __contains__(self, arch: object) -> bool:
        return isinstance(arch, Architecture) and arch.key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[HistoryEntry]:
        return iter(list(self._entries.values()))

    def __repr__(self) -> str:
        return f"StoreReplica({self.path!r}, {len(self._entries)} evaluations)"
