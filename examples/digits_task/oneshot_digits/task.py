"""``DigitsTask``: the digits search as a oneshot task, so that ``oneshot search --task digits``
runs it (data, fair supernet training, search, report, ``--retrain``) with resume for free.

A task is a :class:`oneshot.tasks.Task` subclass with a ``name``, a pydantic ``config_class``
(a :class:`oneshot.config.RunConfig` subclass adding the task's own sections), ``presets`` and
five methods: ``build_supernet``, ``train_batches``, ``loss``, ``evaluate`` and (for
``--retrain``) ``evaluate_standalone``. ``prepare_data`` is optional.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset, TensorDataset

import oneshot
from oneshot.config import EvalConfig, RunConfig, StrictModel
from oneshot.data import ResumableBatches
from oneshot.space import Architecture
from oneshot.tasks import Task
from oneshot_digits.model import DigitsSupernet

__all__ = ["DigitsConfig", "DigitsTask"]


# ----------------------------------------------------------------------------- config
class DataConfig(StrictModel):
    """How ``sklearn.datasets.load_digits`` is split (stratified) and augmented."""

    test_fraction: float = Field(0.3, gt=0, lt=1, description="share of the images kept for final evaluation (split 'val')")
    search_fraction: float = Field(0.2, gt=0, lt=1, description="share of the rest held out for the search fitness")
    split_seed: int = Field(0, description="seed of the stratified split")
    max_shift: int = Field(1, ge=0, le=3, description="training augmentation: random shift in pixels")


class ModelConfig(StrictModel):
    width: int = Field(16, ge=1, description="channels at 8x8 (twice as many at 4x4)")


class DigitsEvalConfig(EvalConfig):
    bn_batches: int = Field(4, ge=1, description="training batches used to recalibrate BatchNorm per evaluated path")
    bn_batch_size: int = Field(128, ge=1)


class DigitsConfig(RunConfig):
    """``RunConfig`` (seed, device, train, search, retrain) plus the task's own sections."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    eval: DigitsEvalConfig = Field(default_factory=DigitsEvalConfig)


# ----------------------------------------------------------------------------- data
class _Shifted(Dataset):
    """Random shifts drawn from torch's RNG, which ResumableBatches seeds per sample."""

    def __init__(self, dataset: TensorDataset, max_shift: int) -> None:
        self.dataset, self.max_shift = dataset, max_shift

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.dataset[index]
        s = self.max_shift
        if s == 0:
            return image, label
        dy, dx = torch.randint(0, 2 * s + 1, (2,)).tolist()
        h, w = image.shape[-2:]
        return nn.functional.pad(image, [s] * 4)[:, dy : dy + h, dx : dx + w], label


def load_splits(cfg: DataConfig) -> dict[str, TensorDataset]:
    """``train``, ``search`` and ``val`` (the test split) as standardised ``(N, 1, 8, 8)`` tensors."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = digits.images.astype(np.float32), digits.target.astype(np.int64)
    x_rest, x_val, y_rest, y_val = train_test_split(x, y, test_size=cfg.test_fraction, stratify=y, random_state=cfg.split_seed)
    x_train, x_search, y_train, y_search = train_test_split(
        x_rest, y_rest, test_size=cfg.search_fraction, stratify=y_rest, random_state=cfg.split_seed
    )
    mean, std = float(x_train.mean()), float(x_train.std())

    def tensors(images: np.ndarray, labels: np.ndarray) -> TensorDataset:
        return TensorDataset(torch.from_numpy((images - mean) / std).unsqueeze(1), torch.from_numpy(labels))

    return {"train": tensors(x_train, y_train), "search": tensors(x_search, y_search), "val": tensors(x_val, y_val)}


# ----------------------------------------------------------------------------- the task
class DigitsTask(Task):
    """One-shot NAS of a small CNN on scikit-learn's 1,797 handwritten 8x8 digits."""

    name = "digits"
    config_class = DigitsConfig
    description = "small CNN on scikit-learn's handwritten digits (example third-party task)"
    config: DigitsConfig  # the pipeline builds the task with an instance of config_class

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        """``default``: a few minutes of CPU time (measured: 2.4 min for search + --retrain);
        ``smoke``: seconds, for tests."""
        return {
            "default": {
                "train": {"iterations": 300, "batch_size": 32, "lr": 0.05, "warmup_iterations": 20,
                          "weight_decay": 5e-4, "checkpoint_every": 50},
                "search": {"options": {"path-priority": {"cycles": 5}, "evolution": {"population": 16, "generations": 6, "top_k": 4, "mutations": 8, "crossovers": 8}},
                           "random_baselines": 5},
                "retrain": {"iterations": 600, "lr": 0.05, "weight_decay": 5e-4, "warmup_iterations": 20},
            },
            "smoke": {
                "train": {"iterations": 3, "batch_size": 16, "lr": 0.05, "checkpoint_every": 2},
                "search": {"options": {"path-priority": {"cycles": 1}, "evolution": {"population": 6, "generations": 2, "top_k": 2, "mutations": 3, "crossovers": 3}},
                           "random_baselines": 2},
                "retrain": {"iterations": 5, "lr": 0.05},
                "eval": {"bn_batches": 1},
            },
        }

    def prepare_data(self) -> None:
        self._splits = load_splits(self.config.data)

    def split(self, name: str) -> TensorDataset:
        if not hasattr(self, "_splits"):
            self.prepare_data()
        return self._splits[name]

    def build_supernet(self) -> nn.Module:
        return DigitsSupernet(width=self.config.model.width).to(self.device)

    def train_batches(
        self, *, seed: int, shard: tuple[int, int] = (0, 1), batch_size: int | None = None
    ) -> Iterator[Any]:
        # Used for supernet training and for --retrain alike (retraining passes seed + 1 and
        # retrain.batch_size).
        dataset = _Shifted(self.split("train"), self.config.data.max_shift)
        return ResumableBatches(dataset, batch_size=batch_size or self.config.train.batch_size, seed=seed, shard=shard)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        images, labels = batch
        return nn.functional.cross_entropy(model(images), labels)

    @torch.no_grad()
    def _accuracy(self, model: nn.Module, split: str) -> float:
        images, labels = self.split(split).tensors
        model.eval()
        predictions = model(images.to(self.device)).argmax(1).cpu()
        return float((predictions == labels).float().mean() * 100)

    def evaluate(self, model: nn.Module, archs: Sequence[Architecture], *, split: str = "search") -> list[dict[str, float]]:
        """Accuracy (%) of each architecture with inherited weights, BatchNorm recalibrated."""
        e = self.config.eval
        images = self.split("train").tensors[0].to(self.device)
        bn_batches = [images[i * e.bn_batch_size : (i + 1) * e.bn_batch_size] for i in range(e.bn_batches)]
        out = []
        for arch in archs:
            with oneshot.activate(model, arch):
                oneshot.recalibrate_bn(model, bn_batches)
                acc = self._accuracy(model, split)
            out.append({"fitness": acc, "accuracy": acc})
        return out

    def evaluate_standalone(self, model: nn.Module, *, split: str = "val") -> dict[str, float]:
        acc = self._accuracy(model, split)
        return {"fitness": acc, "accuracy": acc}
