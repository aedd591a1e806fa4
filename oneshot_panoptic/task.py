"""The ``panoptic`` task: Auto-Panoptic search on COCO-panoptic data (synthetic by default)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from oneshot.data import ResumableBatches
from oneshot.errors import DatasetError
from oneshot.evaluation import inference_on_batches
from oneshot.space import Architecture
from oneshot.supernet import activate, recalibrate_bn
from oneshot.tasks import Task
from oneshot_panoptic.config import PRESETS, PanopticConfig, SplitConfig, default_cache_dir
from oneshot_panoptic.evaluation.evaluator import PanopticEvalBatch, PanopticEvaluator
from oneshot_panoptic.structures import PanopticMetadata

__all__ = ["PanopticTask"]

#: The dataset split evaluated for each ``split`` argument of :meth:`PanopticTask.evaluate`.
SEARCH_SPLIT = {"search": "nas_val", "val": "val"}


class PanopticTask(Task):
    """Auto-Panoptic: backbone, mask head, semantic subnet and inter-modular attention searched together."""

    name = "panoptic"
    config_class = PanopticConfig
    description = "Auto-Panoptic (NeurIPS 2020) on COCO-panoptic data; synthetic data by default"
    report_columns = ("pq", "sq", "rq", "pq_th", "pq_st", "sem_miou")
    supports_fraction = True
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
        variant = "" if syn.variant == "standard" else f"{syn.variant}-"
        folder = f"synthetic-{variant}{syn.size}px-{syn.num_images}-seed{syn.seed}"
        paths = ensure_synthetic_dataset(
            f"{root}/{folder}", num_images=syn.num_images, size=syn.size, seed=syn.seed, splits=syn.splits,
            variant=syn.variant,
        )
        return {
            s: SplitConfig(image_dir=str(p.image_dir), panoptic_json=str(p.panoptic_json), panoptic_dir=str(p.panoptic_dir))
            for s, p in paths.items()
        }

    @cached_property
    def _paths(self) -> dict[str, SplitConfig]:
        """The dataset's splits on disk (the synthetic one is generated on first use)."""
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

    @cached_property
    def metadata(self) -> PanopticMetadata:
        """Categories of the dataset (those of its ``train`` split; :meth:`prepare_data` checks
        that every split has the same)."""
        return self._dataset("train", train=False).metadata

    # ----------------------------------------------------------------- model and training
    def build_supernet(self) -> nn.Module:
        from oneshot_panoptic.modeling.builder import build_autopanoptic

        meta = self.metadata
        m = self.config.model
        model = build_autopanoptic(m.preset, num_things=meta.num_things, num_stuff=meta.num_stuff, **m.overrides)
        return model.to(self.device)

    def example_input(self) -> list[torch.Tensor]:
        """One ``(3, S, S)`` float image at the evaluation size ``S = data.test_size``, on
        ``self.device`` (what the model's eval-mode forward takes, e.g. for tracing or export)."""
        size = self.config.data.test_size
        return [torch.zeros(3, size, size, device=self.device)]

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
    def _eval_batches(self, split: str) -> list[PanopticEvalBatch]:
        """Decoded images of a dataset split in batches, with their prepared ground truth,
        original sizes and semantic targets at the network's input size (built once per split)."""
        if split not in self._eval_sets:
            self._eval_sets[split] = self._load_eval_batches(split)
        return self._eval_sets[split]

    @cached_property
    def _eval_sets(self) -> dict[str, list[PanopticEvalBatch]]:
        """Evaluation batches per dataset split, filled by :meth:`_eval_batches`."""
        return {}

    def _load_eval_batches(self, split: str) -> list[PanopticEvalBatch]:
        from oneshot_panoptic.evaluation.counting import prepare_ground_truth

        ds = self._dataset(split, train=False)
        n = len(ds) if self.config.eval.max_images is None else min(len(ds), self.config.eval.max_images)
        images, gts, sizes, semantic = [], [], [], []
        for i in range(n):
            image, target = ds[i]
            images.append(image.to(self.device))
            gts.append(prepare_ground_truth(target["panoptic"], image_id=target["image_id"]))
            sizes.append((int(target["orig_size"][0]), int(target["orig_size"][1])))
            semantic.append(target["semantic"])
        bs = self.config.eval.batch_size
        return [
            PanopticEvalBatch(images[i : i + bs], sizes[i : i + bs], gts[i : i + bs], semantic[i : i + bs])
            for i in range(0, n, bs)
        ]

    @cached_property
    def _bn_batches(self) -> list[list[torch.Tensor]]:
        """Training images (seeded order, no augmentation) for BN recalibration, in batches."""
        e = self.config.eval
        ds = self._dataset("train", train=False)
        order = np.random.default_rng(self.config.seed).permutation(len(ds))
        count = min(len(ds), e.bn_batches * e.bn_batch_size)
        images = [ds[int(i)][0].to(self.device) for i in order[:count]]
        return [images[i : i + e.bn_batch_size] for i in range(0, count, e.bn_batch_size)]

    def evaluator(self) -> PanopticEvaluator:
        """A fresh evaluator of this dataset's categories."""
        return PanopticEvaluator(self.metadata)

    def _predict(self, model: nn.Module, batch: PanopticEvalBatch) -> list[dict[str, Any]]:
        """Eval-mode outputs of one batch, post-processed (resized back, fused) by the model."""
        e = self.config.eval
        outputs = model(list(batch.images))
        panoptic = model.postprocess(  # type: ignore[operator]  # an AutoPanoptic
            outputs,
            self.metadata,
            image_sizes=batch.image_sizes,
            instance_score_threshold=e.instance_score_threshold,
            overlap_threshold=e.overlap_threshold,
            stuff_area_threshold=e.stuff_area_threshold,
            reference_area=e.reference_area,
        )
        return [{"sem_seg": out["sem_seg"], "panoptic": pan} for out, pan in zip(outputs, panoptic, strict=True)]

    def _scored_batches(self, split: str, fraction: float = 1.0) -> list[PanopticEvalBatch]:
        batches = self._eval_batches(SEARCH_SPLIT.get(split, split))
        if fraction < 1.0:  # the first share of the split, in whole evaluation batches
            batches = batches[: max(1, math.ceil(fraction * len(batches)))]
        return batches

    def evaluation_size(self, split: str = "search", fraction: float = 1.0) -> int:
        """Images :meth:`evaluate` scores: ``fraction`` rounds up to whole evaluation batches."""
        return sum(len(b.images) for b in self._scored_batches(split, fraction))

    def _score(self, model: nn.Module, split: str, fraction: float = 1.0) -> dict[str, float]:
        return inference_on_batches(model, self._scored_batches(split, fraction), self.evaluator(), forward=self._predict)

    def evaluate(
        self, model: nn.Module, archs: Sequence[Architecture], *, split: str = "search", fraction: float = 1.0
    ) -> list[dict[str, float]]:
        """BN recalibration on training images, inference on ``nas_val`` (or ``val``), fusion, PQ;
        ``fraction`` < 1: on the first share of the split's evaluation batches."""
        results = []
        for arch in archs:
            with activate(model, arch):
                if self.config.eval.bn_batches > 0:
                    recalibrate_bn(
                        model,
                        self._bn_batches,
                        forward=lambda m, images: m.forward_for_bn_recalibration(images),
                    )
                results.append(self._score(model, split, fraction))
        return results

    def reference_architectures(self) -> dict[str, Any]:
        """The paper's published COCO and ADE20K architectures, when the model is at the width
        they were searched at (the ``1.3G`` preset's 40-layer space)."""
        if self.config.model.preset != "1.3G":
            return {}
        from oneshot_panoptic.modeling.builder import (
            PUBLISHED_ARCHITECTURES,
            published_architecture,
        )

        return {f"published {name}": published_architecture(name).to_json() for name in PUBLISHED_ARCHITECTURES}

    def evaluate_standalone(self, model: nn.Module, *, split: str = "val") -> dict[str, float]:
        """PQ and semantic metrics of a frozen (retrained) model on ``split``."""
        return self._score(model, split)

    # ----------------------------------------------------------------- shipping (docs/ship.md)
    def standalone_model(self, supernet: nn.Module, arch: Architecture) -> nn.Module:
        """``arch`` frozen after BN recalibration on training images, as :meth:`evaluate` scores it."""
        from oneshot.supernet import freeze

        with activate(supernet, arch):
            if self.config.eval.bn_batches > 0:
                recalibrate_bn(supernet, self._bn_batches, forward=lambda m, images: m.forward_for_bn_recalibration(images))
            return freeze(supernet, arch).eval()

    def model_spec(self) -> dict[str, Any]:
        """Preset, options and categories: what :func:`oneshot_panoptic.ship.build_model` needs,
        and the evaluation-time resizing and fusion options :meth:`predict` uses."""
        e, d = self.config.eval, self.config.data
        return {
            "preset": self.config.model.preset,
            "overrides": dict(self.config.model.overrides),
            "num_things": self.metadata.num_things,
            "num_stuff": self.metadata.num_stuff,
            "categories": [dict(c) for c in self.metadata.categories],
            "test_size": d.test_size,
            "max_size": d.max_size,
            "postprocess": self._postprocess_options(),
            "bn_recalibrated_on": "training images" if e.bn_batches > 0 else None,
        }

    @classmethod
    def build_model(cls, spec: Mapping[str, Any], arch: Any) -> nn.Module:
        from oneshot_panoptic.ship import build_model

        return build_model(arch, spec["preset"], num_things=spec["num_things"], num_stuff=spec["num_stuff"], **spec["overrides"])

    def export_part(self, model: nn.Module) -> Any:
        """The dense part (:class:`~oneshot_panoptic.ship.DenseAutoPanoptic`) at the evaluation size."""
        from oneshot_panoptic.ship import dense_export_part

        return dense_export_part(model, self.config.data.test_size)  # type: ignore[arg-type]

    def _postprocess_options(self) -> dict[str, Any]:
        e = self.config.eval
        return {
            "instance_score_threshold": e.instance_score_threshold,
            "overlap_threshold": e.overlap_threshold,
            "stuff_area_threshold": e.stuff_area_threshold,
            "reference_area": e.reference_area,
        }

    def predict(self, model: nn.Module, images: Sequence[Any]) -> list[Any]:
        """Panoptic segmentations (:class:`PanopticSegmentation`, dataset category ids) of
        ``images`` (tensors ``(3, H, W)`` in ``[0, 1]`` or PIL images) at their own sizes."""
        from oneshot_panoptic.ship import predict_panoptic_images

        d = self.config.data
        return predict_panoptic_images(
            model, images, self.metadata, test_size=d.test_size, max_size=d.max_size,  # type: ignore[arg-type]
            device=self.device, **self._postprocess_options(),
        )

    def prediction_writer(self, output_dir: Any) -> Any:
        from oneshot_panoptic.ship import PanopticPredictionWriter

        return PanopticPredictionWriter(output_dir, self.metadata)

    def example_pictures(self, models: Mapping[str, nn.Module], *, count: int = 3) -> list[list[tuple[str, Any]]]:
        """Per ``val`` image (the first ``count``): input | ground truth | each model's prediction."""
        from oneshot_panoptic.visualize import overlay_panoptic, to_uint8_image

        ds = self._dataset("val", train=False)
        rows = []
        for i in range(min(count, len(ds))):
            image = to_uint8_image(ds._read_image(i))
            tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 255
            row = [("input", image), ("ground truth", overlay_panoptic(image, ds.load_panoptic(i), self.metadata, labels=False))]
            for title, model in models.items():
                pred = self.predict(model, [tensor])[0]
                row.append((title, overlay_panoptic(image, pred, self.metadata, labels=False)))
            rows.append(row)
        return rows

