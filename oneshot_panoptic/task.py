"""The ``panoptic`` task: Auto-Panoptic search on COCO-panoptic data (synthetic by default)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from oneshot.data import ResumableBatches
from oneshot.errors import DatasetError
from oneshot.space import Architecture
from oneshot.supernet import activate, recalibrate_bn
from oneshot.tasks import Task
from oneshot_panoptic.config import PRESETS, PanopticConfig, SplitConfig, default_cache_dir
from oneshot_panoptic.structures import PanopticMetadata

__all__ = ["PanopticTask", "pq_metrics"]

SEARCH_SPLIT = {"search": "nas_val", "val": "val"}


def pq_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """Flatten PanopticQuality results into percent metrics; ``fitness`` is PQ (All)."""
    out: dict[str, float] = {}
    for group, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        for key in ("pq", "sq", "rq"):
            out[f"{key}{suffix}"] = 100.0 * float(results[group][key])
    out["fitness"] = out["pq"]
    return out


class PanopticTask(Task):
    """Auto-Panoptic: backbone, mask head, semantic subnet and inter-modular attention searched together."""

    name = "panoptic"
    config_class = PanopticConfig
    description = "Auto-Panoptic (NeurIPS 2020) on COCO-panoptic data; synthetic data by default"
    report_columns = ("pq", "sq", "rq", "pq_th", "pq_st", "sem_miou")
    config: PanopticConfig

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return PRESETS

    # ----------------------------------------------------------------- data
    def _split_paths(self) -> dict[str, SplitConfig]:
        data = self.config.data
        if not data.is_synthetic:
            return {"train": data.train, "nas_val": data.nas_val, "val": data.val}  # type: ignore[dict-item]
        from oneshot_panoptic.data import ensure_synthetic_dataset

        syn = data.synthetic
        root = default_cache_dir() if data.cache_dir is None else data.cache_dir
        folder = f"synthetic-{syn.size}px-{syn.num_images}-seed{syn.seed}"
        paths = ensure_synthetic_dataset(
            f"{root}/{folder}", num_images=syn.num_images, size=syn.size, seed=syn.seed, splits=syn.splits
        )
        return {
            s: SplitConfig(image_dir=str(p.image_dir), panoptic_json=str(p.panoptic_json), panoptic_dir=str(p.panoptic_dir))
            for s, p in paths.items()
        }

    @cached_property
    def _paths(self) -> dict[str, SplitConfig]:
        return self._split_paths()

    def _dataset(self, split: str, *, train: bool) -> Any:
        from oneshot_panoptic.data import CocoPanoptic, build_transforms

        d = self.config.data
        p = self._paths[split]
        transforms = build_transforms(
            train=train,
            short_sizes=d.short_sizes if train else d.test_size,
            max_size=d.max_size,
            flip_prob=d.flip_prob,
        )
        return CocoPanoptic(p.image_dir, p.panoptic_json, p.panoptic_dir, transforms=transforms)

    def prepare_data(self) -> None:
        datasets = {s: self._dataset(s, train=False) for s in self._paths}
        reference = datasets["train"].metadata
        for split, ds in datasets.items():
            if ds.metadata != reference:
                raise DatasetError(f"split {split!r} has other categories than 'train'")
            if len(ds) == 0:
                raise DatasetError(f"split {split!r} has no images")
            if self.config.data.validate_files and self.validate_data:
                ds.validate(progress=self.progress)
        self.__dict__["metadata"] = reference

    @cached_property
    def metadata(self) -> PanopticMetadata:
        return self._dataset("train", train=False).metadata

    # ----------------------------------------------------------------- model and training
    def build_supernet(self) -> nn.Module:
        from oneshot_panoptic.model import build_autopanoptic

        meta = self.metadata
        m = self.config.model
        model = build_autopanoptic(m.preset, num_things=meta.num_things, num_stuff=meta.num_stuff, **m.overrides)
        return model.to(self.device)

    def train_batches(
        self, *, seed: int, shard: tuple[int, int] = (0, 1), batch_size: int | None = None
    ) -> Iterator[Any]:
        from oneshot_panoptic.data import collate_fn

        return ResumableBatches(
            self._dataset("train", train=True),
            batch_size=batch_size or self.config.train.batch_size,
            collate_fn=collate_fn,
            seed=seed,
            num_workers=self.config.train.num_workers,
            shard=shard,
        )

    def move_batch(self, batch: Any, device: torch.device) -> Any:
        images, targets = batch
        keys = ("boxes", "labels", "masks", "semantic")
        images = [img.to(device, non_blocking=True) for img in images]
        targets = [{k: t[k].to(device, non_blocking=True) for k in keys} for t in targets]
        return images, targets

    def loss(self, model: nn.Module, batch: Any) -> Mapping[str, torch.Tensor]:
        images, targets = batch
        return model(images, targets)

    # ----------------------------------------------------------------- evaluation
    def _eval_set(
        self, split: str
    ) -> tuple[list[list[torch.Tensor]], list[Any], list[tuple[int, int]], list[torch.Tensor]]:
        """Decoded images in batches, prepared ground truth, original sizes and semantic targets at
        the network's input size (cached per split)."""
        cache = self.__dict__.setdefault("_eval_cache", {})
        if split in cache:
            return cache[split]
        from oneshot_panoptic.pq import prepare_ground_truth

        ds = self._dataset(split, train=False)
        n = len(ds) if self.config.eval.max_images is None else min(len(ds), self.config.eval.max_images)
        images, gts, sizes, semantic = [], [], [], []
        for i in range(n):
            image, target = ds[i]
            images.append(image.to(self.device))
            gts.append(prepare_ground_truth(target["panoptic"], image_id=target["image_id"]))
            sizes.append(tuple(int(s) for s in target["orig_size"]))
            semantic.append(target["semantic"])
        bs = self.config.eval.batch_size
        batches = [images[i : i + bs] for i in range(0, n, bs)]
        cache[split] = (batches, gts, sizes, semantic)
        return cache[split]

    def _bn_batches(self) -> list[list[torch.Tensor]]:
        if "_bn_cache" in self.__dict__:
            return self.__dict__["_bn_cache"]
        e = self.config.eval
        ds = self._dataset("train", train=False)
        order = np.random.default_rng(self.config.seed).permutation(len(ds))
        count = min(len(ds), e.bn_batches * e.bn_batch_size)
        images = [ds[int(i)][0].to(self.device) for i in order[:count]]
        batches = [images[i : i + e.bn_batch_size] for i in range(0, count, e.bn_batch_size)]
        self.__dict__["_bn_cache"] = batches
        return batches

    @torch.no_grad()
    def _panoptic_quality(self, model: nn.Module, split: str) -> dict[str, float]:
        from oneshot_panoptic.fusion import panoptic_fusion
        from oneshot_panoptic.pq import PanopticQuality
        from oneshot_panoptic.semantic_metrics import SemanticConfusion

        e = self.config.eval
        batches, gts, sizes, semantic = self._eval_set(SEARCH_SPLIT.get(split, split))
        pq = PanopticQuality(self.metadata)
        confusion = SemanticConfusion(self.metadata.num_stuff + 1)
        model.eval()
        index = 0
        for images in batches:
            outputs = model(images)
            for out in outputs:
                confusion.update(out["sem_seg"], semantic[index])
                out = _to_size(out, sizes[index])
                pred = panoptic_fusion(
                    out,
                    out["sem_seg"],
                    self.metadata,
                    instance_score_threshold=e.instance_score_threshold,
                    overlap_threshold=e.overlap_threshold,
                    stuff_area_threshold=e.stuff_area_threshold,
                    reference_area=e.reference_area,
                )
                pq.process(gts[index], pred)
                index += 1
        return {**pq_metrics(pq.evaluate()), **confusion.metrics()}

    def evaluate(self, model: nn.Module, archs: Sequence[Architecture], *, split: str = "search") -> list[dict[str, float]]:
        """BN recalibration on training images, inference on ``nas_val`` (or ``val``), fusion, PQ."""
        results = []
        for arch in archs:
            with activate(model, arch):
                if self.config.eval.bn_batches > 0:
                    recalibrate_bn(
                        model,
                        self._bn_batches(),
                        forward=lambda m, images: m.forward_for_bn_recalibration(images),
                    )
                results.append(self._panoptic_quality(model, split))
        return results

    def evaluate_standalone(self, model: nn.Module, *, split: str = "val") -> dict[str, float]:
        return self._panoptic_quality(model, split)


def _to_size(output: dict[str, torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Bring an image's outputs from the network's input resolution to the original ``(H, W)``."""
    sem = output["sem_seg"]
    if tuple(sem.shape[-2:]) == tuple(size):
        return output
    out = dict(output)
    out["sem_seg"] = F.interpolate(sem[None], size=size, mode="bilinear", align_corners=False)[0]
    masks = output["masks"]
    if masks.numel():
        out["masks"] = F.interpolate(masks, size=size, mode="bilinear", align_corners=False)
    else:
        out["masks"] = masks.new_zeros((0, 1, *size))
    sy, sx = size[0] / sem.shape[-2], size[1] / sem.shape[-1]
    out["boxes"] = output["boxes"] * torch.tensor([sx, sy, sx, sy], device=output["boxes"].device)
    return out
