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

With :class:`Racing` (multi-fidelity evaluation), a candidate is first scored on a fraction of
the evaluation data and evaluated in full only if it can still matter: if its partial score,
corrected by the mean partial-to-full difference seen so far and widened by ``z`` standard
deviations of that difference, reaches the ``top_k``-th best full score known. Otherwise the
searcher is told the partial score, marked with its ``fidelity``. Partial evaluations are stored
as such and never taken for full ones.

The pipeline, the benchmarks, the examples and :meth:`Searcher.run` all go through it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from oneshot.distributed import DistributedError
from oneshot.executors import (
    Executor,
    LocalExecutor,
    ShardedExecutor,
    StoreReplica,
    StoreView,
    default_executor,
    sharded_map,
)
from oneshot.search.base import BatchFitness, Evaluation, Fitness, HistoryEntry
from oneshot.space import Architecture, SearchSpace

if TYPE_CHECKING:
    from oneshot.search.base import Searcher, SearchResult
    from oneshot.search.store import EvaluationStore

# Executors are re-exported: a study and where it runs are used together.
__all__ = [
    "DistributedError",
    "Executor",
    "LocalExecutor",
    "Racing",
    "ShardedExecutor",
    "StoreReplica",
    "StoreView",
    "Study",
    "default_executor",
    "sharded_map",
]


# ----------------------------------------------------------------------------- racing
@dataclass(frozen=True)
class Racing:
    """Multi-fidelity evaluation: score on ``fraction`` of the data first; evaluate in full only
    the candidates that can still reach the ``top_k`` best full scores.

    A candidate is promoted when ``partial + mean(d) + z * sd(d) >= threshold``, where ``d`` are
    the (full - partial) differences of the candidates evaluated both ways so far and
    ``threshold`` is the ``top_k``-th best full score known before its batch. Until
    ``min_pairs`` such pairs exist (or fewer than ``top_k`` full scores), every candidate is
    promoted: the rule never drops a candidate before it can estimate how partial and full
    scores differ. With normally distributed differences, a candidate whose full score would
    reach the threshold is dropped with probability about ``1 - Phi(z)`` (2.3 % at ``z = 2``).
    """

    fraction: float = 0.25
    top_k: int = 1
    z: float = 2.0
    min_pairs: int = 4

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"racing fraction must be in (0, 1), got {self.fraction}")
        if self.top_k < 1 or self.min_pairs < 2 or self.z < 0:
            raise ValueError("racing needs top_k >= 1, min_pairs >= 2 and z >= 0")

    def threshold(self, fulls: Sequence[float], pairs: Sequence[tuple[float, float]]) -> float | None:
        """The lowest partial score still promoted, given the full scores and (partial, full)
        pairs known; ``None`` when every candidate must be promoted (too few of either)."""
        if len(pairs) < self.min_pairs or len(fulls) < self.top_k:
            return None
        diffs = np.array([full - part for part, full in pairs])
        target = sorted(fulls, reverse=True)[self.top_k - 1]
        return target - float(diffs.mean()) - self.z * float(diffs.std(ddof=1))

    def promote(self, partial: float, fulls: Sequence[float], pairs: Sequence[tuple[float, float]]) -> bool:
        """Whether a candidate with this ``partial`` score must be evaluated in full."""
        lowest = self.threshold(fulls, pairs)
        return lowest is None or partial >= lowest


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
        racing: multi-fidelity evaluation (:class:`Racing`); then ``evaluate`` must accept a
            ``fraction=`` keyword (the share of the evaluation data to score on).
    """

    def __init__(
        self,
        evaluate: Fitness,
        *,
        store: EvaluationStore | str | os.PathLike[str] | None = None,
        space: SearchSpace | None = None,
        executor: Executor | None = None,
        racing: Racing | None = None,
    ) -> None:
        self.fitness = evaluate
        self.racing = racing
        if racing is not None and isinstance(evaluate, BatchFitness):
            raise ValueError("racing needs a per-architecture fitness taking fraction=, not a batch fitness")
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
        self._pairs: list[tuple[float, float]] = []  # (partial, full) of candidates evaluated both ways
        self._partial_seen: dict[Architecture, HistoryEntry] = {}
        self.num_computed = 0  # evaluations computed by this study (not served from the store)
        self.num_partial = 0  # of which on a fraction of the data (racing)

    def __len__(self) -> int:
        return len(self.view) if self.view is not None else len(self._known)

    @property
    def cost(self) -> float:
        """Evaluation data spent by this study, in full evaluations (a partial one = the fraction)."""
        fraction = self.racing.fraction if self.racing is not None else 1.0
        return self.num_computed - self.num_partial * (1.0 - fraction)

    def get(self, arch: Architecture) -> HistoryEntry | None:
        """The recorded (full) evaluation of ``arch``, or ``None``."""
        entry = self._known.get(arch)
        if entry is None and self.view is not None:
            entry = self.view.get(arch)
            if entry is not None:
                self._known[arch] = entry
                if self.racing is not None:  # a stored pair informs the racing rule, as a computed one did
                    partial = self._get_partial(arch)
                    if partial is not None:
                        self._pairs.append((partial.fitness, entry.fitness))
        return entry

    def evaluate(self, archs: Sequence[Architecture], *, full: bool = False) -> list[HistoryEntry]:
        """The evaluations of ``archs`` in order; those not known yet are computed and recorded.

        With racing, a candidate that cannot matter gets a partial evaluation (its entry's
        ``fidelity`` < 1) unless ``full=True`` (e.g. the report's candidates).
        """
        # the racing rule sees what was known before this batch, whatever the store serves now,
        # so a resumed search decides exactly as the uninterrupted one did
        before = ([e.fitness for e in self._known.values()], list(self._pairs))
        missing = list(dict.fromkeys(a for a in archs if self.get(a) is None))
        if missing and self.racing is not None and not full:
            missing = self._race(missing, *before)
        if missing:
            self._compute_full(missing)
        return [self._known.get(a) or self._partial_seen[a] for a in archs]

    def _compute_full(self, archs: list[Architecture]) -> None:
        for entry in self.executor.map(self._compute, archs):
            self._known[entry.arch] = entry
            if self.view is not None and self.view is not self._file:
                self.view.add(entry)  # a replica learns what other processes computed
            partial = self._partial_seen.get(entry.arch)
            if partial is not None:
                self._pairs.append((partial.fitness, entry.fitness))

    def _race(self, archs: list[Architecture], fulls: list[float], pairs: list[tuple[float, float]]) -> list[Architecture]:
        """Partial evaluations of ``archs``; returns those to evaluate in full (in order)."""
        assert self.racing is not None
        fraction = self.racing.fraction
        todo = [a for a in archs if self._get_partial(a) is None]
        for entry in self.executor.map(lambda batch: self._compute(batch, fraction=fraction), todo):
            self._partial_seen[entry.arch] = entry
            if self.view is not None and self.view is not self._file:
                self.view.add_partial(entry, fraction)  # type: ignore[attr-defined]
        lowest = self.racing.threshold(fulls, pairs)  # one rule for the whole batch
        return [a for a in archs if lowest is None or self._partial_seen[a].fitness >= lowest]

    def _get_partial(self, arch: Architecture) -> HistoryEntry | None:
        assert self.racing is not None
        entry = self._partial_seen.get(arch)
        if entry is None and self.view is not None:
            entry = self.view.get_partial(arch, self.racing.fraction)  # type: ignore[attr-defined]
            if entry is not None:
                entry = replace(entry, fidelity=self.racing.fraction)
                self._partial_seen[arch] = entry
        return entry

    def _record(self, entry: HistoryEntry) -> HistoryEntry:
        if self._file is not None:
            if entry.fidelity < 1.0:
                self._file.add_partial(entry, entry.fidelity)  # type: ignore[attr-defined]
            else:
                self._file.add(entry)
        self.num_computed += 1
        self.num_partial += entry.fidelity < 1.0
        return entry

    def _compute(self, archs: list[Architecture], *, fraction: float = 1.0) -> list[HistoryEntry]:
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
            value = self.fitness(arch, fraction=fraction) if self.racing is not None else self.fitness(arch)  # type: ignore[call-arg]
            out.append(self._record(_entry(arch, value, time.perf_counter() - start, fraction)))
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


def _entry(arch: Architecture, value: Any, seconds: float, fidelity: float = 1.0) -> HistoryEntry:
    ev = Evaluation.from_value(value, arch=arch)
    return HistoryEntry(arch, ev.fitness, seconds, ev.metrics, fidelity)
