"""End-to-end pipeline on the seconds-long toy task: CLI, run directory, kill-and-resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ONESHOT = [sys.executable, "-m", "oneshot.cli"]


def _run(args, *, env=None, check=True):
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run([*ONESHOT, *args], capture_output=True, text=True, env=full_env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"oneshot {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _search(out: Path, *extra, env=None, check=True):
    return _run(["search", "--task", "toy", "--preset", "tiny", "--out", str(out), "--quiet", *extra], env=env, check=check)


def _evaluations(run: Path) -> dict:
    records = {}
    for line in (run / "evaluations.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "key" in rec:
            records[rec["key"]] = rec["fitness"]
    return records


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = _search(out)
    assert proc.stderr == ""
    return out


def test_run_directory_contents(reference_run):
    for name in ["config.yaml", "supernet.pt", "evaluations.jsonl", "architecture.json", "report.md",
                 "report.json", "search_result.json", "training_loss.png", "scores.png", "explored.png", "log.txt"]:
        assert (reference_run / name).exists(), name
    report = json.loads((reference_run / "report.json").read_text())
    history = json.loads((reference_run / "search_result.json").read_text())["history"]
    assert len(history) == 2 * 6  # 2 cycles of one fair window (lcm(3, 2) = 6)
    # a path repeated across windows is evaluated once
    assert report["search_cost"]["evaluations"] == len({h["key"] for h in history})
    assert len(report["random"]) == 3
    # the supernet learned: the found architecture beats the untrained supernet by a wide margin
    assert report["found"]["metrics"]["accuracy"] > report["untrained_supernet"]["accuracy"] + 20


@pytest.mark.parametrize("kill_at", ["train:7", "search:6"])
def test_killed_run_resumes_to_identical_results(reference_run, tmp_path, kill_at):
    out = tmp_path / "run"
    killed = _search(out, env={"ONESHOT_KILL_AFTER": kill_at}, check=False)
    assert killed.returncode == -9, killed.stderr
    if kill_at.startswith("train"):
        assert not (out / "supernet.pt").exists() and (out / "checkpoint.pt").exists()
    else:
        assert len(_evaluations(out)) == 6 and not (out / "architecture.json").exists()
    _search(out)
    assert json.loads((out / "architecture.json").read_text()) == json.loads((reference_run / "architecture.json").read_text())
    assert _evaluations(out) == _evaluations(reference_run)
    ref_w, new_w = _weights(reference_run / "supernet.pt"), _weights(out / "supernet.pt")
    assert all(torch.equal(ref_w[k], new_w[k]) for k in ref_w)
    log = (out / "log.txt").read_text()
    assert ("resumed from step 5" in log) if kill_at.startswith("train") else ("6 already stored" in log)


def test_rerun_reuses_everything(reference_run):
    before = (reference_run / "evaluations.jsonl").read_text()
    proc = _search(reference_run)
    assert (reference_run / "evaluations.jsonl").read_text() == before
    assert proc.returncode == 0


def test_changed_config_on_existing_run_is_refused(reference_run):
    proc = _search(reference_run, "--set", "train.iterations=3", check=False)
    assert proc.returncode == 1
    assert "was created with a different config (sections ['train'] differ)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_other_searcher_reuses_the_store(reference_run, tmp_path):
    proc = _search(reference_run, "--searcher", "random", "--set", "search.options.random.num_samples=14")
    assert proc.returncode == 0
    result = json.loads((reference_run / "search_result.json").read_text())
    assert result["searcher"] == "random"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "train.iterations=abc"], "train.iterations: Input should be a valid integer"),
        (["--preset", "huge"], "unknown preset 'huge' for task 'toy'; available: tiny"),
        (["--config", "/nonexistent.yaml"], "cannot read config /nonexistent.yaml"),
        (["--searcher", "annealing"], "annealing"),
        (["--set", "train.paths_per_step=5"], "train.paths_per_step: a fair window must hold a multiple of"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    proc = _run(["search", "--task", "toy", "--out", str(tmp_path / "r"), "--quiet", *args], check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_corrupted_supernet_is_detected(reference_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(reference_run, run)
    data = (run / "supernet.pt").read_bytes()
    (run / "supernet.pt").write_bytes(data[: len(data) // 2])
    proc = _run(["evaluate-arch", "--task", "toy", "--out", str(run), "--quiet"], check=False)
    assert proc.returncode == 1
    assert "supernet.pt is corrupted" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_architecture_file(reference_run, tmp_path):
    bad = tmp_path / "arch.json"
    bad.write_text(json.dumps({"body": [0, 0, 7], "head": [0]}))
    proc = _run(["evaluate-arch", "--task", "toy", "--out", str(reference_run), "--arch", str(bad), "--quiet"], check=False)
    assert proc.returncode == 1
    assert "layer 'body.2': choice 7 out of range 0..2" in proc.stderr


def test_retrain_and_export(reference_run, tmp_path):
    proc = _run(["retrain", "--task", "toy", "--out", str(reference_run), "--quiet"])
    metrics = json.loads(proc.stdout)
    assert metrics["accuracy"] > 60 and metrics["retrain_steps"] == 30
    target = tmp_path / "m.pt"
    info = json.loads(_run(["export", "--task", "toy", "--out", str(reference_run), "--output", str(target), "--quiet"]).stdout)
    assert info["weights"] == "retrained" and info["format"] == "state_dict"
    from oneshot import ChoiceLayer
    from oneshot.export import load_model

    assert not any(isinstance(m, ChoiceLayer) for m in load_model(target).modules())


def test_overrides_on_a_resumed_run_apply_to_its_own_config(tmp_path):
    out = tmp_path / "run"
    _run(["search", "--task", "toy", "--out", str(out), "--quiet", "--set", "data.num_train=128", "--set", "train.iterations=6"])
    proc = _run(["search", "--task", "toy", "--out", str(out), "--quiet", "--searcher", "random", "--set", "search.options.random.num_samples=5"])
    assert proc.returncode == 0
    assert json.loads((out / "search_result.json").read_text())["searcher"] == "random"


def test_each_run_logs_only_to_its_own_file(tmp_path):
    import logging

    from oneshot.pipeline import open_run

    a = open_run("toy", run_dir=tmp_path / "a", progress=False)
    logging.getLogger("oneshot").info("line for a")
    b = open_run("toy", run_dir=tmp_path / "b", progress=False)
    logging.getLogger("oneshot").info("line for b")
    for h in logging.getLogger("oneshot").handlers:
        h.flush()
    assert "line for b" not in (a.run_dir / "log.txt").read_text()
    assert "line for b" in (b.run_dir / "log.txt").read_text()


def test_retrain_uses_retrain_batch_size(tmp_path):
    from oneshot.pipeline import open_run

    pipe = open_run("toy", run_dir=tmp_path / "r", progress=False, overrides=["retrain.batch_size=4"])
    batch = next(pipe.task.train_batches(seed=0, batch_size=pipe.config.retrain.batch_size))
    assert batch[0].shape[0] == 4


def test_single_path_uniform_training_resumes_exactly(tmp_path, monkeypatch):
    import oneshot.pipeline as pipeline

    overrides = ["train.sampler=uniform", "train.paths_per_step=1", "train.iterations=6", "train.checkpoint_every=2"]

    def run(name):
        return pipeline.open_run("toy", run_dir=tmp_path / name, progress=False, preset="tiny", overrides=overrides)

    reference = run("a").train_supernet().state_dict()
    assert "6 steps of 1 paths" in (tmp_path / "a" / "log.txt").read_text()

    class Killed(Exception):
        pass

    def kill_after_step_3(stage, step):
        if stage == "train" and step == 3:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "fault_point", kill_after_step_3)
        with pytest.raises(Killed):
            run("b").train_supernet()
    resumed = run("b").train_supernet().state_dict()
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)


def test_learned_supernet_gives_no_warning_and_every_stage_is_logged(reference_run):
    report = json.loads((reference_run / "report.json").read_text())
    assert report["warnings"] == []
    log = (reference_run / "log.txt").read_text()
    for line in ("data ready", "training supernet:", "supernet trained:", "search: path-priority",
                 "search done:", "report: found fitness"):
        assert line in log, line


def test_untrained_supernet_is_warned_about(tmp_path):
    from oneshot.pipeline import open_run

    pipe = open_run("toy", run_dir=tmp_path / "r", preset="tiny", progress=False,
                    overrides=["train.iterations=0", "search.options.path-priority.cycles=1"])
    model = pipe.train_supernet()
    report = pipe.report(model, pipe.search(model))
    assert any("on an untrained one" in w for w in report.warnings)  # 0 steps: the same weights
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["warnings"] == report.warnings
    assert "> **Warning:**" in (tmp_path / "r" / "report.md").read_text()
    assert "WARNING the supernet may not have learned" in (tmp_path / "r" / "log.txt").read_text()


def test_retrain_also_retrains_the_report_s_random_baselines(tmp_path):
    out = tmp_path / "run"
    _search(out, "--retrain", "--set", "retrain.random_baselines=2", "--set", "train.iterations=4",
            "--set", "retrain.iterations=3")
    report = json.loads((out / "report.json").read_text())
    retrained = report["retrained"]
    # the same architectures as the report's first two random baselines, retrained the same way
    assert [r["architecture"] for r in retrained["random"]] == [r["architecture"] for r in report["random"][:2]]
    assert all(r["retrain_steps"] == 3 for r in [retrained["found"], *retrained["random"]])
    assert retrained["found"]["architecture"] == report["found"]["architecture"]
    assert 1 <= retrained["found_rank"] <= 3
    for md in (out / "report.md", out / "search" / "path-priority" / "report.md"):
        assert "## After retraining from scratch" in md.read_text()
    log = (out / "log.txt").read_text()
    assert log.count("INFO retraining ") == 3 and "retrained: found fitness" in log


def test_task_from_the_environment(reference_run, tmp_path):
    # ONESHOT_TASK stands for --task (here a module:Class path, without packaging)
    proc = _run(["search", "--out", str(tmp_path / "env"), "--preset", "tiny", "--quiet", "--set", "train.iterations=2",
                 "--set", "search.options.path-priority.cycles=1"], env={"ONESHOT_TASK": "oneshot.testing:ToyTask"})
    assert proc.returncode == 0
    assert json.loads((tmp_path / "env" / "report.json").read_text())["task"] == "toy"


def test_typo_in_a_searcher_option_with_a_budget_is_an_unknown_option(tmp_path):
    proc = _run(["search", "--task", "toy", "--out", str(tmp_path / "r"), "--quiet", "--searcher", "evolution",
                 "--set", "search.options.evolution={budget: 12, populaton: 3}"], check=False)
    assert proc.returncode == 1 and "no option 'populaton'" in proc.stderr and "only 'seed'" not in proc.stderr
