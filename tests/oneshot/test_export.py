"""Export formats of the toy task (a plain CNN: every format exports the whole network), their
reload without oneshot, the retrained weights, and predictions on an image folder."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from oneshot.errors import DatasetError
from oneshot.export import ExportError, load_model, read_state_dict_export
from oneshot.pipeline import open_run
from oneshot.ship import found_model, predict_folder
from oneshot.space import SearchSpace

TINY = ["train.iterations=6", "retrain.iterations=4", "data.num_train=64", "data.num_val=16", "search.options.path-priority.cycles=1"]

#: Runs a program with oneshot unimportable (a meta-path finder refuses it), outside the worktree.
BLOCKED_RUNNER = textwrap.dedent(
    """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("oneshot", "oneshot_panoptic"):
                raise ImportError("oneshot is not importable here")
    sys.meta_path.insert(0, _Block())
    exec(open(sys.argv[1]).read())
    assert not any(m.split(".")[0] in ("oneshot", "oneshot_panoptic") for m in sys.modules)
    """
)


def run_without_oneshot(tmp_path, program: str) -> subprocess.CompletedProcess:
    """Run ``program`` with ``python -I`` in ``tmp_path`` (no PYTHONPATH, no cwd on the path) and
    oneshot blocked from importing; fails the test on a non-zero exit."""
    (tmp_path / "runner.py").write_text(BLOCKED_RUNNER)
    (tmp_path / "program.py").write_text(textwrap.dedent(program))
    proc = subprocess.run([sys.executable, "-I", "runner.py", "program.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("toy") / "run"
    pipe = open_run("toy", run_dir=run, preset="tiny", overrides=TINY, progress=False)
    model = pipe.train_supernet()
    pipe.report(model, pipe.search(model))
    return run


def _pipe(run):
    return open_run("toy", run_dir=run, progress=False)


def _arch(pipe):
    return pipe.found_architecture(SearchSpace.from_module(pipe.task.build_supernet()))


def test_state_dict_round_trip_and_weight_source(toy_run, tmp_path):
    pipe = _pipe(toy_run)
    arch = _arch(pipe)
    info = pipe.export(arch, tmp_path / "m.pt")
    assert info["weights"] == "supernet"
    eager, _ = found_model(pipe, arch)
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "m.pt")(x), eager(x))
    payload = read_state_dict_export(tmp_path / "m.pt")  # plain data: weights_only loading
    assert payload["task"] == "toy" and payload["architecture"] == arch.to_json()

    pipe.retrain(arch)
    info = pipe.export(arch, tmp_path / "r.pt")
    assert info["weights"] == "retrained"
    retrained = torch.load(toy_run / "retrain" / arch.key[:64] / "model_state.pt", weights_only=True)
    reloaded = load_model(tmp_path / "r.pt").state_dict()
    assert all(torch.equal(reloaded[k], v) for k, v in retrained.items())


def test_mismatching_architecture_is_one_line(toy_run, tmp_path):
    pipe = _pipe(toy_run)
    arch = _arch(pipe)
    pipe.export(arch, tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    space = SearchSpace.from_module(pipe.task.build_supernet())
    other = next(a for a in (space.sample(np.random.default_rng(s)) for s in range(100)) if a.to_json()["body"] != arch.to_json()["body"])
    payload["architecture"] = other.to_json()
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ExportError, match="do not fit the model built for this architecture") as err:
        load_model(tmp_path / "bad.pt")
    assert "\n" not in str(err.value)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ExportError, match="is not a oneshot state_dict export"):
        load_model(tmp_path / "junk.pt")


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_program_runs_without_oneshot(toy_run, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'oneshot[export]')")
        pytest.importorskip("onnx", reason="onnx is not installed (pip install 'oneshot[export]')")
    pipe = _pipe(toy_run)
    arch = _arch(pipe)
    target = tmp_path / ("m.ts.pt" if fmt == "torchscript" else "m.onnx")
    info = pipe.export(arch, target, fmt=fmt)
    assert info["contains"] == "the whole toy network" and info["max_abs_diff"] < 1e-5
    eager, _ = found_model(pipe, arch)
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.save({"x": x, "y": eager(x)}, tmp_path / "io.pt")
    load = (
        "y = torch.jit.load('m.ts.pt')(x)"
        if fmt == "torchscript"
        else "import onnxruntime as ort\ns = ort.InferenceSession('m.onnx', providers=['CPUExecutionProvider'])\n"
        "y = torch.from_numpy(s.run(None, {s.get_inputs()[0].name: x.numpy()})[0])"
    )
    proc = run_without_oneshot(tmp_path, f"import torch\nd = torch.load('io.pt')\nx = d['x']\n{load}\nprint(float((y - d['y']).abs().max()))\n")
    # tolerances: TorchScript runs the same kernels (exact here, 1e-6 allowed); onnxruntime 1e-4
    assert float(proc.stdout.strip()) <= (1e-6 if fmt == "torchscript" else 1e-4)


def test_failed_export_leaves_no_file(toy_run, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::fancy' to ONNX opset version 17 is not supported.\nmore")

    monkeypatch.setattr(torch.onnx, "export", broken)
    pipe = _pipe(toy_run)
    with pytest.raises(ExportError) as err:
        pipe.export(_arch(pipe), tmp_path / "m.onnx", fmt="onnx")
    message = str(err.value)
    assert "aten::fancy" in message and "state_dict and torchscript work" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_predict_folder_skips_or_refuses_bad_images(toy_run, tmp_path):
    from PIL import Image

    pipe = _pipe(toy_run)
    model, _ = found_model(pipe, _arch(pipe))
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(images / f"{name}.png")
    (images / "c.png").write_bytes(b"broken")
    summary = predict_folder(pipe.task, model, images, tmp_path / "out", on_bad_image="skip", progress=False)
    assert summary["images"] == 2 and summary["skipped"] == [str(images / "c.png")]
    classes = json.loads((tmp_path / "out" / "predictions.json").read_text())
    x = torch.stack([pipe.task.load_image(images / f"{n}.png") for n in ("a", "b")])
    assert [classes["a"], classes["b"]] == pipe.task.predict(model, list(x))
    with pytest.raises(DatasetError, match=r"bad image .*c\.png"):
        predict_folder(pipe.task, model, images, tmp_path / "out2", on_bad_image="fail", progress=False)


def test_runner_really_blocks_oneshot(tmp_path):
    (tmp_path / "runner.py").write_text(BLOCKED_RUNNER)
    (tmp_path / "program.py").write_text("import oneshot\n")
    proc = subprocess.run([sys.executable, "-I", "runner.py", "program.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "oneshot is not importable here" in proc.stderr
