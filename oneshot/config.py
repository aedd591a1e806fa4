"""Configuration: pydantic models loaded from YAML, presets, and ``--set a.b=value`` overrides.

A task's config subclasses :class:`RunConfig` and adds its own sections (``data``, ``model``,
``eval``...). Every model forbids unknown keys, so a typo is reported with the field's path.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from oneshot.errors import ConfigError
from oneshot.files import read_text

__all__ = [
    "StrictModel",
    "OptimConfig",
    "TrainConfig",
    "RetrainConfig",
    "SearchConfig",
    "EvalConfig",
    "ConstraintsConfig",
    "RacingConfig",
    "RunConfig",
    "load_config",
    "parse_overrides",
    "apply_overrides",
    "validate_config",
    "deep_merge",
]

C = TypeVar("C", bound="RunConfig")


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class OptimConfig(StrictModel):
    """What supernet training and retraining share: steps, batch, optimizer and schedule."""

    iterations: int = Field(100, ge=0, description="optimizer steps")
    batch_size: int = Field(2, ge=1, description="images per batch")
    lr: float = Field(0.02, gt=0, description="base learning rate")
    optimizer: Literal["sgd", "adamw"] = Field("sgd", description="sgd (with momentum) or adamw")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas")
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["multistep", "cosine", "onecycle"] = Field(
        "multistep", description="multistep (warmup, x0.1 at milestones), cosine (warmup, decay to 0) or onecycle"
    )
    warmup_iterations: int = Field(0, ge=0, description="linear warmup steps (onecycle: its rising phase)")
    milestones: list[float] = Field(
        default_factory=lambda: [8 / 12, 11 / 12],
        description="multistep: lr decay points as fractions of iterations (x0.1 each)",
    )
    grad_clip: float | None = Field(None, gt=0, description="max global gradient norm (null: no clipping)")
    amp: bool = Field(False, description="mixed precision on CUDA")
    checkpoint_every: int = Field(50, ge=1)
    num_workers: int = Field(0, ge=0, description="data-loading worker processes")

    @field_validator("milestones")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        bad = [f for f in value if not 0.0 <= f <= 1.0]
        if bad:
            raise ValueError(f"milestones are fractions of the run in [0, 1]; got {bad}")
        return sorted(value)


class TrainConfig(OptimConfig):
    """Supernet training (one optimizer step per sampler window)."""

    iterations: int = Field(100, ge=0, description="optimizer steps (each over one window of paths)")
    batch_size: int = Field(2, ge=1, description="images per path (one batch per path)")
    lr: float = Field(0.02, gt=0, description="base learning rate before component multipliers")
    lr_multipliers: dict[str, float] | None = Field(
        None, description="per-component lr factors; null = derived from the fair window (k/m)"
    )
    sampler: str = Field("fair", description="registered sampler: fair (strictly fair windows) or uniform (SPOS)")
    paths_per_step: int | None = Field(
        None,
        ge=1,
        description="paths per optimizer step (window); null = the space's fair window, which 'fair' "
        "needs (or a multiple); 'uniform' takes any size, 1 = single-path SPOS steps",
    )
    sync_batchnorm: bool = Field(False, description="SyncBatchNorm across ranks during training (CUDA only)")

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, value: str) -> str:
        from oneshot.sampling import SAMPLERS

        if value not in SAMPLERS:
            raise ValueError(f"unknown sampler {value!r}; available: {', '.join(SAMPLERS.names())}")
        return value


class RetrainConfig(OptimConfig):
    """Training of a frozen architecture from scratch (one batch per optimizer step)."""

    iterations: int = Field(100, ge=0, description="optimizer steps (one batch each)")
    batch_size: int = Field(2, ge=1, description="images per optimizer step")
    random_baselines: int = Field(
        0,
        ge=0,
        description="`oneshot search --retrain` also retrains this many random architectures (the report's "
        "first ones) the same way, to compare found against random after retraining",
    )


class ConstraintsConfig(StrictModel):
    """Limits on an architecture's cost; a violating architecture is never evaluated."""

    max_flops: float | None = Field(None, gt=0, description="FLOPs of one forward pass at the task's example input")
    max_params: float | None = Field(None, gt=0, description="parameters of the chosen path")
    max_latency_ms: float | None = Field(
        None, gt=0, description="batch-1 latency on the run's device (predicted by the latency table when there is one)"
    )


class RacingConfig(StrictModel):
    """Multi-fidelity evaluation during search: a candidate is scored on a share of the search
    split first and evaluated in full only if it can still reach the top_k best full scores."""

    fraction: float | None = Field(
        None, gt=0, lt=1, description="share of the search split scored first (null: racing off, every evaluation is full)"
    )
    top_k: int = Field(1, ge=1, description="a candidate is evaluated in full while it can reach the top_k best full scores")
    z: float = Field(2.0, ge=0, description="confidence margin in standard deviations of the (full - partial) differences")
    min_pairs: int = Field(4, ge=2, description="every candidate is evaluated in full until this many were scored both ways")


class SearchConfig(StrictModel):
    """Architecture search on the trained supernet."""

    searcher: str = "path-priority"
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="keyword options per searcher name, e.g. {path-priority: {cycles: 5}, random: {num_samples: 300}}",
    )
    random_baselines: int = Field(5, ge=0, description="random architectures evaluated for the report")
    constraints: ConstraintsConfig = Field(default_factory=ConstraintsConfig)
    racing: RacingConfig = Field(default_factory=RacingConfig)
    objectives: list[str | dict[str, str]] = Field(
        default_factory=lambda: ["fitness"],
        description="what multi-objective searchers optimise: metric names, '+name' (maximise) / '-name' "
        "(minimise), or {name, direction}; bare cost names (flops, params, latency_ms) are minimised, "
        "others maximised",
    )

    @field_validator("objectives")
    @classmethod
    def _check_objectives(cls, value: list[str | dict[str, str]]) -> list[str | dict[str, str]]:
        from oneshot.search.objectives import parse_objectives

        parse_objectives(value)  # ValueError -> a one-line config error naming search.objectives
        return value
    noise_tolerance: float | None = Field(
        None,
        ge=0,
        description="the evaluation's noise in fitness units: the report warns when the random baselines "
        "span no more (null: 2% of the metric's scale, the largest absolute fitness in the report)",
    )


class EvalConfig(StrictModel):
    """Evaluation of an architecture on the supernet. Tasks subclass it to add their own fields."""

    bn_batches: int = Field(
        4, ge=0, description="BN recalibration batches per evaluated architecture (0 = keep the supernet's statistics)"
    )


class RunConfig(StrictModel):
    """Top-level config shared by all tasks. Tasks subclass it and add their own sections."""

    seed: int = 0
    device: str = "cpu"
    threads: int | None = Field(None, ge=1, description="torch CPU threads (null: torch's default)")
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    retrain: RetrainConfig = Field(
        default_factory=RetrainConfig,
        description="training of the frozen found architecture from scratch (one batch per step)",
    )


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``update`` merged in, recursively for nested mappings."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["train.iterations=200", "search.searcher=evolution"]`` -> a nested dict.

    Values are parsed as YAML scalars/lists (``200`` -> int, ``[1, 2]`` -> list, ``null`` -> None).
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} must look like key.path=value")
        path, _, raw = pair.partition("=")
        keys = [k for k in path.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"override {pair!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {pair!r} conflicts with another override of {key!r}")
        node[keys[-1]] = value
    return out


def apply_overrides(data: Mapping[str, Any], pairs: Iterable[str]) -> dict[str, Any]:
    return deep_merge(data, parse_overrides(pairs))


def _format_validation_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            parts.append(f"{loc}: unknown key")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
            message = str(err["msg"]).removeprefix("Value error, ")  # our validators' own words
            parts.append(f"{loc}: {message}{shown}")
    return f"invalid config {source}: " + "; ".join(parts)


def validate_config(cls: type[C], data: Mapping[str, Any], *, source: str = "") -> C:
    """Validate ``data`` as ``cls``; errors become one :class:`ConfigError` naming each field path."""
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source or f"for {cls.__name__}")) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    text = read_text(path, what="config", error=ConfigError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"config {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return data


def load_config(
    cls: type[C],
    *,
    preset: Mapping[str, Any] | None = None,
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
) -> C:
    """Build a config: defaults <- ``preset`` <- YAML file at ``path`` <- ``overrides``."""
    data: dict[str, Any] = dict(preset or {})
    source = "preset"
    if path is not None:
        data = deep_merge(data, _read_yaml(Path(path)))
        source = str(path)
    overrides = list(overrides)
    if overrides:
        data = apply_overrides(data, overrides)
        source = f"{source} with --set overrides" if path is not None else "(--set overrides)"
    return validate_config(cls, data, source=source)
