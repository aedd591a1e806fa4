"""Training: the supernet trainer (one optimizer step per window of paths) and the standalone
trainer, optimizers and schedules built from a config, and resumable checkpoints."""

from oneshot.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from oneshot.train.optim import (
    build_optimizer,
    build_scheduler,
    component_param_groups,
    warmup_cosine,
    warmup_multistep,
)
from oneshot.train.trainer import (
    LossFn,
    StandaloneTrainer,
    SupernetTrainer,
    TrainResult,
    move_to_device,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "LossFn",
    "StandaloneTrainer",
    "SupernetTrainer",
    "TrainResult",
    "build_optimizer",
    "build_scheduler",
    "component_param_groups",
    "load_checkpoint",
    "move_to_device",
    "save_checkpoint",
    "warmup_cosine",
    "warmup_multistep",
]
