"""Nothing silently wrong: divergence, provenance, checks before work, the run lock, Ctrl-C.

One test (or a few) per case of the issue "Nothing silently wrong", on the seconds-long toy task,
with real subprocesses where the behaviour is about processes (the lock, SIGINT, kill -9).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

ONESHOT = [sys.executable, "-m", "oneshot.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*ONESHOT, *args], capture_output=True, text=True, env=ENV, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"oneshot {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def _search(out: Path, *extra: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return _run("search", "--task", "toy", "--preset", "tiny", "--out", str(out), "--quiet", *extra, check=check)


def _one_line(proc: subprocess.CompletedProcess[str], message: str, code: int = 1) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reliability") / "run"
    _search(out, check=True)
    return out


def _copy(run: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(run, target, ignore=shutil.ignore_patterns(".lock"))
    return target


# ----------------------------------------------------------------- 1. divergence
def test_a_diverged_supernet_is_never_saved_nor_searched_and_restarts_with_a_lower_lr(tmp_path: Path) -> None:
    out = tmp_path / "nan"
    proc = _search(out, "--set", "train.lr=1e6", "--set", "train.iterations=3")
    _one_line(proc, "supernet training diverged at step")
    assert "lower train.lr (now 1e+06" in proc.stderr and "enable gradient clipping" in proc.stderr
    assert not (out / "supernet.pt").exists() and not (out / "evaluations.jsonl").exists()
    assert json.loads((out / "diverged.json").read_text())["lr"] == 1e6
    assert "supernet training diverged" in (out / "log.txt").read_text()  # failures reach log.txt

    # the same directory, a lower learning rate: accepted (only after a divergence), and finishes
    _search(out, "--set", "train.lr=0.05", "--set", "train.iterations=3", check=True)
    payload = torch.load(out / "supernet.pt", map_location="cpu", weights_only=False)
    assert all(torch.isfinite(t).all() for t in payload["model"].values() if t.is_floating_point())
    assert payload["recovered_from"][0]["lr"] == 1e6
    assert not (out / "diverged.json").exists()
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["lr"] == 0.05


def test_divergence_advice_follows_the_config(tmp_path: Path) -> None:
    proc = _run("train-supernet", "--task", "toy", "--preset", "tiny", "--out", str(tmp_path / "r"), "--quiet",
                "--set", "train.lr=1e6", "--set", "train.iterations=3", "--set", "train.grad_clip=1e9")
    _one_line(proc, "lower train.grad_clip (now 1e+09)")


def test_restart_after_divergence_resumes_the_last_good_checkpoint_with_the_new_lr(tmp_path: Path, monkeypatch) -> None:
    from oneshot.errors import TrainingDiverged
    from oneshot.pipeline import open_run
    from oneshot.testing import ToyTask

    base = ["train.iterations=6", "train.checkpoint_every=2", "train.warmup_iterations=0", "train.milestones=[]"]
    loss = ToyTask.loss
    calls = {"n": 0}

    def nan_in_step_5(self, model, batch):  # 6 paths per step: the 5th step's first path
        calls["n"] += 1
        value = loss(self, model, batch)
        return value * float("nan") if calls["n"] == 4 * 6 + 1 else value

    monkeypatch.setattr(ToyTask, "loss", nan_in_step_5)
    pipe = open_run("toy", run_dir=tmp_path / "r", preset="tiny", overrides=[*base, "train.lr=0.05"], progress=False)
    with pytest.raises(TrainingDiverged, match="diverged at step 5 .*last good checkpoint \\(step 4\\)"):
        pipe.train_supernet()
    assert not (tmp_path / "r" / "supernet.pt").exists()
    monkeypatch.setattr(ToyTask, "loss", loss)

    # after the divergence, a lower learning rate is accepted on the same directory
    pipe = open_run("toy", run_dir=tmp_path / "r", preset="tiny", overrides=[*base, "train.lr=0.01"], progress=False)
    seen: list[float] = []
    from oneshot.train import SupernetTrainer

    fit = SupernetTrainer.fit

    def spy(self, num_steps, **kw):
        self.try_resume()
        seen.extend(g["lr"] / g["lr_multiplier"] for g in self.optimizer.param_groups)
        return fit(self, num_steps, resume=False, **kw)

    monkeypatch.setattr(SupernetTrainer, "fit", spy)
    pipe.train_supernet()
    assert seen and all(abs(lr - 0.01) < 1e-12 for lr in seen)  # the new lr, from the checkpoint's step
    assert torch.load(tmp_path / "r" / "supernet.pt", weights_only=False)["steps"] == 6


def test_a_changed_lr_is_refused_when_the_training_did_not_diverge(reference_run: Path) -> None:
    proc = _search(reference_run, "--set", "train.lr=0.001")
    _one_line(proc, "train.lr and train.grad_clip may change only after the training diverged")


def test_a_non_finite_supernet_is_never_evaluated(reference_run: Path, tmp_path: Path) -> None:
    run = _copy(reference_run, tmp_path)
    payload = torch.load(run / "supernet.pt", weights_only=False)
    name = next(k for k, v in payload["model"].items() if v.is_floating_point())
    payload["model"][name].fill_(float("nan"))
    torch.save(payload, run / "supernet.pt")
    _one_line(_run("evaluate-arch", "--task", "toy", "--out", str(run), "--quiet"), "holds non-finite parameters")


def test_the_last_step_is_checked_and_a_diverged_state_is_never_checkpointed(tmp_path: Path) -> None:
    from torch import nn

    from oneshot.errors import TrainingDiverged
    from oneshot.train import StandaloneTrainer

    model = nn.Linear(2, 1)
    batches = iter(lambda: torch.ones(4, 2), None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = optimizer.step

    def poisoned_step(*a, **kw):  # the third (last) update writes inf into the weights
        step(*a, **kw)
        if optimizer.state.get("n", 0) == 2:
            with torch.no_grad():
                model.weight.fill_(float("inf"))
        optimizer.state["n"] = optimizer.state.get("n", 0) + 1

    optimizer.step = poisoned_step  # type: ignore[method-assign]
    trainer = StandaloneTrainer(model, batches=batches, loss_fn=lambda m, b: m(b).pow(2).mean(), optimizer=optimizer,
                                run_dir=tmp_path, checkpoint_every=2, progress=False)
    with pytest.raises(TrainingDiverged, match="diverged at step 3: the parameters are not finite") as info:
        trainer.fit(3)
    assert info.value.last_good == 2
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 2 and torch.isfinite(saved["model"]["weight"]).all()


# ----------------------------------------------------------------- 2. provenance
def test_a_run_that_lost_its_config_refuses_another_config(reference_run: Path, tmp_path: Path) -> None:
    run = _copy(reference_run, tmp_path)
    (run / "config.yaml").unlink()
    proc = _search(run, "--set", "train.iterations=500", "--set", "eval.bn_batches=3")
    _one_line(proc, "supernet.pt was made with a different config (sections ['eval', 'train'] differ)")
    _search(run, check=True)  # the config that made it is accepted, and pinned again
    assert (run / "config.yaml").exists()


def test_the_store_refuses_evaluations_of_another_config(reference_run: Path, tmp_path: Path) -> None:
    run = _copy(reference_run, tmp_path)
    for name in ("config.yaml", "supernet.pt", "checkpoint.pt"):
        (run / name).unlink()
    proc = _search(run, "--set", "eval.bn_batches=3")
    _one_line(proc, "evaluations.jsonl was made with a different config (sections ['eval'] differ)")
    assert not (run / "supernet.pt").exists()  # refused before training


def test_report_figures_come_from_the_artefacts(reference_run: Path) -> None:
    report = json.loads((reference_run / "report.json").read_text())
    payload = torch.load(reference_run / "supernet.pt", weights_only=False)
    assert report["supernet_steps"] == payload["steps"]
    header = json.loads((reference_run / "evaluations.jsonl").read_text().splitlines()[0])
    assert header["provenance"]["supernet_steps"] == payload["steps"]
    assert header["provenance"]["config_hash"] == payload["provenance"]["config_hash"]


# ----------------------------------------------------------------- 4. nothing pinned before work
def test_a_run_that_fails_its_checks_does_not_lock_its_directory_to_that_config(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _one_line(_search(out, "--searcher", "nosuch"), "unknown searcher 'nosuch'")
    assert not (out / "config.yaml").exists()
    _search(out, "--set", "train.iterations=2", check=True)  # a different config: accepted


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_device_pins_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _one_line(_search(out, "--device", "cuda"), "CUDA is not available")
    assert not (out / "config.yaml").exists()


# ----------------------------------------------------------------- 5. searcher checked before training
@pytest.mark.parametrize(
    "args, message",
    [
        (["--searcher", "nosuch"], "unknown searcher 'nosuch'"),
        (["--set", "search.options.path-priority.cycles=abc"], "option cycles: Input should be a valid integer (got 'abc')"),
        (["--set", "search.options.path-priority.nosuch=1"], "has no option 'nosuch'"),
    ],
)
def test_searcher_and_options_are_checked_before_training(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "r"
    _one_line(_search(out, *args), message)
    assert not (out / "checkpoint.pt").exists() and not (out / "supernet.pt").exists()


# ----------------------------------------------------------------- 6. one line, never a traceback
@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "tpu"], "device 'tpu' is not supported; use cpu, cuda or cuda:N"),
        (["--device", ""], "device '' is not supported"),
        (["--set", "train.lr_multipliers={nosuch: 1.0}"], "lr_multipliers: unknown component 'nosuch'"),
        (["--set", "train.lr_multipliers={body: 1.0}"], "no learning-rate multiplier for component"),
        (["--set", "train.milestones=[0.5, 3]"], "milestones are fractions of the run in [0, 1]"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    _one_line(_search(tmp_path / "r", *args), message)


def test_non_utf8_files_are_one_line(reference_run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("train:\n  iterations: 2 # \xe9t\xe9\n".encode("latin-1"))
    _one_line(_search(tmp_path / "r", "--config", str(bad)), "is not UTF-8 text")
    arch = tmp_path / "arch.json"
    arch.write_bytes(b'{"body": [0, 0, 0], "head": [0]} \xff')
    _one_line(_run("evaluate-arch", "--task", "toy", "--out", str(reference_run), "--arch", str(arch), "--quiet"),
              "is not UTF-8 text")


def test_read_only_commands_write_nothing_in_the_run_directory(reference_run: Path, tmp_path: Path) -> None:
    run = _copy(reference_run, tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name != "log.txt"}
    _run("evaluate-arch", "--task", "toy", "--out", str(run), "--quiet", check=True)
    _run("export", "--task", "toy", "--out", str(run), "--output", str(tmp_path / "m.pt"), "--quiet", check=True)
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name != "log.txt"} == before
    assert (tmp_path / "m.pt").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_run_directory(reference_run: Path, tmp_path: Path) -> None:
    run = _copy(reference_run, tmp_path)
    run.chmod(0o555)
    try:
        _run("evaluate-arch", "--task", "toy", "--out", str(run), "--quiet", check=True)
        _run("export", "--task", "toy", "--out", str(run), "--output", str(tmp_path / "m.pt"), "--quiet", check=True)
        _one_line(_search(run), "is not writable")
    finally:
        run.chmod(0o755)


# ----------------------------------------------------------------- 7 and 8: processes
def _start_training(out: Path, iterations: int = 400) -> subprocess.Popen[str]:
    args = ["train-supernet", "--task", "toy", "--preset", "tiny", "--out", str(out), "--quiet",
            "--set", f"train.iterations={iterations}", "--set", "train.checkpoint_every=2"]
    # SIGINT at its default in the child: a test run started in the background inherits it ignored
    proc = subprocess.Popen([*ONESHOT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists():  # training has started (and holds the lock)
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.1)
    return proc


def test_ctrl_c_exits_130_with_the_resume_message(tmp_path: Path) -> None:
    proc = _start_training(tmp_path / "r")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert stderr.strip() == "interrupted; run the same command again to resume"
    assert "interrupted" in (tmp_path / "r" / "log.txt").read_text()
    torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)  # intact (atomic writes)


def test_one_process_per_run_directory_and_kill_9_leaves_no_stale_lock(tmp_path: Path) -> None:
    out = tmp_path / "r"
    first = _start_training(out)
    try:
        _one_line(_run("train-supernet", "--task", "toy", "--out", str(out), "--quiet"),
                  f"run directory {out} is in use by process {first.pid}")
    finally:
        first.kill()  # SIGKILL: the OS releases the lock
        first.communicate(timeout=60)
    from oneshot.run import RunDir

    run = RunDir(out)
    run.lock()  # free again: no stale lock after kill -9
    run.unlock()


def test_the_lock_is_reentrant_in_one_process(tmp_path: Path) -> None:
    from oneshot.run import RunDir

    RunDir(tmp_path / "r").lock()
    RunDir(tmp_path / "r").lock()  # same process: no error
    RunDir(tmp_path / "r").unlock()


# ----------------------------------------------------------------- 9. minor
def test_a_damaged_store_header_says_how_to_repair_it_and_repair_store_does(reference_run: Path, tmp_path: Path) -> None:
    run = _copy(reference_run, tmp_path)
    store = run / "evaluations.jsonl"
    lines = store.read_text().splitlines()
    store.write_text("\n".join(["{garbage", *lines[1:]]) + "\n")
    proc = _search(run)
    _one_line(proc, f"oneshot repair-store --out {run}")
    repaired = _run("repair-store", "--task", "toy", "--out", str(run), check=True)
    assert f"header rewritten, {len(lines) - 1} evaluations kept" in repaired.stdout
    _search(run, check=True)


def test_progress_off_a_terminal_is_a_line_every_few_steps(tmp_path: Path) -> None:
    proc = _run("train-supernet", "--task", "toy", "--preset", "tiny", "--out", str(tmp_path / "r"),
                "--set", "train.iterations=40", check=True)
    assert "\r" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "train supernet:" in line]
    assert 2 <= len(lines) <= 21 and lines[-1].startswith("[oneshot] train supernet: 40/40 step")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_swallowed_by_a_finalizer_still_stops_the_next_step() -> None:
    import gc
    import os

    from oneshot import interrupts

    class SignalledInDel:
        def __del__(self) -> None:  # SIGINT handled here: Python prints "Exception ignored" and goes on
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # not ignored, however the tests were started
        interrupts.install()
        SignalledInDel()
        gc.collect()
        # still running here: the KeyboardInterrupt raised inside __del__ was dropped
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_if_interrupted()
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupts._requested = False
