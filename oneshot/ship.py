"""Using the found network of a run: its weights (retrained when the run has them), export, and
predictions on a folder of images (``oneshot export``, ``oneshot predict``; docs/ship.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from oneshot.errors import DatasetError
from oneshot.export import export_model, load_model, load_weights
from oneshot.space import Architecture

if TYPE_CHECKING:
    from oneshot.pipeline import Pipeline
    from oneshot.tasks import Task

__all__ = [
    "IMAGE_SUFFIXES",
    "export_run",
    "found_model",
    "load_for_predict",
    "picture_grid_markdown",
    "predict_folder",
    "retrained_model",
    "retrained_weights_path",
    "write_prediction_grid",
]

log = logging.getLogger("oneshot")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def retrained_weights_path(pipe: Pipeline, arch: Architecture) -> Path:
    """Where :meth:`Pipeline.retrain` leaves the retrained weights of ``arch``."""
    return pipe.retrain_dir(arch) / "model_state.pt"


def retrained_model(pipe: Pipeline, arch: Architecture) -> nn.Module | None:
    """The frozen ``arch`` with the weights the run retrained (eval mode), or ``None`` when it has none."""
    from oneshot.supernet import freeze

    path = retrained_weights_path(pipe, arch)
    if not path.exists():
        return None
    pipe.prepare_data()
    model = freeze(pipe.task.build_supernet(), arch)
    weights = torch.load(path, map_location=pipe.device, weights_only=True)
    load_weights(model, weights, what=f"the retrained weights in {path}")
    return model.eval()


def found_model(pipe: Pipeline, arch: Architecture, *, supernet: nn.Module | None = None) -> tuple[nn.Module, str]:
    """The frozen ``arch`` (eval mode) and where its weights come from: ``"retrained"`` (the run
    retrained it) or ``"supernet"`` (inherited, as the task's ``standalone_model`` prepares them)."""
    retrained = retrained_model(pipe, arch)
    if retrained is not None:
        return retrained, "retrained"
    pipe.prepare_data()
    supernet = supernet if supernet is not None else pipe.load_supernet()
    return pipe.task.standalone_model(supernet, arch).eval(), "supernet"


def export_run(pipe: Pipeline, arch: Architecture, output: Path, *, fmt: str = "state_dict") -> dict[str, Any]:
    """Export the found ``arch`` of the run (retrained weights when present) to ``output``."""
    model, source = found_model(pipe, arch)
    part = pipe.task.export_part(model) if fmt != "state_dict" else None
    return export_model(model, fmt, output, task=pipe.task_cls.name, arch=arch, spec=pipe.task.model_spec(),
                        part=part, weights_source=source)


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def predict_folder(
    task: Task,
    model: nn.Module,
    images: str | Path,
    output: str | Path,
    *,
    on_bad_image: Literal["skip", "fail"] = "skip",
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``model`` on every image file in ``images`` (sorted by name) and write the task's
    predictions under ``output``. An unreadable image is skipped with one warning line naming it
    (``on_bad_image="skip"``; the line goes to ``warn``, default the ``oneshot`` logger) or stops
    everything with a :class:`DatasetError` (``"fail"``)."""
    from tqdm import tqdm

    files = _image_files(Path(images))
    writer = task.prediction_writer(output)
    skipped: list[str] = []
    model.eval()
    for path in tqdm(files, desc="predict", unit="img", disable=not progress):
        try:
            image = task.load_image(path)
        except Exception as exc:
            line = f"bad image {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if on_bad_image == "fail":
                raise DatasetError(line + " (use --on-bad-image skip to skip it)") from None
            (warn or log.warning)(f"{line}; skipped")
            skipped.append(str(path))
            continue
        with torch.no_grad():
            prediction = task.predict(model, [image])[0]
        writer.add(path.stem, image, prediction)
    summary: dict[str, Any] = dict(writer.close())
    summary.update(images=len(files) - len(skipped), skipped=skipped)
    return summary


def load_for_predict(task: Task, path: str | Path) -> nn.Module:
    """A ``state_dict`` export given by ``--model``, checked to be of ``task``."""
    from oneshot.export import read_state_dict_export

    payload = read_state_dict_export(path)
    if payload["task"] != task.name:
        raise DatasetError(f"{path} holds a model of task {payload['task']!r}, not {task.name!r}")
    return load_model(path, device=task.device)


PICTURE_GRID = "predictions.png"


def write_prediction_grid(
    pipe: Pipeline, arch: Architecture, *, supernet: nn.Module | None = None, retrained: nn.Module | None = None
) -> Path | None:
    """``RUN/predictions.png``: a few ``val`` images | ground truth | ``arch`` on the supernet |
    retrained (when the run has it), drawn by the task's ``example_pictures``. Tasks without
    pictures get none; a failure to draw is logged, never raised (the report does not depend on it)."""
    from oneshot.tasks import Task

    if type(pipe.task).example_pictures is Task.example_pictures:
        return None
    try:
        from oneshot.viz import plot_picture_grid

        models: dict[str, nn.Module] = {}
        if supernet is None and pipe.path("supernet").exists():
            supernet = pipe.load_supernet()
        if supernet is not None:
            models["found architecture, supernet weights"] = pipe.task.standalone_model(supernet, arch)
        retrained = retrained if retrained is not None else retrained_model(pipe, arch)
        if retrained is not None:
            models["retrained"] = retrained
        rows = pipe.task.example_pictures(models, count=3)
        if not rows:
            return None
        target = pipe.run_dir / PICTURE_GRID
        plot_picture_grid(rows, path=target)
        return target
    except Exception as exc:  # pictures are a courtesy: never fail a run over them
        log.warning("could not draw the prediction pictures: %s: %s", type(exc).__name__, exc)
        return None


def picture_grid_markdown(run_dir: Path) -> str:
    """The report's section showing ``predictions.png`` (empty when the run has none)."""
    if not (run_dir / PICTURE_GRID).exists():
        return ""
    return (
        "\n## Predictions on val images\n\ninput | ground truth | found architecture with the supernet's "
        f"weights | retrained (when run)\n\n![predictions]({PICTURE_GRID})\n"
    )

