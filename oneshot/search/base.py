"""The searcher interface: ask/tell, fitness protocols, evaluation records and search results.

A *fitness* maps architectures to a number where higher is better. It comes in two forms:

* a per-architecture callable ``f(arch) -> value``;
* a :class:`BatchFitness` (subclass it, or wrap a function with :func:`batch_fitness`) that
  evaluates a whole batch at once: ``f([arch, ...]) -> [value, ...]``. A searcher's batch is what
  :meth:`Searcher.ask` returns, e.g. one fair window for path-priority.

A *value* is a float or a mapping with a ``"fitness"`` key plus any extra metrics
(e.g. ``{"fitness": 41.2, "pq": 41.2, "sq": 78.0, "rq": 50.1}``); both are normalised into an
:class:`Evaluation`. Metrics are kept in the history and the evaluation store.

(A little over 400 lines: the searcher protocol and the records it reads and returns are one
interface, kept in one place.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from oneshot.errors import OneshotError
from oneshot.search.objectives import as_number
from oneshot.search.options import SearcherOptions
from oneshot.space import Architecture, SearchSpace

if TYPE_CHECKING:
    from oneshot.search.store import EvaluationStore

__all__ = [
    "BatchFitness",
    "BudgetSearcher",
    "Constraint",
    "Evaluation",
    "Fitness",
    "FitnessValue",
    "HistoryEntry",
    "SearchError",
    "SearchResult",
    "Searcher",
    "batch_fitness",
]

FitnessValue = float | Mapping[str, Any]
Constraint = Callable[[Architecture], bool]


class SearchError(OneshotError):
    """A search cannot go on (e.g. the constraint rejects every architecture it tried)."""


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one architecture: its fitness and optional extra metrics."""

    fitness: float
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_value(cls, value: FitnessValue | Evaluation, *, arch: Architecture | None = None) -> Evaluation:
        """Normalise what a fitness returned (float, mapping with ``"fitness"``, or Evaluation)."""
        where = f" for {arch.key}" if arch is not None else ""
        if isinstance(value, Evaluation):
            return value
        if isinstance(value, Mapping):
            if "fitness" not in value:
                raise ValueError(
                    f"fitness{where} returned a mapping without a 'fitness' key: {sorted(value)}"
                )
            fitness = as_number(value["fitness"], f"fitness{where}")
            metrics = {str(k): _as_metric(v, k, where) for k, v in value.items() if k != "fitness"}
            return cls(fitness, metrics)
        return cls(as_number(value, f"fitness{where}"))


def _as_metric(value: Any, name: Any, where: str) -> Any:
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"metric {name!r}{where} must be a number or string, got {type(value).__name__}") from None


class BatchFitness(ABC):
    """A fitness that evaluates several architectures in one call (e.g. a whole fair window)."""

    @abstractmethod
    def __call__(self, archs: Sequence[Architecture]) -> Sequence[FitnessValue]:
        """One value per architecture, in the same order."""


class _FunctionBatchFitness(BatchFitness):
    def __init__(self, fn: Callable[[Sequence[Architecture]], Sequence[FitnessValue]]) -> None:
        self._fn = fn

    def __call__(self, archs: Sequence[Architecture]) -> Sequence[FitnessValue]:
        return self._fn(archs)

    def __repr__(self) -> str:
        return f"batch_fitness({getattr(self._fn, '__name__', self._fn)!r})"


def batch_fitness(fn: Callable[[Sequence[Architecture]], Sequence[FitnessValue]]) -> BatchFitness:
    """Mark a function of a list of architectures as a batch fitness (usable as a decorator)."""
    return _FunctionBatchFitness(fn)


Fitness = Callable[[Architecture], FitnessValue] | BatchFitness


@dataclass(frozen=True)
class HistoryEntry:
    """One evaluated architecture, in evaluation order.

    ``wall_time`` is the seconds spent evaluating it (a batch's time is split evenly); an entry
    served from an :class:`~oneshot.search.EvaluationStore` keeps the time recorded there.
    ``fidelity`` is the fraction of the evaluation data behind ``fitness``: 1 for a full
    evaluation, less for a candidate that multi-fidelity racing judged unable to matter
    (:class:`oneshot.study.Racing`).
    """

    arch: Architecture
    fitness: float
    wall_time: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    fidelity: float = 1.0

    def to_json(self) -> dict[str, Any]:
        out = {
            "key": self.arch.key,
            "arch": self.arch.to_json(),
            "fitness": self.fitness,
            "wall_time": self.wall_time,
            "metrics": dict(self.metrics),
        }
        if self.fidelity != 1.0:
            out["fidelity"] = self.fidelity
        return out


@dataclass
class SearchResult:
    """What a search returns.

    Attributes:
        searcher: registry name of the searcher.
        best: the selected architecture. For most searchers the best evaluated one; for
            ``path-priority`` the per-layer argmax of the score table, which the paper never
            evaluates (then ``best_fitness`` is ``None``).
        best_fitness: fitness of ``best``, or ``None`` when it was not evaluated.
        history: every evaluation in order.
        score_table: path-priority only: per layer, the accumulated score of every choice.
        top_k: path-priority only: the architectures made of the i-th best choice at every layer.
        extras: other searcher-specific JSON-able details.
        pareto: multi-objective searchers only: the non-dominated evaluated architectures (in
            evaluation order) under the objectives listed in ``extras["objectives"]``; their
            metrics are in ``history``.
    """

    searcher: str
    best: Architecture
    best_fitness: float | None
    history: list[HistoryEntry]
    score_table: list[list[float]] | None = None
    top_k: list[Architecture] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    pareto: list[Architecture] = field(default_factory=list)

    @property
    def num_evaluated(self) -> int:
        """Number of distinct architectures evaluated (including those served from a store).

        Equals ``len(history)`` except for path-priority, whose fair windows may repeat an
        architecture; a repeat reuses the first evaluation and appears again in the history.
        """
        return len({h.arch for h in self.history})

    @property
    def fitnesses(self) -> list[float]:
        return [h.fitness for h in self.history]

    def best_so_far(self) -> list[float]:
        """The best fitness seen after each evaluation."""
        out: list[float] = []
        for h in self.history:
            out.append(h.fitness if not out else max(out[-1], h.fitness))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "searcher": self.searcher,
            "best": self.best.to_json(),
            "best_key": self.best.key,
            "best_fitness": self.best_fitness,
            "num_evaluated": self.num_evaluated,
            "history": [h.to_json() for h in self.history],
            "score_table": self.score_table,
            "top_k": [a.to_json() for a in self.top_k],
            "extras": self.extras,
            "pareto": [a.to_json() for a in self.pareto],
        }

    @classmethod
    def from_json(cls, space: SearchSpace, obj: Mapping[str, Any]) -> SearchResult:
        """Read a result written by :meth:`to_json`, validating architectures against ``space``."""
        try:
            history = [
                HistoryEntry(
                    space.from_json(h["arch"]),
                    float(h["fitness"]),
                    float(h.get("wall_time", 0.0)),
                    dict(h.get("metrics", {})),
                    float(h.get("fidelity", 1.0)),
                )
                for h in obj["history"]
            ]
            best_fitness = obj.get("best_fitness")
            return cls(
                searcher=str(obj["searcher"]),
                best=space.from_json(obj["best"]),
                best_fitness=None if best_fitness is None else float(best_fitness),
                history=history,
                score_table=obj.get("score_table"),
                top_k=[space.from_json(a) for a in obj.get("top_k", [])],
                extras=dict(obj.get("extras", {})),
                pareto=[space.from_json(a) for a in obj.get("pareto", [])],
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a search result: missing or malformed field {exc}") from None


class Searcher(ABC):
    """Base class of architecture searchers (ask/tell, higher fitness is better).

    Protocol: :meth:`ask` returns the next batch of architectures to evaluate (an empty list when
    the search is over); :meth:`tell` must then receive ``(architecture, fitness)`` for exactly
    that batch before the next :meth:`ask`. :meth:`run` drives the loop with a fitness and an
    optional :class:`~oneshot.search.EvaluationStore`. Subclasses are deterministic given their
    seed and the fitness values they are told, which is what makes a resumed search identical to
    an uninterrupted one.

    ``constraint`` (``arch -> bool``) is honoured by :meth:`ask`: architectures that violate it
    are never proposed. Set it as an attribute or pass it to :meth:`run`.

    Options: a searcher declares them as a :class:`~oneshot.search.options.SearcherOptions` model
    in :attr:`Options` and builds its state in :meth:`_setup`; the constructor takes the space,
    the options (keywords, positionally in the model's field order, or one model instance) and
    ``seed``, and every option reads as an attribute (``searcher.population``). A searcher may
    instead define its own ``__init__`` with keyword arguments, calling
    ``super().__init__(space, seed=seed)``; :func:`~oneshot.search.build_searcher` then passes
    the options through unchecked.
    """

    name: ClassVar[str] = ""
    #: whether the searcher takes ``objectives`` and returns a Pareto set (``SearchResult.pareto``)
    multi_objective: ClassVar[bool] = False
    #: the searcher's options model
    Options: ClassVar[type[SearcherOptions]] = SearcherOptions
    #: options that may be given together with a budget (passed on by :meth:`with_budget`)
    budget_extras: ClassVar[tuple[str, ...]] = ()

    def __init__(self, space: SearchSpace, *args: Any, seed: int = 0, **options: Any) -> None:
        self.space = space
        self.seed = int(seed)
        self.options = self.Options.from_arguments(self.name or type(self).__name__, args, options)
        self.constraint: Constraint | None = None
        self._pending: list[Architecture] | None = None
        self._history: list[HistoryEntry] = []
        self._setup()

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: the options read as attributes
        options = self.__dict__.get("options")
        if options is not None and name in type(options).model_fields:
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _setup(self) -> None:  # noqa: B027 (optional hook: a searcher without state needs none)
        """Build the search state from ``space``, ``seed`` and ``options`` (the end of ``__init__``)."""

    # ----------------------------------------------------------------- to implement
    @classmethod
    @abstractmethod
    def with_budget(cls, space: SearchSpace, n: int, *, seed: int = 0) -> Searcher:
        """A searcher of this kind whose parameters use at most ``n`` evaluations."""

    @property
    @abstractmethod
    def max_evaluations(self) -> int:
        """Upper bound on the number of evaluations this searcher will ask for."""

    @abstractmethod
    def _ask(self) -> list[Architecture]:
        """The next batch (empty when done). Must respect ``self.constraint``."""

    @abstractmethod
    def _tell(self, results: list[tuple[Architecture, float]]) -> None:
        """Update the state with the results of the last batch (in the order of :meth:`ask`)."""

    def _select(self) -> tuple[Architecture, float | None]:
        """The final architecture and its fitness; default: the best one evaluated in full.

        Entries scored only on part of the data (racing, ``fidelity < 1``) are candidates only when
        nothing was evaluated in full: a partial score is not comparable with full ones."""
        if not self._history:
            raise SearchError(f"{self.name or type(self).__name__}: nothing was evaluated")
        pool = [h for h in self._history if h.fidelity >= 1.0] or self._history
        best = max(pool, key=lambda h: h.fitness)  # first of equals wins
        return best.arch, best.fitness

    def _result_fields(self) -> dict[str, Any]:
        """Searcher-specific fields of the :class:`SearchResult` (score_table, top_k, extras, pareto)."""
        return {}

    # ----------------------------------------------------------------- ask / tell
    def ask(self) -> list[Architecture]:
        """The next batch of architectures to evaluate; empty when the search is finished."""
        if self._pending is not None:
            raise RuntimeError("ask() called twice without tell() for the previous batch")
        batch = list(self._ask())
        if batch:
            self._pending = batch
        return batch

    def tell(self, results: Sequence[HistoryEntry | tuple[Architecture, FitnessValue | Evaluation]]) -> None:
        """Report the fitness of every architecture of the last batch (any order).

        Each result is ``(arch, value)`` or a :class:`HistoryEntry` (whose wall time is kept).
        """
        if self._pending is None:
            raise RuntimeError("tell() called without a pending batch from ask()")
        entries: dict[Architecture, HistoryEntry] = {}
        for item in results:
            if isinstance(item, HistoryEntry):
                entries[item.arch] = item
            else:
                arch, value = item
                ev = Evaluation.from_value(value, arch=arch)
                entries[arch] = HistoryEntry(arch, ev.fitness, 0.0, ev.metrics)
        if set(entries) != set(self._pending) or len(results) != len(self._pending):
            raise ValueError(
                f"tell() needs exactly the {len(self._pending)} architectures of the last ask(); "
                f"got {len(results)} results"
            )
        ordered = [entries[a] for a in self._pending]
        self._pending = None
        self._history.extend(ordered)
        self._tell([(e.arch, e.fitness) for e in ordered])

    def is_feasible(self, arch: Architecture) -> bool:
        return self.constraint is None or bool(self.constraint(arch))

    @property
    def history(self) -> list[HistoryEntry]:
        return list(self._history)

    def result(self) -> SearchResult:
        """The result of what has been told so far."""
        best, best_fitness = self._select()
        return SearchResult(
            searcher=self.name or type(self).__name__,
            best=best,
            best_fitness=best_fitness,
            history=list(self._history),
            **self._result_fields(),
        )

    # ----------------------------------------------------------------- driver
    def run(
        self,
        fitness: Fitness,
        *,
        store: EvaluationStore | None = None,
        constraint: Constraint | None = None,
        progress: bool | Callable[[int, HistoryEntry], None] = False,
    ) -> SearchResult:
        """Search until done and return the result (a shortcut for ``Study(fitness, store=store).optimize(self)``).

        Args:
            fitness: ``arch -> value`` or a :class:`BatchFitness` (see the module docstring).
            store: evaluations already in it are reused (never re-evaluated); new ones are
                appended as soon as they are known, so an interrupted run resumes from it.
            constraint: ``arch -> bool``; architectures violating it are never evaluated.
            progress: ``True`` for a tqdm bar, or a callback ``(num_evaluated, entry)``.
        """
        from oneshot.study import LocalExecutor, Study

        if constraint is not None:
            self.constraint = constraint
        return Study(fitness, store=store, space=self.space if store is not None else None, executor=LocalExecutor()).optimize(
            self, progress=progress
        )


_B = TypeVar("_B", bound="BudgetSearcher")


class BudgetSearcher(Searcher):
    """A searcher whose evaluation budget is the option named :attr:`budget_arg`, read as the
    attribute of the same name.

    :meth:`with_budget` passes ``n`` as that option (plus whatever :meth:`_budget_options`
    derives from ``n``, and the :attr:`budget_extras` given) and :attr:`max_evaluations` is its value.
    """

    budget_arg: ClassVar[str]

    @classmethod
    def _budget_options(cls, n: int) -> dict[str, Any]:
        """The options of a searcher that uses at most ``n`` evaluations."""
        return {cls.budget_arg: n}

    @classmethod
    def with_budget(cls: type[_B], space: SearchSpace, n: int, *, seed: int = 0, **extras: Any) -> _B:
        """The searcher with ``n`` evaluations; ``extras``: any of :attr:`budget_extras`."""
        unknown = sorted(set(extras) - set(cls.budget_extras))
        if unknown:
            raise TypeError(f"{cls.__name__}.with_budget takes no option {', '.join(map(repr, unknown))}")
        return cls(space, seed=seed, **extras, **cls._budget_options(n))

    @property
    def max_evaluations(self) -> int:
        return int(getattr(self, self.budget_arg))
