"""Tiny reference supernets for tests, docs and examples (instant on a CPU)."""

from __future__ import annotations

import torch
from torch import nn

from oneshot.space import ChoiceLayer

__all__ = ["ToySupernet"]


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
