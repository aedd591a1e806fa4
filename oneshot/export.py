"""Exporting a found network: a state dict with what rebuilds it, a TorchScript program, an ONNX graph.

Three formats (``oneshot export --format ...``, see ``docs/ship.md``):

* ``state_dict``: a ``torch.save``'d dict of plain data (loadable with ``weights_only=True``):
  ``task``, ``architecture`` (JSON), ``spec`` (what the task's :meth:`~oneshot.tasks.Task.build_model`
  needs to rebuild the frozen network), ``weights`` and ``weights_source`` (``retrained`` or
  ``supernet``). :func:`load_model` rebuilds it; needs oneshot and the task's package.
* ``torchscript``: the task's exportable part (:meth:`~oneshot.tasks.Task.export_part`) scripted
  (or, when scripting fails, traced at the example input's shape); ``torch.jit.load`` runs it
  without oneshot.
* ``onnx``: the same part through ``torch.onnx.export`` (the TorchScript-based exporter,
  ``dynamo=False``: the dynamo one needs ``onnxscript``), checked with onnxruntime when installed.

Every file is written atomically: a failed export leaves nothing behind.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from oneshot.errors import OneshotError
from oneshot.files import atomic_write
from oneshot.space import Architecture

__all__ = [
    "EXPORT_FORMATS",
    "ExportError",
    "ExportPart",
    "export_model",
    "load_model",
    "max_abs_difference",
    "read_state_dict_export",
]

ExportFormat = Literal["state_dict", "torchscript", "onnx"]
EXPORT_FORMATS: tuple[str, ...] = ("state_dict", "torchscript", "onnx")
STATE_DICT_FORMAT = "oneshot.state_dict/1"
ONNX_OPSET = 17


class ExportError(OneshotError):
    """A model (or one of its parts or ops) cannot be exported in the requested format."""


@dataclass
class ExportPart:
    """What a task exports to TorchScript and ONNX: a module taking tensors and returning tensors.

    ``description`` says exactly which part of the network it is (printed by ``oneshot export``);
    ``example`` is the input it is traced/checked on; ``fixed_shape`` is true when the program
    only accepts the example's shape.
    """

    module: nn.Module
    example: tuple[torch.Tensor, ...]
    description: str
    input_names: list[str] = field(default_factory=lambda: ["input"])
    output_names: list[str] = field(default_factory=lambda: ["output"])
    fixed_shape: bool = False


def _flatten(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, Mapping):
        return [t for v in out.values() for t in _flatten(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in _flatten(v)]
    return []


def max_abs_difference(a: Any, b: Any) -> float:
    """Largest absolute difference between two (nested) tensor outputs of equal structure."""
    xs, ys = _flatten(a), _flatten(b)
    if len(xs) != len(ys):
        raise ValueError(f"outputs differ in count: {len(xs)} vs {len(ys)}")
    diffs = [float((torch.as_tensor(x).float() - torch.as_tensor(y).float()).abs().max()) for x, y in zip(xs, ys, strict=True) if x.numel()]
    return max(diffs, default=0.0)


# ---------------------------------------------------------------------- state dict
def _state_payload(task: str, arch: Architecture, spec: Mapping[str, Any], model: nn.Module, source: str) -> dict[str, Any]:
    return {
        "format": STATE_DICT_FORMAT,
        "task": task,
        "architecture": arch.to_json(),
        "spec": dict(spec),
        "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "weights_source": source,
    }


def read_state_dict_export(path: str | Path) -> dict[str, Any]:
    """The payload of a ``state_dict`` export (plain data, read with ``weights_only=True``)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ExportError(f"no exported model at {path}") from None
    except Exception as exc:
        raise ExportError(f"{path} is not a oneshot state_dict export ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != STATE_DICT_FORMAT:
        raise ExportError(f"{path} is not a oneshot state_dict export (expected format {STATE_DICT_FORMAT!r})")
    return payload


def load_weights(model: nn.Module, weights: Mapping[str, torch.Tensor], *, what: str) -> nn.Module:
    """``model.load_state_dict(weights)`` (strict) with a mismatch reported in one line."""
    result = model.state_dict()
    missing = sorted(set(result) - set(weights))
    unexpected = sorted(set(weights) - set(result))
    shapes = [k for k in set(result) & set(weights) if tuple(result[k].shape) != tuple(weights[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for name, keys in (("missing", missing), ("unexpected", unexpected), ("other shapes", sorted(shapes))):
            if keys:
                parts.append(f"{len(keys)} {name} (e.g. {keys[0]})")
        raise ExportError(f"{what} do not fit the model built for this architecture and preset: " + ", ".join(parts))
    model.load_state_dict(weights)
    return model


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the frozen network of a ``state_dict`` export (eval mode): the task named in the
    file rebuilds it from its ``spec`` and ``architecture`` (:meth:`~oneshot.tasks.Task.build_model`)."""
    from oneshot.tasks import get_task

    payload = read_state_dict_export(path)
    task_cls = get_task(payload["task"])
    model = task_cls.build_model(payload["spec"], payload["architecture"])
    load_weights(model, payload["weights"], what=f"the weights in {path}")
    return model.to(device).eval()


# ---------------------------------------------------------------------- programs
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _torchscript(part: ExportPart) -> tuple[torch.jit.ScriptModule, str]:
    try:
        return torch.jit.script(part.module), "scripted"
    except Exception:
        pass  # scripting needs annotations everywhere; tracing records the ops actually run
    try:
        with torch.no_grad():
            traced = torch.jit.trace(part.module, part.example, check_trace=False)
    except Exception as exc:
        raise ExportError(f"cannot export {part.description} to torchscript ({_first_line(exc)}); state_dict works") from None
    part.fixed_shape = True
    return traced, f"traced at input shape {[tuple(x.shape) for x in part.example]}"


def _onnx_bytes(part: ExportPart) -> bytes:
    buffer = io.BytesIO()
    try:
        with torch.no_grad():
            torch.onnx.export(
                part.module, part.example, buffer, dynamo=False, opset_version=ONNX_OPSET,
                input_names=part.input_names, output_names=part.output_names,
            )
    except Exception as exc:
        raise ExportError(
            f"cannot export {part.description} to onnx opset {ONNX_OPSET} ({_first_line(exc)}); "
            "state_dict and torchscript work"
        ) from None
    return buffer.getvalue()


def onnxruntime_outputs(data: bytes | str | Path, inputs: Sequence[torch.Tensor]) -> list[Any] | None:
    """Outputs of an ONNX model under onnxruntime (CPU), or ``None`` when onnxruntime is absent."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    source = data if isinstance(data, bytes) else str(data)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    feeds = {i.name: x.detach().cpu().numpy() for i, x in zip(session.get_inputs(), inputs, strict=True)}
    return list(session.run(None, feeds))


def export_model(
    model: nn.Module,
    fmt: str,
    output: str | Path,
    *,
    task: str,
    arch: Architecture,
    spec: Mapping[str, Any],
    part: ExportPart | None,
    weights_source: str,
) -> dict[str, Any]:
    """Write the frozen ``model`` (eval mode, CPU) to ``output`` in format ``fmt``.

    ``part`` is what TorchScript and ONNX export (see :class:`ExportPart`); the program is loaded
    back and run on ``part.example`` and the largest absolute difference to the eager part is
    returned (``max_abs_diff``). Returns a JSON-able description of the file.
    """
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; available: {', '.join(EXPORT_FORMATS)}")
    output = Path(output)
    model = model.cpu().eval()
    info: dict[str, Any] = {
        "path": str(output), "format": fmt, "task": task, "architecture": arch.to_json(),
        "weights": weights_source, "params": sum(p.numel() for p in model.parameters()),
    }
    if fmt == "state_dict":
        payload = _state_payload(task, arch, spec, model, weights_source)
        atomic_write(output, lambda fh: torch.save(payload, fh))
        info["contains"] = "weights + architecture + the spec that rebuilds the whole network (oneshot.export.load_model)"
        return info
    assert part is not None
    part.module = part.module.cpu().eval()
    part.example = tuple(x.cpu() for x in part.example)
    with torch.no_grad():
        reference = part.module(*part.example)
    info["contains"] = part.description
    info["inputs"] = {n: list(x.shape) for n, x in zip(part.input_names, part.example, strict=True)}
    info["outputs"] = part.output_names
    with warnings.catch_warnings():
        # the exported shape is stated (fixed_shape); tracer and deprecation warnings would only repeat it
        warnings.simplefilter("ignore")
        _export_program(fmt, part, reference, info, output)
    info["fixed_shape"] = part.fixed_shape or fmt == "onnx"
    return info


def _export_program(fmt: str, part: ExportPart, reference: Any, info: dict[str, Any], output: Path) -> None:
    if fmt == "torchscript":
        program, how = _torchscript(part)
        buffer = io.BytesIO()
        torch.jit.save(program, buffer)
        loaded = torch.jit.load(io.BytesIO(buffer.getvalue()))
        with torch.no_grad():
            info["max_abs_diff"] = max_abs_difference(reference, loaded(*part.example))
        info["how"] = how
        atomic_write(output, lambda fh: fh.write(buffer.getvalue()))
    else:
        data = _onnx_bytes(part)
        outputs = onnxruntime_outputs(data, part.example)
        info["how"] = f"torch.onnx.export (TorchScript-based exporter, opset {ONNX_OPSET}), fixed input shape"
        if outputs is None:
            info["checked"] = "not checked: onnxruntime is not installed (pip install onnxruntime)"
        else:
            info["max_abs_diff"] = max_abs_difference(reference, [torch.from_numpy(o) for o in outputs])
            info["checked"] = "onnxruntime (CPU) on the example input"
        atomic_write(output, lambda fh: fh.write(data))
