"""Tabular NAS benchmarks as categorical search spaces with a (optionally noisy) fitness.

NAS-Bench-Macro (Su et al., CVPR 2021): 8 searchable layers x 3 choices, CIFAR-10 accuracy of all
3^8 = 6561 architectures, one JSON object keyed by 8-character strings over ``"012"`` (one
character per layer) whose values hold ``mean_acc``, ``test_acc``, ``std``, ``params``, ``flops``.
The file is never bundled: pass its path.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from oneshot.errors import DatasetError
from oneshot.files import read_json
from oneshot.space import Architecture, SearchSpace

__all__ = ["NASBenchMacro", "TabularFitness", "load_nas_bench_macro"]

_NUM_LAYERS = 8
_CHOICE_NAMES = ("identity", "mbv2_k3_e3", "mbv2_k5_e6")
_STAGES = (2, 3, 3)


@dataclass(frozen=True)
class TabularFitness:
    """``arch -> {"fitness": acc + noise, "mean_acc": acc, "noise": noise}`` from a table.

    The noise is Gaussian with standard deviation ``sigma`` and a deterministic function of
    ``(seed, architecture)``: evaluating an architecture twice (or in a resumed search) gives the
    same value, as a fixed supernet would. ``sigma = 0`` gives the true table value.
    """

    bench: NASBenchMacro
    sigma: float = 0.0
    seed: int = 0

    def noise(self, arch: Architecture) -> float:
        if self.sigma == 0:
            return 0.0
        rng = np.random.default_rng([int(self.seed), self.bench.index(arch)])
        return float(self.sigma * rng.standard_normal())

    def __call__(self, arch: Architecture) -> dict[str, float]:
        acc = self.bench.accuracy(arch)
        noise = self.noise(arch)
        return {"fitness": acc + noise, "mean_acc": acc, "noise": noise}


class NASBenchMacro:
    """NAS-Bench-Macro loaded from its JSON file.

    Attributes:
        space: the categorical space, 8 layers in components ``stage1`` .. ``stage3`` (2, 3 and 3
            layers) with the choices ``identity``, ``mbv2_k3_e3``, ``mbv2_k5_e6`` (indices 0, 1, 2).
        records: key (e.g. ``"22212220"``) -> the table's record.
    """

    def __init__(self, records: Mapping[str, Mapping[str, Any]], *, source: str = "<memory>") -> None:
        self.source = source
        stages = {f"stage{i + 1}": [3] * n for i, n in enumerate(_STAGES)}
        self.space = SearchSpace.categorical(
            stages, choice_names={name: [_CHOICE_NAMES] * len(c) for name, c in stages.items()}
        )
        expected = 3**_NUM_LAYERS
        keys = [k for k in records if _valid_key(k)]
        bad = [k for k in records if not _valid_key(k)]
        if bad:
            raise DatasetError(f"{source}: key {bad[0]!r} is not 8 characters over '012'")
        if len(keys) != expected:
            raise DatasetError(f"{source}: {len(keys)} architectures, expected all {expected}")
        self.records: dict[str, dict[str, Any]] = {}
        for key in keys:
            rec = records[key]
            if not isinstance(rec, Mapping) or not isinstance(rec.get("mean_acc"), (int, float)):
                raise DatasetError(f"{source}: record {key!r} has no numeric 'mean_acc'")
            self.records[key] = dict(rec)
        self._sorted_acc = sorted(float(r["mean_acc"]) for r in self.records.values())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NASBenchMacro:
        """Read ``nas-bench-macro_cifar10.json``; :class:`DatasetError` if missing or malformed."""
        path = Path(path)
        if path.is_dir():
            path = path / "nas-bench-macro_cifar10.json"
        data = read_json(path, what="NAS-Bench-Macro table", error=DatasetError)
        if not isinstance(data, Mapping):
            raise DatasetError(f"NAS-Bench-Macro table {path} must be a JSON object keyed by architecture")
        return cls(data, source=str(path))

    # ----------------------------------------------------------------- look-ups
    @staticmethod
    def key(arch: Architecture) -> str:
        """The table key of an architecture, e.g. ``"22212220"``."""
        return "".join(str(c) for c in arch.choices)

    def index(self, arch: Architecture) -> int:
        """The architecture as a base-3 integer (0 .. 6560)."""
        return int(self.key(arch), 3)

    def record(self, arch: Architecture) -> dict[str, Any]:
        return self.records[self.key(self.space.validate(arch))]

    def accuracy(self, arch: Architecture) -> float:
        """Mean CIFAR-10 test accuracy (%) of the three trainings."""
        return float(self.record(arch)["mean_acc"])

    def fitness(self, sigma: float = 0.0, *, seed: int = 0) -> TabularFitness:
        """The table as a fitness, optionally noisy (see :class:`TabularFitness`)."""
        if sigma < 0:
            raise ValueError(f"noise sigma must be >= 0, got {sigma}")
        return TabularFitness(self, float(sigma), int(seed))

    def rank_percentile(self, arch: Architecture | float) -> float:
        """Percentage of the table strictly better than ``arch`` (0 = the best; lower is better).

        Accepts an architecture or an accuracy value.
        """
        acc = float(arch) if isinstance(arch, (int, float)) else self.accuracy(arch)
        better = len(self._sorted_acc) - bisect.bisect_right(self._sorted_acc, acc)
        return 100.0 * better / len(self._sorted_acc)

    @property
    def best_accuracy(self) -> float:
        return self._sorted_acc[-1]

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"NASBenchMacro({self.source!r}, {len(self)} architectures)"


def load_nas_bench_macro(path: str | os.PathLike[str]) -> NASBenchMacro:
    """Load NAS-Bench-Macro from ``path`` (the JSON file, or the folder holding it)."""
    return NASBenchMacro.load(path)


def _valid_key(key: object) -> bool:
    return isinstance(key, str) and len(key) == _NUM_LAYERS and set(key) <= set("012")
