"""The Study: the one place where an architecture is looked up, evaluated, timed and recorded.

Searchers are pure ask/tell (:class:`~oneshot.search.Searcher`); they never see a store. A
:class:`Study` owns the :class:`~oneshot.search.EvaluationStore` (or none) and an
:class:`Executor`, and :meth:`Study.optimize` drives a searcher through :meth:`Study.evaluate`:

1. every architecture already known (in this study or in the store) is served from there and
   never evaluated twice;
2. the missing ones are evaluated through the executor: in one process by
   :class:`LocalExecutor`, or split across the processes of a ``torchrun`` job by
   :class:`ShardedExecutor` (each process evaluates a contiguous slice and appends its results to
   the shared store file at once; the results are gathered so that every process sees the same);
3. each result is timed and recorded as soon as it exists, so an interrupted search loses at
   most the candidates in flight and resumes from the store.

The pipeline, the benchmarks, the examples and :meth:`Searcher.run` all go through it.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
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
from oneshot.search.base import BatchFitness, Evaluation, Fitness, HistoryEntry
from oneshot.space import Architecture, SearchSpace

if TYPE_CHECKING:
    from oneshot.search.base import Searcher, SearchResult
    from oneshot.search.store import EvaluationStore

__all__ = [
    "DistributedError",
    "Executor",
    "LocalExecutor",
    "ShardedExecutor",
    "StoreReplica",
    "StoreView",
    "Study",
    "default_executor",
    "sharded_map",
]

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

    def bind(self, space: SearchSpace) -> None:
        from oneshot.search.store import StoreError

        if space.signature() != self.space.signature():
            raise StoreError(f"evaluation store {self.path} is bound to another search space")

    def get(self, arch: Architecture) -> HistoryEntry | None:
        return self._entries.get(arch.key)

    def add(self, entry: HistoryEntry) -> None:
        self._entries.setdefault(self.space.validate(entry.arch).key, entry)

    def __contains__(self, arch: object) -> bool:
        return isinstance(arch, Architecture) and arch.key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[HistoryEntry]:
        return iter(list(self._entries.values()))

    def __repr__(self) -> str:
        return f"StoreReplica({self.path!r}, {len(self._entries)} evaluations)"


# ----------------------------------------------------------------------------- the study
class Study:
    """Owns the evaluations of architectures: look-up, evaluation, timing, recording.

    Args:
        evaluate: ``arch -> value`` (a float or a mapping with ``"fitness"`` and other metrics),
            or a :class:`~oneshot.search.BatchFitness` evaluating several at once.
        store: an :class:`~oneshot.search.EvaluationStore`, the path of one (opened through the
            executor, which a ``torchrun`` job needs; then ``space`` is required), or ``None``
            to keep evaluations in memory only.
        space: the search space the store is bound to (needed with a store path).
        executor: where evaluations run; default :func:`default_executor`.
    """

    def __init__(
        self,
        evaluate: Fitness,
        *,
        store: EvaluationStore | str | os.PathLike[str] | None = None,
        space: SearchSpace | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.fitness = evaluate
        self.executor = executor if executor is not None else default_executor()
        self._file: StoreView | None
        self.view: StoreView | None
        if store is None:
            self._file = self.view = None
        elif isinstance(store, (str, Path, os.PathLike)):
            if space is None:
                raise ValueError("Study(store=PATH) needs the search space (space=...)")
            self._file, self.view = self.executor.open_store(store, space)
        else:
            if space is not None:
                store.bind(space)
            self._file = self.view = store
        self._known: dict[Architecture, HistoryEntry] = {}
        self.num_computed = 0  # evaluations computed by this study (not served from the store)

    def __len__(self) -> int:
        return len(self.view) if self.view is not None else len(self._known)

    def get(self, arch: Architecture) -> HistoryEntry | None:
        """The recorded evaluation of ``arch``, or ``None``."""
        entry = self._known.get(arch)
        if entry is None and self.view is not None:
            entry = self.view.get(arch)
            if entry is not None:
                self._known[arch] = entry
        return entry

    def evaluate(self, archs: Sequence[Architecture]) -> list[HistoryEntry]:
        """The evaluations of ``archs`` in order; those not known yet are computed and recorded."""
        missing = list(dict.fromkeys(a for a in archs if self.get(a) is None))
        if missing:
            for entry in self.executor.map(self._compute, missing):
                self._known[entry.arch] = entry
                if self.view is not None and self.view is not self._file:
                    self.view.add(entry)  # a replica learns what other processes computed
        return [self._known[a] for a in archs]

    def _record(self, entry: HistoryEntry) -> HistoryEntry:
        if self._file is not None:
            self._file.add(entry)
        self.num_computed += 1
        return entry

    def _compute(self, archs: list[Architecture]) -> list[HistoryEntry]:
        """Evaluate ``archs`` in this process, recording each result as soon as it exists."""
        if isinstance(self.fitness, BatchFitness):
            start = time.perf_counter()
            values = list(self.fitness(archs))
            if len(values) != len(archs):
                raise ValueError(f"batch fitness returned {len(values)} values for {len(archs)} architectures")
            per = (time.perf_counter() - start) / len(archs)
            return [self._record(_entry(arch, value, per)) for arch, value in zip(archs, values, strict=True)]
        out = []
        for arch in archs:
            start = time.perf_counter()
            value = self.fitness(arch)
            out.append(self._record(_entry(arch, value, time.perf_counter() - start)))
        return out

    def optimize(
        self,
        searcher: Searcher,
        *,
        progress: bool | Callable[[int, HistoryEntry], None] = False,
    ) -> SearchResult:
        """Drive ``searcher`` (ask/tell) until it is done; every evaluation goes through :meth:`evaluate`.

        ``progress``: ``True`` for a tqdm bar, or a callback ``(number told so far, entry)``.
        """
        bar = None
        if progress is True:
            from oneshot.progress import progress_bar

            bar = progress_bar(total=searcher.max_evaluations, desc=searcher.name or type(searcher).__name__, unit="eval")
        told = 0
        try:
            while True:
                batch = searcher.ask()
                if not batch:
                    break
                entries = self.evaluate(batch)
                searcher.tell(entries)
                for entry in entries:
                    told += 1
                    if bar is not None:
                        bar.update(1)
                    elif callable(progress) and progress is not False:
                        progress(told, entry)
        finally:
            if bar is not None:
                bar.close()
        return searcher.result()


def _entry(arch: Architecture, value: Any, seconds: float) -> HistoryEntry:
    ev = Evaluation.from_value(value, arch=arch)
    return HistoryEntry(arch, ev.fitness, seconds, ev.metrics)
