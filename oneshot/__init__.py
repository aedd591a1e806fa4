"""oneshot: one-shot neural architecture search over several network components at once.

The task-agnostic core: search spaces, samplers, supernet utilities, searchers, training and the
``oneshot`` command line. Task plug-ins (such as ``oneshot_panoptic``) register through entry points.
"""

from oneshot import distributed, metrics, search, viz  # viz imports matplotlib only when plotting
from oneshot.errors import (
    ArchitectureError,
    CheckpointError,
    ConfigError,
    DatasetError,
    OneshotError,
)
from oneshot.evaluation import Evaluator, inference_on_batches
from oneshot.sampling import (
    FairSampler,
    PairBalancedFairSampler,
    Sampler,
    UniformSampler,
    build_sampler,
)
from oneshot.space import Architecture, ChoiceLayer, LayerSpec, SearchSpace
from oneshot.stats import average_ranks, kendall_tau_b, spearman_rho
from oneshot.supernet import (
    FlopsParams,
    activate,
    active_parameters,
    choice_layers,
    count_flops_params,
    freeze,
    recalibrate_bn,
)

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "ArchitectureError",
    "CheckpointError",
    "ChoiceLayer",
    "ConfigError",
    "DatasetError",
    "Evaluator",
    "FairSampler",
    "FlopsParams",
    "LayerSpec",
    "OneshotError",
    "PairBalancedFairSampler",
    "Sampler",
    "SearchSpace",
    "UniformSampler",
    "activate",
    "active_parameters",
    "average_ranks",
    "build_sampler",
    "choice_layers",
    "count_flops_params",
    "distributed",
    "freeze",
    "inference_on_batches",
    "kendall_tau_b",
    "metrics",
    "recalibrate_bn",
    "search",
    "spearman_rho",
    "viz",
]
