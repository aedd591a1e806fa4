"""Architecture searchers behind one ask/tell interface, a resumable evaluation store and a registry."""

from oneshot.search.base import (
    BatchFitness,
    BudgetSearcher,
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
from oneshot.search.evolution import EvolutionOptions, EvolutionSearcher
from oneshot.search.match_kernel import MatchKernelGP
from oneshot.search.model_select import (
    ModelSelectOptions,
    ModelSelectSearcher,
    cross_validated_error_ratio,
)
from oneshot.search.multiobjective import (
    MultiObjectiveMixin,
    MultiObjectiveRandomOptions,
    MultiObjectiveRandomSearcher,
    pareto_entries,
)
from oneshot.search.objectives import COST_METRICS, Objective, objective_values, parse_objectives
from oneshot.search.options import ObjectivesOption, SearcherOptions
from oneshot.search.optuna_search import (
    NSGA2Options,
    NSGA2Searcher,
    OptunaOptions,
    OptunaSearcher,
    TPEOptions,
    TPESearcher,
)
from oneshot.search.outliers import clip_low_outliers
from oneshot.search.pareto import dominates, hypervolume, non_dominated
from oneshot.search.path_priority import (
    PathPriorityOptions,
    PathPrioritySearcher,
    ScoreTable,
    ranked_combinations,
)
from oneshot.search.path_priority_verify import (
    AdditiveModel,
    VerifiedPathPriorityOptions,
    VerifiedPathPrioritySearcher,
    fit_additive,
)
from oneshot.search.random import RandomOptions, RandomSearcher
from oneshot.search.registry import (
    SEARCHERS,
    available_searchers,
    build_searcher,
    get_searcher_class,
    register_searcher,
)
from oneshot.search.saturating import (
    SaturatingAdditiveModel,
    SaturatingAdditiveOptions,
    SaturatingAdditiveSearcher,
)
from oneshot.search.store import EvaluationStore, StoreError
from oneshot.search.surrogate import (
    SurrogateOptions,
    SurrogateSearcher,
    ensemble_scores,
)

for _cls in (
    PathPrioritySearcher,
    EvolutionSearcher,
    RandomSearcher,
    VerifiedPathPrioritySearcher,
    MultiObjectiveRandomSearcher,
    NSGA2Searcher,
    TPESearcher,
    SurrogateSearcher,
    SaturatingAdditiveSearcher,
    ModelSelectSearcher,
):
    register_searcher(_cls)

__all__ = [
    "ModelSelectOptions",
    "ModelSelectSearcher",
    "cross_validated_error_ratio",
    "EvolutionOptions",
    "MultiObjectiveRandomOptions",
    "NSGA2Options",
    "OptunaOptions",
    "TPEOptions",
    "ObjectivesOption",
    "SearcherOptions",
    "PathPriorityOptions",
    "VerifiedPathPriorityOptions",
    "RandomOptions",
    "SurrogateOptions",
    "SaturatingAdditiveOptions",
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
    "BudgetSearcher",
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
    "SaturatingAdditiveModel",
    "SaturatingAdditiveSearcher",
    "VerifiedPathPrioritySearcher",
    "available_searchers",
    "batch_fitness",
    "build_searcher",
    "clip_low_outliers",
    "ensemble_scores",
    "fit_additive",
    "get_searcher_class",
    "ranked_combinations",
    "register_searcher",
]
