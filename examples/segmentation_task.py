"""A segmentation task of your own, without packaging it: a U-Net-like supernet on synthetic shapes.

Four components are searched at once:

* ``encoder``: the kernel of each downsampling convolution (3, 5 or 7);
* ``decoder``: how each decoder stage upsamples (bilinear, nearest, transposed convolution);
* ``fusion``: how each decoder stage fuses its two branches, the upsampled features and the
  encoder's skip connection (add, concatenate + 1x1 convolution, or a learned gate);
* ``head``: the classifier (1x1, or 3x3 then 1x1).

The images are self-made: noisy backgrounds with a square and a disk of random colours, sizes and
places; the classes are background, square and disk, so telling them apart needs shape, not
colour. Run it from the repository root, no installation needed (``--task`` takes a
``module:Class`` path, imported with the current directory on the import path)::

    oneshot search --task examples.segmentation_task:ShapesSegmentationTask --preset tiny --retrain

(docs/tutorial.md, section 9, walks through it.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from pydantic import Field
from torch import nn
from torch.utils.data import TensorDataset

from oneshot import ChoiceLayer, activate, inference_on_batches, recalibrate_bn
from oneshot.config import RunConfig, StrictModel
from oneshot.data import ResumableBatches
from oneshot.metrics import SegmentationEvaluator
from oneshot.space import Architecture
from oneshot.tasks import Task

__all__ = ["CLASSES", "ShapesSegmentationTask", "ShapesUNet", "make_shapes"]

CLASSES = ("background", "square", "disk")


def make_shapes(num_images: int, size: int, seed: int) -> TensorDataset:
    """``num_images`` images ``(3, size, size)`` and masks ``(size, size)`` (0 background,
    1 square, 2 disk): one square and one disk per image, random colour, size and place."""
    g = torch.Generator().manual_seed(seed)
    images = 0.3 * torch.randn(num_images, 3, size, size, generator=g)
    masks = torch.zeros(num_images, size, size, dtype=torch.int64)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")

    def draw(low: int, high: int) -> int:
        return int(torch.randint(low, high, (), generator=g))

    for i in range(num_images):
        for cls in (1, 2):
            r = draw(max(2, size // 8), max(3, size // 4) + 1)
            cy, cx = draw(r, size - r), draw(r, size - r)
            if cls == 1:
                region = ((yy - cy).abs() <= r) & ((xx - cx).abs() <= r)
            else:
                region = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            colour = 0.5 + torch.rand(3, generator=g)
            images[i][:, region] = colour[:, None] + 0.1 * torch.randn(3, int(region.sum()), generator=g)
            masks[i][region] = cls
    return TensorDataset(images, masks)


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Add(nn.Module):
    def forward(self, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return skip + up


class Concat(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.mix = conv_bn(2 * width, width, 1)

    def forward(self, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return self.mix(torch.cat([skip, up], dim=1))


class Gate(nn.Module):
    """The upsampled features decide, per pixel and channel, how much of the skip to let through."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.gate = nn.Conv2d(width, width, 1)

    def forward(self, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return up + skip * torch.sigmoid(self.gate(up))


class DecoderStage(nn.Module):
    """Upsample the deeper features, then fuse them with the skip connection: two choice layers."""

    def __init__(self, width: int, index: int) -> None:
        super().__init__()
        self.upsample = ChoiceLayer(
            {
                "bilinear": nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                "nearest": nn.Upsample(scale_factor=2, mode="nearest"),
                "transposed": nn.ConvTranspose2d(width, width, 2, stride=2),
            },
            label=f"decoder.{index}",
            component="decoder",
        )
        self.fuse = ChoiceLayer(
            {"add": Add(), "concat": Concat(width), "gate": Gate(width)},
            label=f"fusion.{index}",
            component="fusion",
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(skip, self.upsample(x))  # a choice layer passes every argument on


class ShapesUNet(nn.Module):
    """A two-level U-Net supernet: ``(N, 3, H, W)`` images -> ``(N, C, H, W)`` class scores
    (``H``, ``W`` divisible by 4). Registration order makes the space read encoder.0, encoder.1,
    decoder.0, fusion.0, decoder.1, fusion.1, head: decoder and fusion layers alternate."""

    def __init__(self, width: int = 12, num_classes: int = len(CLASSES)) -> None:
        super().__init__()
        self.stem = conv_bn(3, width, 3)
        self.down = nn.ModuleList(
            ChoiceLayer({f"k{k}": conv_bn(width, width, k, stride=2) for k in (3, 5, 7)}, label=f"encoder.{i}", component="encoder")
            for i in range(2)
        )
        self.up = nn.ModuleList(DecoderStage(width, i) for i in range(2))
        self.head = ChoiceLayer(
            {
                "conv1": nn.Conv2d(width, num_classes, 1),
                "conv3": nn.Sequential(conv_bn(width, width, 3), nn.Conv2d(width, num_classes, 1)),
            },
            label="head",
            component="head",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for layer in self.down:
            skips.append(layer(skips[-1]))
        x = skips.pop()
        for stage in self.up:
            x = stage(x, skips.pop())
        return self.head(x)


class ShapesDataConfig(StrictModel):
    num_train: int = Field(512, ge=16)
    num_search: int = Field(128, ge=8, description="held-out images that score architectures during the search")
    num_val: int = Field(128, ge=8, description="held-out images for the final (retrained) evaluation")
    image_size: int = Field(24, ge=8, multiple_of=4)


class ShapesModelConfig(StrictModel):
    width: int = Field(12, ge=1)


class ShapesConfig(RunConfig):  # seed, device, train, search, eval, retrain, plus:
    data: ShapesDataConfig = Field(default_factory=ShapesDataConfig)
    model: ShapesModelConfig = Field(default_factory=ShapesModelConfig)


class ShapesSegmentationTask(Task):
    """Semantic segmentation of synthetic squares and disks with a U-Net-like supernet."""

    name = "shapes-segmentation"
    config_class = ShapesConfig
    config: ShapesConfig
    description = "U-Net-like supernet (encoder, decoder, fusion, head) on synthetic shapes"
    report_columns = ("miou", "pixel_acc", "iou/square", "iou/disk")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "default": {
                "train": {"iterations": 600, "batch_size": 16, "lr": 0.1, "schedule": "cosine", "warmup_iterations": 20},
                "search": {"options": {"path-priority": {"cycles": 5}}},
                "retrain": {"iterations": 300, "batch_size": 16, "lr": 0.05, "schedule": "cosine", "random_baselines": 3},
            },
            "tiny": {  # seconds on a CPU: a smoke run, too short to learn much
                "data": {"num_train": 64, "num_search": 16, "num_val": 16, "image_size": 16},
                "model": {"width": 8},
                "train": {"iterations": 6, "batch_size": 8, "lr": 0.1, "checkpoint_every": 3},
                "search": {"options": {"path-priority": {"cycles": 1}}, "random_baselines": 2},
                "eval": {"bn_batches": 2},
                "retrain": {"iterations": 4, "batch_size": 8, "lr": 0.05, "random_baselines": 1},
            },
        }

    def _data(self, split: str) -> TensorDataset:
        d = self.config.data
        count = {"train": d.num_train, "search": d.num_search, "val": d.num_val}[split]
        seed = self.config.seed * 3 + {"train": 0, "search": 1, "val": 2}[split]
        return make_shapes(count, d.image_size, seed)

    def build_supernet(self) -> nn.Module:
        return ShapesUNet(width=self.config.model.width).to(self.device)

    def train_batches(self, *, seed: int, shard: tuple[int, int] = (0, 1), batch_size: int | None = None) -> Iterator[Any]:
        return ResumableBatches(self._data("train"), batch_size=batch_size or self.config.train.batch_size, seed=seed, shard=shard)

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        images, masks = batch
        return nn.functional.cross_entropy(model(images), masks)

    def _score(self, model: nn.Module, split: str) -> dict[str, float]:
        """mIoU (the fitness), pixel accuracy and per-class IoU over ``split``, in percent."""
        images, masks = self._data(split).tensors
        batches = zip(images.split(32), masks.split(32), strict=True)
        evaluator = SegmentationEvaluator(len(CLASSES), class_names=CLASSES)
        return inference_on_batches(model, batches, evaluator, forward=lambda m, b: m(b[0].to(self.device)))

    def evaluate(self, model: nn.Module, archs: Sequence[Architecture], *, split: str = "search") -> list[dict[str, float]]:
        train_images = self._data("train").tensors[0].to(self.device)
        out = []
        for arch in archs:
            with activate(model, arch):
                if self.config.eval.bn_batches:  # 0: keep the supernet's statistics
                    recalibrate_bn(model, train_images.split(32), num_batches=self.config.eval.bn_batches)
                out.append(self._score(model, split))
        return out

    def evaluate_standalone(self, model: nn.Module, *, split: str = "val") -> dict[str, float]:
        return self._score(model, split)
