"""Error types for bad user input. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations

__all__ = ["OneshotError", "ConfigError", "DatasetError", "CheckpointError", "ArchitectureError", "TrainingDiverged"]


class OneshotError(Exception):
    """Base class for errors caused by user input (not by bugs in oneshot)."""


class ConfigError(OneshotError, ValueError):
    """A configuration file or override is invalid."""


class DatasetError(OneshotError, ValueError):
    """A dataset is missing, malformed or inconsistent."""


class CheckpointError(OneshotError, ValueError):
    """A checkpoint is missing, corrupted or does not fit the model."""


class ArchitectureError(OneshotError, ValueError):
    """An architecture does not fit its search space."""


class TrainingDiverged(OneshotError, FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters.

    Attributes:
        step: the optimizer step at which it was found (the number of steps taken before it).
        reason: what was not finite, e.g. ``"loss is nan"``.
        last_good: the step of the last checkpoint written (``None``: none written).
    """

    def __init__(self, message: str, *, step: int, reason: str, last_good: int | None = None) -> None:
        super().__init__(message)
        self.step, self.reason, self.last_good = step, reason, last_good
