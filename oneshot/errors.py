"""Error types for bad user input. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations

__all__ = ["OneshotError", "ConfigError", "DatasetError", "CheckpointError", "ArchitectureError"]


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
