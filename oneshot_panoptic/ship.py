"""Shipping a found Auto-Panoptic network: the public builder of a frozen network (from a
``state_dict`` export), the part exported to TorchScript/ONNX, predictions on images and their
COCO-panoptic files and overlays (docs/ship.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from oneshot.errors import ArchitectureError
from oneshot.export import ExportError, ExportPart, load_weights, read_state_dict_export
from oneshot.files import atomic_write, atomic_write_json
from oneshot.space import Architecture, SearchSpace
from oneshot.supernet import freeze
from oneshot_panoptic.modeling.builder import build_autopanoptic
from oneshot_panoptic.modeling.model import AutoPanoptic
from oneshot_panoptic.structures import PanopticMetadata, PanopticSegmentation

__all__ = [
    "DenseAutoPanoptic",
    "PanopticPredictionWriter",
    "build_model",
    "dense_export_part",
    "predict_panoptic_images",
]

#: What the dense part leaves out, and why (printed with every TorchScript / ONNX export).
NOT_EXPORTED = (
    "the detector parts (torchvision's RPN and RoI heads: proposal selection, NMS and per-image "
    "box filtering are data-dependent control flow that neither torch.jit.script of this network, "
    "torch.export nor the ONNX exporter handle) and the panoptic fusion; the whole network: --format state_dict"
)


def build_model(
    arch: Architecture | Mapping[str, Any],
    preset: str = "tiny",
    *,
    num_things: int,
    num_stuff: int,
    weights: str | Path | Mapping[str, Tensor] | None = None,
    **overrides: Any,
) -> AutoPanoptic:
    """The frozen Auto-Panoptic network of ``arch`` (eval mode, CPU), with ``weights``: a
    ``state_dict`` export written by ``oneshot export`` (its architecture, preset and options must
    be the ones given: a mismatch raises :class:`~oneshot.export.ExportError`), a plain state dict,
    or ``None`` (fresh initialisation)."""
    supernet = build_autopanoptic(preset, num_things=num_things, num_stuff=num_stuff, **overrides)
    space = SearchSpace.from_module(supernet)
    try:
        arch = arch if isinstance(arch, Architecture) else Architecture.from_json(space, dict(arch))
    except ArchitectureError as exc:
        raise ExportError(f"architecture does not fit preset {preset!r}: {exc}") from None
    model = freeze(supernet, arch).eval()
    if weights is None:
        return model  # type: ignore[return-value]
    what = "the given weights"
    if isinstance(weights, (str, Path)):
        payload = read_state_dict_export(weights)
        spec = payload["spec"]
        if payload["task"] != "panoptic":
            raise ExportError(f"{weights} holds a model of task {payload['task']!r}, not 'panoptic'")
        if payload["architecture"] != arch.to_json():
            raise ExportError(f"{weights} holds architecture {json.dumps(payload['architecture'])}, not {json.dumps(arch.to_json())}")
        given = {"preset": preset, "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
                 "num_things": num_things, "num_stuff": num_stuff}
        for key, value in given.items():
            if spec.get(key) != value:
                raise ExportError(f"{weights} was exported with {key}={spec.get(key)!r}, not {value!r}")
        weights, what = payload["weights"], f"the weights in {weights}"
    load_weights(model, weights, what=what)
    return model  # type: ignore[return-value]


class DenseAutoPanoptic(nn.Module):
    """The dense part of a frozen :class:`AutoPanoptic`: ``(N, 3, H, W)`` images in ``[0, 1]``
    (``H, W`` multiples of 32) -> semantic logits ``(N, S + 1, H, W)`` and the calibrated FPN
    levels P2..P6 that the detector heads take. Normalisation is included."""

    def __init__(self, model: AutoPanoptic) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(model.transform.image_mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(model.transform.image_std).view(1, 3, 1, 1))

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        x = (images - self.mean) / self.std
        features, semantic = self.model.forward_features(x)
        logits = self.model.semantic_head.predict(semantic)
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return (logits, *features.values())


def dense_export_part(model: AutoPanoptic, size: int) -> ExportPart:
    """The exportable part of ``model`` on one ``(1, 3, size, size)`` image (a fixed shape)."""
    if size % 32:
        raise ExportError(f"the exported part needs an input size that is a multiple of 32, not {size}")
    example = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    return ExportPart(
        DenseAutoPanoptic(model).eval(),
        (example,),
        "the dense part of the panoptic network (normalisation, backbone, FPN, semantic subnet, "
        f"inter-modular attention, semantic classifier); not exported: {NOT_EXPORTED}",
        input_names=["images"],
        output_names=["sem_seg", "p2", "p3", "p4", "p5", "p6"],
        fixed_shape=True,
    )


def _as_tensor(image: Any) -> Tensor:
    if isinstance(image, Tensor):
        return image.float()
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


@torch.no_grad()
def predict_panoptic_images(
    model: AutoPanoptic,
    images: Sequence[Any],
    metadata: PanopticMetadata,
    *,
    test_size: int,
    max_size: int,
    device: torch.device | str = "cpu",
    **postprocess_options: Any,
) -> list[PanopticSegmentation]:
    """Panoptic segmentations of ``images`` (``(3, H, W)`` tensors in ``[0, 1]`` or PIL images) at
    their own sizes: each is resized as at evaluation (shorter side ``test_size``, longer at most
    ``max_size``), run through ``model`` and post-processed back to ``(H, W)``."""
    from torchvision.transforms.v2 import functional as TF

    from oneshot_panoptic.data.transforms import ResizeShortestSide

    resize = ResizeShortestSide(test_size, max_size, resize_panoptic=False)
    tensors = [_as_tensor(img).to(device) for img in images]
    sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
    inputs = []
    for t, (h, w) in zip(tensors, sizes, strict=True):
        nh, nw = resize.output_size(h, w, test_size)
        inputs.append(t if (nh, nw) == (h, w) else TF.resize(t, [nh, nw], antialias=True))
    return model.predict_panoptic(inputs, metadata, image_sizes=sizes, **postprocess_options)


def _image_id(name: str) -> int | str:
    return int(name) if name.isdigit() else name


class PanopticPredictionWriter:
    """COCO-panoptic prediction files under ``folder``: ``panoptic/<name>.png`` (ids as RGB),
    ``predictions.json`` (``annotations`` with ``image_id`` = the name, as an integer when it is
    one, ``file_name`` and ``segments_info``; ``images``; ``categories``), and colour overlays in
    ``overlays/<name>.png``."""

    def __init__(self, folder: str | Path, metadata: PanopticMetadata, *, overlays: bool = True) -> None:
        self.folder = Path(folder)
        self.metadata = metadata
        self.overlays = overlays
        self.annotations: list[dict[str, Any]] = []
        self.images: list[dict[str, Any]] = []

    def add(self, name: str, image: Any, prediction: PanopticSegmentation) -> None:
        from PIL import Image

        from oneshot_panoptic.data.panoptic_io import id2rgb
        from oneshot_panoptic.visualize import overlay_panoptic

        seg = prediction.seg_map
        ids = np.asarray(seg.cpu() if isinstance(seg, Tensor) else seg)
        atomic_write(self.folder / "panoptic" / f"{name}.png", lambda fh: Image.fromarray(id2rgb(ids), mode="RGB").save(fh, format="PNG"))
        segments = [{k: (float(v) if isinstance(v, float) else v) for k, v in s.items()} for s in prediction.segments]
        self.annotations.append({"image_id": _image_id(name), "file_name": f"{name}.png", "segments_info": segments})
        self.images.append({"id": _image_id(name), "file_name": name, "height": int(ids.shape[0]), "width": int(ids.shape[1])})
        if self.overlays:
            picture = overlay_panoptic(image, prediction, self.metadata, scale=max(1, 256 // max(ids.shape)))
            atomic_write(self.folder / "overlays" / f"{name}.png", lambda fh: Image.fromarray(picture).save(fh, format="PNG"))

    def close(self) -> dict[str, Any]:
        path = atomic_write_json(
            self.folder / "predictions.json",
            {"images": self.images, "annotations": self.annotations, "categories": list(self.metadata.categories)},
            default=lambda o: o.item() if hasattr(o, "item") else str(o),
        )
        out = {"pred_json": str(path), "pred_folder": str(self.folder / "panoptic")}
        if self.overlays:
            out["overlays"] = str(self.folder / "overlays")
        return out
