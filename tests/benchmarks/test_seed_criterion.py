"""benchmarks/seed_criterion.py end to end at toy sizes: results, report and resume."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "seed_criterion.py"


def _load():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("seed_criterion", SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.slow
def test_runs_reports_and_resumes(tmp_path: Path) -> None:
    script = _load()
    args = [
        "--out", str(tmp_path), "--archs", "2", "--seeds", "0", "1", "--short-iterations", "1", "--short-seeds", "0",
        "--set", "data.synthetic.num_images=6", "--set", "data.synthetic.size=48", "--set", "data.short_sizes=[48]",
        "--set", "data.test_size=48", "--set", "data.max_size=48", "--set", "retrain.iterations=2",
        "--set", "retrain.warmup_iterations=0", "--set", "threads=1",
    ]  # fmt: skip
    script.main(args)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 * 2 + 2  # 2 archs x 2 seeds, then 2 archs x 1 short seed
    report = json.loads((tmp_path / "criterion.json").read_text())
    long_s = report["schedules"][0]
    assert long_s["complete_archs"] == 2 and {"between_sd", "within_sd", "ratio"} <= set(long_s)
    assert "| 2 | 2 |" in (tmp_path / "criterion.md").read_text()
    # a rerun after losing a line restores it (from the stored run) and adds nothing else
    (tmp_path / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    script.main(args)
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == len(lines)


@pytest.mark.slow
def test_a_second_worker_shares_the_output_folder(tmp_path: Path) -> None:
    """Workers share one --out: while this process holds its run directories' locks, a second
    process reads the space and skips (or claims) retrainings instead of failing on a lock."""
    import subprocess

    script = _load()
    args = [
        "--out", str(tmp_path), "--archs", "2", "--seeds", "0",
        "--set", "data.synthetic.num_images=6", "--set", "data.synthetic.size=48", "--set", "data.short_sizes=[48]",
        "--set", "data.test_size=48", "--set", "data.max_size=48", "--set", "retrain.iterations=1",
        "--set", "retrain.warmup_iterations=0", "--set", "threads=1",
    ]  # fmt: skip
    script.main([*args, "--arch-indices", "0"])  # this process keeps its locks until it ends
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=SCRIPT.parents[1], timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 2
