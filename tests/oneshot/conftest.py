import pytest
import torch
from torch import nn

from oneshot import ChoiceLayer


class ToySupernet(nn.Module):
    """A tiny supernet on random tensors: conv choices with BN in two components."""

    def __init__(self, width: int = 8, num_classes: int = 3):
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
            for i in range(3)
        )
        self.head = ChoiceLayer(
            {"linear": nn.Linear(width, num_classes), "mlp": nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_classes))},
            label="head.0",
            component="head",
        )

    def forward(self, x):
        x = self.stem(x)
        for layer in self.body:
            x = layer(x)
        return self.head(x.mean(dim=(2, 3)))


@pytest.fixture
def toy_supernet():
    torch.manual_seed(0)
    return ToySupernet()
