"""Architecture searchers behind one ask/tell interface, a resumable evaluation store and a registry."""

from oneshot.search.base import (
    BatchFitness,
    Constraint,
    Evaluation,
    Fitness,
    FitnessValue,
    HistoryEntry,
    Searcher,
    SearchError,
    SearchResult,
    batch_fitness,
)
from oneshot.search.evolution import EvolutionSearcher
from oneshot.search.path_priority import PathPrioritySearcher, ScoreTable, ranked_combinations
from oneshot.search.path_priority_verify import (
    AdditiveModel,
    VerifiedPathPrioritySearcher,
    fit_additive,
)
from oneshot.search.random import RandomSearcher
from oneshot.search.registry import (
    available_searchers,
    build_searcher,
    get_searcher_class,
    register_searcher,
)
from oneshot.search.store import EvaluationStore, StoreError
from oneshot.search.surrogate import MatchKernelGP, SurrogateSearcher

register_searcher("path-priority", PathPrioritySearcher)
register_searcher("evolution", EvolutionSearcher)
register_searcher("random", RandomSearcher)
register_searcher("path-priority-verify", VerifiedPathPrioritySearcher)
register_searcher("surrogate", SurrogateSearcher)

__all__ = [
    "AdditiveModel",
    "BatchFitness",
    "Constraint",
    "Evaluation",
    "EvaluationStore",
    "EvolutionSearcher",
    "Fitness",
    "FitnessValue",
    "HistoryEntry",
    "MatchKernelGP",
    "PathPrioritySearcher",
    "RandomSearcher",
    "ScoreTable",
    "SearchError",
    "SearchResult",
    "Searcher",
    "StoreError",
    "SurrogateSearcher",
    "VerifiedPathPrioritySearcher",
    "available_searchers",
    "batch_fitness",
    "build_searcher",
    "fit_additive",
    "get_searcher_class",
    "ranked_combinations",
    "register_searcher",
]
