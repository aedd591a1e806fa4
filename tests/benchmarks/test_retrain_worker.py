"""Workers share a task benchmark's retraining: claims, the queue, results copied into the run."""

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from benchmarks.claims import claim, claimed_by_other
from benchmarks.retrain_worker import QUEUE_FILE, WORKER_COST_FILE, copy_result
from benchmarks.search_policies import main

ROOT = Path(__file__).resolve().parents[2]


def test_a_claim_is_held_by_a_live_process_and_taken_over_from_a_dead_one(tmp_path):
    assert claim(tmp_path, "job") and claim(tmp_path, "job")  # ours, and still ours
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "other").write_text(str(sleeper.pid))
        assert claimed_by_other(tmp_path, "other") and not claim(tmp_path, "other")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not claimed_by_other(tmp_path, "other") and claim(tmp_path, "other")
    assert (tmp_path / "other").read_text() == str(os.getpid())


def test_copy_result_writes_metrics_last_and_the_cost_beside_them(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "seed-1").mkdir(parents=True)
    (src / "metrics.json").write_text('{"fitness": 1.0}')
    (src / "model_state.pt").write_bytes(b"w")
    copy_result(src, dst, {"wall_s": 2.0, "cpu_s": 1.5})
    assert sorted(p.name for p in dst.iterdir()) == ["metrics.json", "model_state.pt", WORKER_COST_FILE]
    assert json.loads((dst / WORKER_COST_FILE).read_text())["cpu_s"] == 1.5


def test_a_worker_beside_the_benchmark_shares_its_retraining(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-m", "benchmarks.retrain_worker", "--out", str(out), "--poll", "0.2"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        result = CliRunner().invoke(main, ["--task", "toy", "--preset", "tiny", "--budget-scale", "0.05",
                                           "--random-archs", "6", "--retrain-seeds", "2", "--bn-batches", "",
                                           "--quiet", "--out", str(out)])
        log, _ = worker.communicate(timeout=300)
    finally:
        worker.kill()
    assert result.exit_code == 0, result.output
    assert worker.returncode == 0, log
    queue = json.loads((out / QUEUE_FILE).read_text())
    assert queue["final"]
    summary = json.loads((out / "summary.json").read_text())
    assert len(queue["items"]) == 2 * len(summary["candidates"])
    assert all(len(c["retrained"]["fitness_by_seed"]) == 2 for c in summary["candidates"])
    by_worker = sorted((out / "run" / "retrain").rglob(WORKER_COST_FILE))
    trained = int(log.strip().splitlines()[-1].rsplit(" ", 1)[1])  # "... nothing left; trained N"
    assert trained == len(by_worker)
    costs = json.loads((out / "costs.json").read_text())
    retrains = {k: v for k, v in costs.items() if k.startswith("retrain ")}
    assert len(retrains) == len(queue["items"])  # every retraining in the ledger once
    assert sum("worker" in v for v in retrains.values()) == trained
