"""A tiny reference supernet and task for tests, docs and examples (instant on a CPU)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import nn
from torch.utils.data import TensorDataset

from oneshot.config import RunConfig, StrictModel
from oneshot.data import ResumableBatches
from oneshot.space import Architecture, ChoiceLayer
from oneshot.supernet import activate, recalibrate_bn
from oneshot.tasks import Task

__all__ = ["ToyConfig", "ToySupernet", "ToyTask"]


class ToySupernet(nn.Module):
    """A small image classifier supernet with two components.

    ``body``: ``num_layers`` choice layers of {conv3x3+BN+ReLU, conv5x5+BN+ReLU, skip};
    ``head``: one choice layer of {linear, MLP}. Input ``(N, 3, H, W)``, output ``(N, num_classes)``.
    """

    def __init__(self, *, width: int = 8, num_classes: int = 3, num_layers: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.body = nn.ModuleList(
            ChoiceLayer(
                {
                    "conv3": nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()),
                    "conv5": nn.Sequential(nn.Conv2d(width, width, 5, padding=2), nn.BatchNorm2d(width), nn.ReLU()),
                    "skip": nn.Identity(),
                },
                label=f"body.{i}",
                component="body",
            )
            for i in range(num_layers)
        )
        self.head = ChoiceLayer(
            {
                "linear": nn.Linear(width, num_classes),
                "mlp": nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_classes)),
            },
            label="head.0",
            component="head",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.body:
            x = layer(x)
        return self.head(x.mean(dim=(2, 3)))


class ToyDataConfig(StrictModel):
    num_train: int = Field(256, ge=16)
    num_val: int = Field(128, ge=8)
    image_size: int = Field(8, ge=4)


class ToyModelConfig(StrictModel):
    width: int = Field(8, ge=1)
    num_layers: int = Field(3, ge=1)


class ToyConfig(RunConfig):
    data: ToyDataConfig = Field(default_factory=ToyDataConfig)
    model: ToyModelConfig = Field(default_factory=ToyModelConfig)


def _toy_split(n: int, size: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 3, size, size, generator=g) * 0.8
    # class c brightens channel c in a centred square: learnable, but needs spatial context
    c = size // 4
    for i in range(n):
        x[i, y[i], c:-c, c:-c] += 1.0
    return TensorDataset(x, y)


class ToyTask(Task):
    """A seconds-long classification task on random tensors, for tests and smoke runs."""

    name = "toy"
    config_class = ToyConfig
    description = "tiny 3-class classification on random tensors (tests and smoke runs)"
    report_columns = ("accuracy",)
    supports_fraction = True

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "tiny": {"train": {"iterations": 20, "batch_size": 16, "lr": 0.5, "checkpoint_every": 5},
                     "retrain": {"iterations": 30, "batch_size": 16, "lr": 0.1},
                     "search": {"options": {"path-priority": {"cycles": 2}}, "random_baselines": 3}},
        }

    def _data(self, split: str) -> TensorDataset:
        d = self.config.data  # type: ignore[attr-defined]
        n = d.num_train if split == "train" else d.num_val
        return _toy_split(n, d.image_size, {"train": 1, "search": 2, "val": 3}[split])

    def build_supernet(self) -> nn.Module:
        m = self.config.model  # type: ignore[attr-defined]
        return ToySupernet(width=m.width, num_layers=m.num_layers).to(self.device)

    def example_input(self) -> torch.Tensor:
        size = self.config.data.image_size  # type: ignore[attr-defined]
        return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(self.device)

    def train_batches(
        self, *, seed: int, shard: tuple[int, int] = (0, 1), batch_size: int | None = None
    ) -> Iterator[Any]:
        return ResumableBatches(self._data("train"), batch_size=batch_size or self.config.train.batch_size, seed=seed, shard=shard)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(model(x), y)

    def evaluation_size(self, split: str = "search", fraction: float = 1.0) -> int:
        """The first ``ceil(fraction * N)`` of the split's ``N`` examples (at least one)."""
        return max(1, math.ceil(fraction * len(self._data(split))))

    @torch.no_grad()
    def _accuracy(self, model: nn.Module, split: str, fraction: float = 1.0) -> float:
        x, y = self._data(split).tensors
        n = self.evaluation_size(split, fraction)
        x, y = x[:n], y[:n]
        model.eval()
        pred = model(x.to(self.device)).argmax(1).cpu()
        return float((pred == y).float().mean() * 100)

    def evaluate(
        self, model: nn.Module, archs: Sequence[Architecture], *, split: str = "search", fraction: float = 1.0
    ) -> list[dict[str, float]]:
        train_x = self._data("train").tensors[0].to(self.device)
        count = min(len(train_x), 32 * self.config.eval.bn_batches)
        out = []
        for arch in archs:
            with activate(model, arch):
                recalibrate_bn(model, (train_x[i : i + 32] for i in range(0, count, 32)))
                acc = self._accuracy(model, split, fraction)
            out.append({"fitness": acc, "accuracy": acc})
        return out

    def evaluate_standalone(self, model: nn.Module, *, split: str = "val") -> dict[str, float]:
        acc = self._accuracy(model, split)
        return {"fitness": acc, "accuracy": acc}

    def standalone_model(self, supernet: nn.Module, arch: Architecture) -> nn.Module:
        """``arch`` frozen after BN recalibration on training images, as :meth:`evaluate` scores it."""
        from oneshot.supernet import freeze

        train_x = self._data("train").tensors[0].to(self.device)
        count = min(len(train_x), 32 * self.config.eval.bn_batches)
        with activate(supernet, arch):
            recalibrate_bn(supernet, (train_x[i : i + 32] for i in range(0, count, 32)))
            return freeze(supernet, arch).eval()

    @torch.no_grad()
    def predict(self, model: nn.Module, images: Sequence[Any]) -> list[int]:
        """The class index of each ``(3, H, W)`` image."""
        x = torch.stack([torch.as_tensor(img, dtype=torch.float32) for img in images]).to(self.device)
        return [int(c) for c in model.eval()(x).argmax(1)]

    def prediction_writer(self, output_dir: str | Path) -> _ClassWriter:
        return _ClassWriter(Path(output_dir))


class _ClassWriter:
    """``predictions.json``: ``{image name: class index}``."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.classes = folder, {}  # type: ignore[var-annotated]

    def add(self, name: str, image: Any, prediction: int) -> None:
        self.classes[name] = prediction

    def close(self) -> dict[str, Any]:
        from oneshot.files import atomic_write_json

        path = atomic_write_json(self.folder / "predictions.json", self.classes)
        return {"predictions": str(path)}
