"""Shipping a panoptic network: the public builder, the dense part in TorchScript and ONNX (run
where oneshot cannot be imported), COCO-panoptic prediction files scored like the in-memory
evaluation, overlays and the report's picture rows. Micro data (64 px), untrained weights."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from oneshot.export import ExportError, export_model
from oneshot.pipeline import open_run
from oneshot.ship import predict_folder
from oneshot.space import Architecture, SearchSpace
from oneshot_panoptic import (
    DenseAutoPanoptic,
    build_model,
    evaluate_panoptic_files,
    overlay_panoptic,
)
from oneshot_panoptic.evaluation.evaluator import pq_metrics
from oneshot_panoptic.structures import PanopticMetadata, PanopticSegmentation
from tests.oneshot.test_export import run_without_oneshot

MICRO = [
    "data.synthetic.num_images=40",
    "data.synthetic.size=64",
    "data.short_sizes=[64]",
    "data.test_size=64",
    "data.max_size=64",
    "eval.bn_batches=1",
    "eval.bn_batch_size=2",
    "eval.batch_size=1",  # as `predict` (one image at a time): the same arithmetic in both paths
    "eval.instance_score_threshold=0.2",  # untrained: let some instances through the fusion
]
#: Deformable (dfconv3x3, dfconv5x5) and dilated (atconv5x5) head layers, so they are exported too.
ARCH = {"backbone": [0, 1, 2, 3, 0, 1, 2, 3], "head": [2, 3, 0, 1, 2, 5, 4], "inter": [0, 1, 2, 0, 1, 2, 0, 1, 2]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ship")
    pipe = open_run("panoptic", run_dir=root / "run", preset="tiny", overrides=[*MICRO, f"data.cache_dir={root / 'cache'}"], progress=False)
    pipe.prepare_data()
    torch.manual_seed(0)
    supernet = pipe.task.build_supernet()
    arch = Architecture.from_json(SearchSpace.from_module(supernet), ARCH)
    model = pipe.task.standalone_model(supernet, arch)
    return pipe, arch, model


def test_prediction_files_score_like_the_in_memory_evaluation(setup, tmp_path):
    pipe, _, model = setup
    task = pipe.task
    val = task._paths["val"]
    in_memory = task.evaluate_standalone(model, split="val")
    summary = predict_folder(task, model, val.image_dir, tmp_path / "pred", progress=False)
    assert summary["skipped"] == [] and summary["images"] == len(list((tmp_path / "pred" / "overlays").iterdir()))
    files = pq_metrics(evaluate_panoptic_files(val.panoptic_json, val.panoptic_dir, summary["pred_json"], summary["pred_folder"]))
    for key in ("pq", "sq", "rq", "pq_th", "pq_st"):
        assert files[key] == pytest.approx(in_memory[key], abs=1e-9), key
    # the files hold exactly the in-memory segmentation (ids and segments)
    from oneshot_panoptic.data.panoptic_io import read_panoptic_png

    pred_json = json.loads(open(summary["pred_json"]).read())
    first = pred_json["annotations"][0]
    image = task.load_image(f"{val.image_dir}/{first['file_name'][:-4]}.jpg")
    expected = task.predict(model, [image])[0]
    assert np.array_equal(read_panoptic_png(tmp_path / "pred" / "panoptic" / first["file_name"]), expected.seg_map.cpu().numpy())
    assert [s["category_id"] for s in first["segments_info"]] == [s["category_id"] for s in expected.segments]
    assert any(s["category_id"] in task.metadata.thing_ids for a in pred_json["annotations"] for s in a["segments_info"]), "no instance reached the files"


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_dense_part_runs_without_oneshot(setup, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'oneshot[export]')")
        pytest.importorskip("onnx", reason="onnx is not installed (pip install 'oneshot[export]')")
    pipe, arch, model = setup
    target = tmp_path / ("m.ts.pt" if fmt == "torchscript" else "m.onnx")
    info = export_model(model, fmt, target, task="panoptic", arch=arch, spec=pipe.task.model_spec(),
                        part=pipe.task.export_part(model), weights_source="supernet")
    assert "dense part" in info["contains"] and "RPN and RoI heads" in info["contains"]
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.save({"x": x, "y": list(DenseAutoPanoptic(model).eval()(x))}, tmp_path / "io.pt")
    load = (
        "y = torch.jit.load('m.ts.pt')(x)"
        if fmt == "torchscript"
        else "import onnxruntime as ort\ns = ort.InferenceSession('m.onnx', providers=['CPUExecutionProvider'])\n"
        "y = [torch.from_numpy(o) for o in s.run(None, {'images': x.numpy()})]"
    )
    program = f"import torch\nd = torch.load('io.pt')\nx = d['x']\n{load}\nprint(max(float((a - b).abs().max()) for a, b in zip(y, d['y'])))\n"
    proc = run_without_oneshot(tmp_path, program)
    # tolerances: the traced program runs the same kernels (1e-5); onnxruntime's own kernels 1e-4
    assert float(proc.stdout.strip()) <= (1e-5 if fmt == "torchscript" else 1e-4)


def test_build_model_from_export_and_loud_mismatches(setup, tmp_path):
    pipe, arch, model = setup
    spec = pipe.task.model_spec()
    path = tmp_path / "m.pt"
    export_model(model, "state_dict", path, task="panoptic", arch=arch, spec=spec, part=None, weights_source="supernet")
    common = dict(num_things=spec["num_things"], num_stuff=spec["num_stuff"], **spec["overrides"])
    rebuilt = build_model(ARCH, "tiny", weights=path, **common)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(DenseAutoPanoptic(rebuilt)(x), DenseAutoPanoptic(model)(x)))
    other = {**ARCH, "head": [0] * 7}
    with pytest.raises(ExportError, match="holds architecture"):
        build_model(other, "tiny", weights=path, **common)
    with pytest.raises(ExportError, match="exported with overrides"):
        build_model(ARCH, "tiny", weights=path, num_things=spec["num_things"], num_stuff=spec["num_stuff"])


def test_overlay_colours_outlines_and_size():
    meta = PanopticMetadata.from_categories([
        {"id": 1, "name": "disc", "isthing": 1, "color": [255, 0, 0]},
        {"id": 2, "name": "sky", "isthing": 0, "color": [0, 0, 255]},
    ])
    seg = np.full((20, 20), 2)
    seg[5:15, 5:15] = 1
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    pan = PanopticSegmentation(seg, [{"id": 1, "category_id": 1}, {"id": 2, "category_id": 2}])
    out = overlay_panoptic(image, pan, meta, alpha=0.5, labels=False)
    assert out.shape == (20, 20, 3)
    assert tuple(out[10, 10]) == (128, 0, 0) and tuple(out[0, 0]) == (0, 0, 128)
    assert tuple(out[5, 10]) == (255, 255, 255)  # instance outline
    assert overlay_panoptic(image, pan, meta, scale=3).shape == (60, 60, 3)


def test_report_picture_rows(setup):
    pipe, _, model = setup
    rows = pipe.task.example_pictures({"found": model}, count=2)
    assert len(rows) == 2 and [t for t, _ in rows[0]] == ["input", "ground truth", "found"]
    assert all(p.shape == rows[0][0][1].shape and p.dtype == np.uint8 for row in rows for _, p in row)


def test_library_predict_takes_pil_images_and_tensors(setup):
    from PIL import Image

    pipe, _, model = setup
    path = sorted(Path(pipe.task._paths["val"].image_dir).iterdir())[0]
    with Image.open(path) as pil:
        from_pil = pipe.task.predict(model, [pil.copy()])[0]
    from_tensor = pipe.task.predict(model, [pipe.task.load_image(path)])[0]
    assert torch.equal(from_pil.seg_map, from_tensor.seg_map) and from_pil.segments == from_tensor.segments
