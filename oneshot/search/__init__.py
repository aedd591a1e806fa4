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
from oneshot.search.multiobjective import (
    MultiObjectiveMixin,
    MultiObjectiveRandomSearcher,
    pareto_entries,
)
from oneshot.search.objectives import COST_METRICS, Objective, objective_values, parse_objectives
from oneshot.search.optuna_search import NSGA2Searcher, OptunaSearcher, TPESearcher
from oneshot.search.pareto import dominates, hypervolume, non_dominated
from oneshot.search.path_priority import PathPrioritySearcher, ScoreTable, ranked_combinations
from oneshot.search.path_priority_verify import (
    AdditiveModel,
    VerifiedPathPrioritySearcher,
    fit_additive,
)
from oneshot.search.random import RandomSearcher
from oneshot.search.registry import (
    SEARCHERS,
    available_searchers,
    build_searcher,
    get_searcher_class,
    register_searcher,
)
from oneshot.search.store import EvaluationStore, StoreError
from oneshot.search.surrogate import MatchKernelGP, SurrogateSearcher

for _cls in (
    PathPrioritySearcher,
    EvolutionSearcher,
    RandomSearcher,
    VerifiedPathPrioritySearcher,
    MultiObjectiveRandomSearcher,
    NSGA2Searcher,
    TPESearcher,
    SurrogateSearcher,
):
    register_searcher(_cls)

__all__ = [
    "SEARCHERS",
    "COST_METRICS",
    "MultiObjectiveMixin",
    "MultiObjectiveRandomSearcher",
    "NSGA2Searcher",
    "Objective",
    "OptunaSearcher",
    "TPESearcher",
    "dominates",
    "hypervolume",
    "non_dominated",
    "objective_values",
    "parse_objectives",
    "pareto_entries",
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
