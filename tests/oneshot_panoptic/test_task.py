"""The panoptic task end to end on a micro configuration: CLI, reports, kill-and-resume, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from oneshot import ConfigError
from oneshot.config import load_config
from oneshot_panoptic.config import PRESETS, PanopticConfig
from tests.oneshot_panoptic.micro import MICRO_RUN

MICRO = [
    *MICRO_RUN,
    "train.iterations=4",
    "train.checkpoint_every=2",
    "train.batch_size=1",
    "eval.max_images=4",
    "search.options.path-priority.cycles=1",
    "search.random_baselines=2",
]


def _run(args, *, cache, env=None, check=True):
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "ONESHOT_CACHE_DIR": str(cache), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "oneshot.cli", *args], capture_output=True, text=True, env=full_env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"oneshot {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return proc


def _search(out, cache, *extra, env=None, check=True):
    sets = [a for s in MICRO for a in ("--set", s)]
    return _run(["search", "--task", "panoptic", "--preset", "tiny", "--out", str(out), "--quiet", *sets, *extra], cache=cache, env=env, check=check)


def _evaluations(run: Path) -> dict:
    out = {}
    for line in (run / "evaluations.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "key" in rec:
            out[rec["key"]] = (rec["fitness"], rec.get("metrics"))
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("ref") / "run"
    _search(out, cache)
    return out


def test_report_and_architecture(reference):
    report = json.loads((reference / "report.json").read_text())
    arch = json.loads((reference / "architecture.json").read_text())
    assert [len(arch[c]) for c in ("backbone", "head", "inter")] == [8, 7, 9]
    for key in ("pq", "sq", "rq", "pq_th", "pq_st", "sem_miou", "sem_acc"):
        assert key in report["found"]["metrics"]
    assert 0.0 <= report["found"]["metrics"]["sem_acc"] <= 100.0
    assert report["search_cost"]["evaluations"] == 12
    for name in ("scores.png", "explored.png", "training_loss.png", "report.md"):
        assert (reference / name).exists()
    assert "![predictions](predictions.png)" in (reference / "report.md").read_text()
    assert (reference / "predictions.png").exists()


@pytest.mark.parametrize("kill_at", ["train:3", "search:6"])
def test_kill_and_resume_equals_uninterrupted(reference, tmp_path, cache, kill_at):
    out = tmp_path / "run"
    killed = _search(out, cache, env={"ONESHOT_KILL_AFTER": kill_at}, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    _search(out, cache)
    assert json.loads((out / "architecture.json").read_text()) == json.loads((reference / "architecture.json").read_text())
    assert _evaluations(out) == _evaluations(reference)
    ref = torch.load(reference / "supernet.pt", weights_only=False)["model"]
    new = torch.load(out / "supernet.pt", weights_only=False)["model"]
    assert all(torch.equal(ref[k], new[k]) for k in ref)


def test_presets_validate():
    for name, preset in PRESETS.items():
        cfg = load_config(PanopticConfig, preset=preset)
        assert cfg.search.searcher == "path-priority", name


def test_partial_dataset_paths_rejected():
    with pytest.raises(ConfigError, match="give paths for all of"):
        load_config(PanopticConfig, overrides=["data.train={image_dir: a, panoptic_json: b, panoptic_dir: c}"])


def test_missing_dataset_is_one_line(tmp_path, cache):
    split = "{image_dir: /nonexistent/img, panoptic_json: /nonexistent/p.json, panoptic_dir: /nonexistent/png}"
    proc = _run(
        ["train-supernet", "--task", "panoptic", "--out", str(tmp_path / "r"), "--quiet",
         "--set", f"data.train={split}", "--set", f"data.nas_val={split}", "--set", f"data.val={split}"],
        cache=cache, check=False,
    )
    assert proc.returncode == 1
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_example_input_is_one_image_at_the_evaluation_size(tmp_path):
    from oneshot_panoptic.task import PanopticTask

    config = load_config(PanopticConfig, preset=PRESETS["tiny"], overrides=["data.test_size=48"])
    (image,) = PanopticTask(config, device="cpu").example_input()
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32 and image.device.type == "cpu"


def test_predict_command_writes_scored_files_and_handles_bad_images(reference, cache, tmp_path):
    import shutil

    val = next(Path(cache).glob("synthetic-*/val"))
    images = tmp_path / "images"
    shutil.copytree(val / "images", images)
    (images / "zz_broken.jpg").write_bytes(b"not a jpeg")
    proc = _run(["predict", "--out", str(reference), "--images", str(images), "--output", str(tmp_path / "pred"), "--quiet"], cache=cache)
    summary = json.loads(proc.stdout)
    assert summary["skipped"] == [str(images / "zz_broken.jpg")] and "zz_broken" in proc.stderr
    assert len(list((tmp_path / "pred" / "overlays").glob("*.png"))) == summary["images"] == len(list((val / "images").iterdir()))
    scored = _run(["panoptic", "evaluate", "--gt-json", str(val / "panoptic.json"), "--gt-folder", str(val / "panoptic"),
                   "--pred-json", summary["pred_json"], "--pred-folder", summary["pred_folder"], "--json"], cache=cache)
    assert "All" in json.loads(scored.stdout) or "pq" in scored.stdout
    refused = _run(["predict", "--out", str(reference), "--images", str(images), "--output", str(tmp_path / "p2"), "--quiet",
                    "--on-bad-image", "fail"], cache=cache, check=False)
    assert refused.returncode == 1 and "zz_broken.jpg" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_the_bench_variant_is_generated_from_the_config(tmp_path):
    from oneshot_panoptic.data import categories_of
    from oneshot_panoptic.task import PanopticTask

    config = load_config(PanopticConfig, preset=PRESETS["bench"], overrides=[
        f"data.cache_dir={tmp_path}", "data.synthetic.num_images=12", "data.synthetic.size=48",
        "data.synthetic.variant=bench",
    ])
    task = PanopticTask(config)
    paths = task._split_paths()
    assert "bench" in paths["train"].image_dir
    names = {c["name"] for c in json.loads(Path(paths["train"].panoptic_json).read_text())["categories"]}
    assert names == {c["name"] for c in categories_of("bench")}


def test_evaluation_size_counts_the_images_of_whole_evaluation_batches(tmp_path):
    from oneshot_panoptic.task import PanopticTask

    config = load_config(PanopticConfig, preset=PRESETS["tiny"], overrides=[
        f"data.cache_dir={tmp_path}", "data.synthetic.num_images=40", "data.synthetic.size=48", "eval.max_images=5",
        "eval.batch_size=2",
    ])
    task = PanopticTask(config, device="cpu", progress=False)
    task.prepare_data()
    assert task.evaluation_size("search") == 5  # batches of 2, 2 and 1 image
    assert task.evaluation_size("search", fraction=0.25) == 2  # ceil(0.25 * 3) = 1 batch, not 0.25 * 5 images
    assert task.evaluation_size("search", fraction=0.5) == 4
