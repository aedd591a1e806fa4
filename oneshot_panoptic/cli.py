"""The plug-in's commands, under their own group: ``oneshot panoptic evaluate`` and
``oneshot panoptic data synth|validate``.

The ``panoptic`` group is registered through the ``oneshot.commands`` entry points; the core
group turns :class:`oneshot.errors.OneshotError` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from oneshot.errors import DatasetError

__all__ = ["panoptic", "evaluate", "data", "parse_splits"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group("panoptic")
def panoptic() -> None:
    """Panoptic segmentation (Auto-Panoptic): PQ of prediction files, datasets."""


def _required_path(flag: str, help: str) -> Callable[[F], F]:
    return click.option(flag, required=True, type=click.Path(path_type=Path), help=help)


@panoptic.command("evaluate")
@_required_path("--gt-json", "Ground-truth COCO-panoptic JSON.")
@_required_path("--gt-folder", "Folder of ground-truth PNGs.")
@_required_path("--pred-json", "Prediction COCO-panoptic JSON.")
@_required_path("--pred-folder", "Folder of predicted PNGs.")
@click.option("--json", "as_json", is_flag=True, help="Print panopticapi's result dict as JSON.")
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Processes."
)
def evaluate(
    gt_json: Path, gt_folder: Path, pred_json: Path, pred_folder: Path, as_json: bool, workers: int
) -> None:
    """Panoptic quality of COCO-panoptic prediction files (same numbers as panopticapi)."""
    from oneshot_panoptic.evaluation import (
        evaluate_panoptic_files,
        format_pq_table,
        results_to_json,
    )

    start = time.perf_counter()
    results = evaluate_panoptic_files(gt_json, gt_folder, pred_json, pred_folder, workers=workers)
    if as_json:
        click.echo(results_to_json(results))
    else:
        click.echo(format_pq_table(results))
        click.echo(f"Time elapsed: {time.perf_counter() - start:0.2f} seconds")


@panoptic.group("data")
def data() -> None:
    """Datasets in COCO-panoptic format: generate the synthetic one, check any one."""


def parse_splits(text: str) -> dict[str, float]:
    """``"train=0.7,nas_val=0.15,val=0.15"`` -> ``{"train": 0.7, ...}`` (weights, any positive scale)."""
    splits: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        if not sep or not name:
            raise DatasetError(f"bad --splits entry {part!r}; expected NAME=WEIGHT, e.g. train=0.7")
        if name in splits:
            raise DatasetError(f"split {name!r} given twice in --splits")
        try:
            weight = float(value)
        except ValueError:
            raise DatasetError(f"bad weight {value!r} for split {name!r} in --splits") from None
        if not weight > 0:
            raise DatasetError(f"split {name!r} needs a positive weight, got {value}")
        splits[name] = weight
    return splits


@data.command("synth")
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Dataset root to write."
)
@click.option("--num-images", default=300, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--size",
    default=128,
    show_default=True,
    type=click.IntRange(min=16),
    help="Image side (pixels).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--splits",
    default="train=0.7,nas_val=0.15,val=0.15",
    show_default=True,
    help="Split weights NAME=WEIGHT,...; images are shared out in proportion.",
)
@click.option(
    "--variant",
    default="standard",
    show_default=True,
    type=click.Choice(["standard", "bench"]),
    help="standard scenes, or bench: scenes on which the architecture matters (docs/data.md).",
)
@click.option("--overwrite", is_flag=True, help="Replace existing split folders.")
def synth(out: Path, num_images: int, size: int, seed: int, splits: str, variant: str, overwrite: bool) -> None:
    """Write the synthetic panoptic dataset (JPEG images, panoptic PNGs, JSON per split)."""
    from oneshot_panoptic.data.synthetic import generate_synthetic_dataset

    weights = parse_splits(splits)
    if num_images < len(weights):
        raise DatasetError(f"--num-images {num_images} cannot fill {len(weights)} splits")
    start = time.perf_counter()
    paths = generate_synthetic_dataset(
        out, num_images=num_images, size=size, seed=seed, splits=weights, overwrite=overwrite, variant=variant
    )
    elapsed = time.perf_counter() - start
    for split, p in paths.items():
        click.echo(f"{split}: {p.panoptic_json}  images: {p.image_dir}  panoptic: {p.panoptic_dir}")
    click.echo(f"{num_images} images of {size}x{size} in {elapsed:.1f} s")


@data.command("validate")
@click.option("--image-dir", required=True, type=click.Path(path_type=Path))
@click.option("--panoptic-json", required=True, type=click.Path(path_type=Path))
@click.option("--panoptic-dir", required=True, type=click.Path(path_type=Path))
def validate(image_dir: Path, panoptic_json: Path, panoptic_dir: Path) -> None:
    """Check a COCO-panoptic dataset; name the first broken file."""
    from oneshot_panoptic.data.coco_panoptic import CocoPanoptic

    dataset = CocoPanoptic(image_dir, panoptic_json, panoptic_dir)
    n = dataset.validate(progress=True)
    meta = dataset.metadata
    click.echo(f"ok: {n} images, {meta.num_things} thing and {meta.num_stuff} stuff categories")
