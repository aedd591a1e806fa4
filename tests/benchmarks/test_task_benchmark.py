"""The search-policy benchmark on a task's supernet: budgets, shared-store accounting, the BN study,
and a smoke run of `python -m benchmarks.search_policies --task toy` (seconds), resumed."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from benchmarks.publish import publish
from benchmarks.search_policies import main
from benchmarks.task_benchmark import _bn_study
from benchmarks.task_policies import (
    CostLedger,
    default_policies,
    describe_searcher,
    share_accounting,
)
from benchmarks.task_report import section_title
from benchmarks.task_summary import fitness_columns
from oneshot.config import RunConfig
from oneshot.search import HistoryEntry, SearchResult
from oneshot.space import SearchSpace
from oneshot.stats import kendall_tau_b, spearman_rho

ROOT = Path(__file__).resolve().parents[2]

SPACE12 = SearchSpace.categorical({"backbone": [4, 4, 4], "head": [3, 3]})  # fair window 12


def test_paper_budgets_and_their_labels():
    specs = default_policies(SPACE12.window_size)
    labels = [describe_searcher(s.build(SPACE12, seed=0)) for s in specs]
    assert labels == [
        "path-priority (5 cycles = 60 evals)",
        "evolution (50 x 20)",
        "random (300)",
        "path-priority-verify (60)",
        "surrogate (60)",
        "model-select (60)",
    ]


def test_budget_scale_keeps_whole_windows_and_options_replace_budgets():
    specs = {s.searcher: s for s in default_policies(12, budget_scale=0.1)}
    assert specs["path-priority"].budget == 12 and specs["path-priority-verify"].budget == 12
    assert specs["evolution"].budget == 100 and specs["random"].budget == 30
    half = {s.searcher: s.budget for s in default_policies(12, budget_scale=0.5)}
    assert half == {"path-priority": 36, "evolution": 500, "random": 150, "path-priority-verify": 36,
                    "surrogate": 36, "model-select": 36}  # 2.5 -> 3 cycles
    evo = {"population": 6, "generations": 2, "top_k": 2, "mutations": 3, "crossovers": 3}
    specs = default_policies(12, options={"evolution": evo}, names=["evolution", "random"])
    assert [s.searcher for s in specs] == ["evolution", "random"]
    assert describe_searcher(specs[0].build(SPACE12, seed=1)) == "evolution (6 x 2)"
    with pytest.raises(ValueError, match="not run: evolution"):
        default_policies(12, options={"evolution": {}}, names=["random"])
    with pytest.raises(ValueError, match="budget-scale"):
        default_policies(12, budget_scale=0)


def _result(entries):
    history = [HistoryEntry(SPACE12.validate(choices), fitness=1.0, wall_time=t) for choices, t in entries]
    return SearchResult("x", history[0].arch, 1.0, history)


def test_share_accounting_charges_each_architecture_to_its_first_run():
    a, b, c, d = [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [2, 0, 0, 0, 0], [3, 0, 0, 0, 0]
    first = _result([(a, 1.0), (b, 2.0), (c, 3.0), (a, 1.0)])  # a repeated (a fair window may repeat)
    second = _result([(b, 2.0), (d, 5.0)])
    third = _result([(d, 5.0)])
    acc = share_accounting([first, second, third])
    assert acc[0] == {"evaluations": 3, "new_evaluations": 3, "new_eval_s": 6.0, "unshared_eval_s": 6.0}
    assert acc[1] == {"evaluations": 2, "new_evaluations": 1, "new_eval_s": 5.0, "unshared_eval_s": 7.0}
    assert acc[2] == {"evaluations": 1, "new_evaluations": 0, "new_eval_s": 0.0, "unshared_eval_s": 5.0}


def test_bn_study_is_skipped_with_a_note_without_counts(tmp_path):
    pipeline = SimpleNamespace(config=RunConfig())
    out = _bn_study(pipeline, None, [], [], (), tmp_path / "bn.json", CostLedger(tmp_path / "c.json", "cpu"), print)
    assert "skipped" in out and not (tmp_path / "bn.json").exists()


def test_the_fitness_is_named_by_the_tasks_first_report_column_when_it_is_the_fitness():
    assert fitness_columns(("pq", "sq", "pq_th"), {"fitness": 5.0, "pq": 5.0, "pq_th": 1.0}) == ("pq", ["pq_th"])
    assert fitness_columns(("accuracy",), {"fitness": 2.0, "accuracy": 3.0}) == ("fitness", ["accuracy"])
    assert fitness_columns((), {"fitness": 2.0}) == ("fitness", [])


# --------------------------------------------------------------------------- smoke run on the toy task
SMOKE = ["--task", "toy", "--preset", "tiny", "--budget-scale", "0.05", "--random-archs", "4",
         "--bn-batches", "0,2,4", "--quiet"]


def _store_records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "evaluations.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("type") == "eval"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    docs = root / "docs" / "benchmarks.md"
    docs.parent.mkdir()
    docs.write_text("# Benchmarks\n\n## Someone else's section\n\nkeep me\n")
    out = root / "out"
    args = [*SMOKE, "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return SimpleNamespace(out=out, docs=docs, args=args, summary=json.loads((out / "summary.json").read_text()))


def test_smoke_runs_every_policy_through_one_store(smoke):
    s = smoke.summary
    assert [p["searcher"] for p in s["policies"]] == ["path-priority", "evolution", "random", "path-priority-verify",
                                                      "surrogate", "model-select"]
    records = _store_records(Path(s["run_dir"]))
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)), "an architecture was evaluated twice"
    runs = [p["seeds"][0] for p in s["policies"]]
    histories = [json.loads((smoke.out / "searches" / f"{p['searcher']}-seed0.json").read_text())["result"]["history"]
                 for p in s["policies"]]
    used = {h["key"] for hist in histories for h in hist}
    assert sum(r["new_evaluations"] for r in runs) == len(used)
    assert sum(r["fresh_evaluations"] for r in runs) == len(used)  # a fresh store: every new one was computed once
    assert all(r["unshared_eval_s"] >= r["new_eval_s"] for r in runs)
    assert used | {c["key"] for c in s["candidates"]} == set(keys)
    assert runs[0]["evaluations"] <= 6 and runs[1]["evaluations"] <= 50 and runs[2]["evaluations"] <= 15


def test_smoke_retrains_candidates_and_measures_trust(smoke):
    s = smoke.summary
    cands = s["candidates"]
    kinds = {c["kind"] for c in cands}
    assert {"found", "random"} <= kinds
    assert sum(any(r.startswith("random") for r in c["roles"]) for c in cands) == 4
    for c in cands:
        assert c["retrained"]["retrain_steps"] == 30 and "fitness" in c["supernet"]
    sup = [c["supernet"]["fitness"] for c in cands]
    ret = [c["retrained"]["fitness"] for c in cands]
    assert s["trust"]["n"] == len(cands)
    assert s["trust"]["kendall_tau_b"] == pytest.approx(kendall_tau_b(sup, ret), nan_ok=True)
    assert s["trust"]["spearman_rho"] == pytest.approx(spearman_rho(sup, ret), nan_ok=True)


def test_smoke_bn_study_matches_the_store_at_the_configured_count(smoke):
    bn = smoke.summary["bn_recalibration"]
    assert bn["counts"] == [0, 2, 4] and bn["default"] == 4
    stored = {r["key"]: r["fitness"] for r in _store_records(Path(smoke.summary["run_dir"]))}
    for arch in bn["archs"]:
        assert arch["fitness"][2] == stored[arch["key"]]  # K = 4 is the run's own setting


def test_smoke_writes_tables_plots_costs_into_its_folder_and_publishes_only_its_docs_section(smoke):
    assert smoke.docs.read_text() == "# Benchmarks\n\n## Someone else's section\n\nkeep me\n"  # the run never edits docs
    report = (smoke.out / "report.md").read_text()
    assert report.startswith(section_title("toy"))
    for heading in ("Table 5 style", "Table 3 style", "Supernet trust", "BN recalibration batches", "Costs", "Scaled budgets"):
        assert heading in report
    assert "--budget-scale 0.05" in report and "evolution (11 x 4)" in report
    assert "supernet accuracy" in report and "`eval.bn_batches` = K" in report
    for name in ("policies_table5.png", "policies_table3.png", "policies_trust.png", "policies_bn_recalibration.png"):
        assert (smoke.out / name).stat().st_size > 1000
    costs = smoke.summary["costs"]
    assert costs["supernet training"]["steps"] == 20 and costs["supernet training"]["measured"] is True
    assert sum(k.startswith("retrain ") for k in costs) == len(smoke.summary["candidates"])
    result = CliRunner().invoke(publish, [str(smoke.out), str(smoke.docs)])
    assert result.exit_code == 0, result.output
    text = smoke.docs.read_text()
    assert "keep me" in text and section_title("toy") in text
    section = text.split(section_title("toy"))[1]
    assert "--budget-scale 0.05" in section and "](img/policies_trust.png)" in section
    for name in ("policies_table5.png", "policies_table3.png", "policies_trust.png", "policies_bn_recalibration.png"):
        assert (smoke.docs.parent / "img" / name).stat().st_size > 1000


def test_smoke_rerun_reuses_everything(smoke):
    before = _store_records(Path(smoke.summary["run_dir"]))
    result = CliRunner().invoke(main, smoke.args)
    assert result.exit_code == 0, result.output
    again = json.loads((smoke.out / "summary.json").read_text())
    assert _store_records(Path(again["run_dir"])) == before
    for key in ("policies", "candidates", "trust", "bn_recalibration"):
        assert again[key] == smoke.summary[key]


def test_cli_rejects_options_of_the_other_mode(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["--table", "x.json", "--preset", "tiny", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "only for a task mode: --preset" in result.output
    result = runner.invoke(main, ["--task", "toy", "--table", "x.json", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "--table and --sigma belong to the nas-bench-macro mode" in result.output
    result = runner.invoke(main, ["--task", "toy", "--policy-set", "evolution=3", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "SEARCHER.OPTION=VALUE" in result.output
    result = runner.invoke(main, ["--task", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown benchmark mode 'nope'" in result.output and "toy" in result.output


# --------------------------------------------------------------------------- micro panoptic (slow)
PANOPTIC_MICRO = [
    "data.synthetic.num_images=40", "data.synthetic.size=64", "data.short_sizes=[64]", "data.test_size=64",
    "data.max_size=64", "train.iterations=4", "train.checkpoint_every=2", "train.batch_size=1", "eval.max_images=4",
    "eval.bn_batches=1", "eval.bn_batch_size=2", "retrain.iterations=4", "retrain.warmup_iterations=1",
    "retrain.batch_size=1",
]


@pytest.mark.slow
def test_micro_panoptic_benchmark(tmp_path):
    pytest.importorskip("oneshot_panoptic")
    sets = [a for s in PANOPTIC_MICRO for a in ("--set", s)]
    args = ["--task", "panoptic", "--preset", "tiny", *sets,
            "--policy-set", "evolution.population=4", "--policy-set", "evolution.generations=2",
            "--policy-set", "evolution.top_k=2", "--policy-set", "evolution.mutations=2", "--policy-set", "evolution.crossovers=2",
            "--policy-set", "random.num_samples=6", "--budget-scale", "0.2", "--random-archs", "3", "--top-k", "2",
            "--bn-batches", "0,1,2", "--out", str(tmp_path / "out"), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ONESHOT_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.search_policies", *args], capture_output=True, text=True,
                          env=env, timeout=1800, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["fitness_name"] == "pq" and summary["extra_metrics"] == ["sq", "rq", "pq_th", "pq_st", "sem_miou"]
    assert summary["bn_recalibration"]["default"] == 1
    assert summary["trust"]["n"] >= 5
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.startswith(section_title("panoptic")) and "pq_th" in md and "pq_st" in md


def _summary_for_observations(pp: float, evo: float, distinct: int) -> dict:
    def policy(searcher, value, evals):
        return {"searcher": searcher, "label": searcher, "seeds": [{"evaluations": evals, "retrained": {"fitness": value}}]}

    return {
        "fitness_name": "PQ",
        "policies": [policy("path-priority", pp, 60), policy("evolution", evo, 1000)],
        "candidates": [{"roles": ["random #1"], "retrained": {"fitness": 1.0}},
                       {"roles": ["random #2"], "retrained": {"fitness": 3.0}}],
        "search_fitness": {"architectures": 40, "distinct_values": distinct, "min": 0.0, "max": 0.0},
    }


def test_observations_state_the_outcome_from_the_numbers():
    from benchmarks.task_report import _observations

    text = "\n".join(_observations(_summary_for_observations(5.0, 4.0, distinct=30)))
    assert "path-priority (60 evals) >= evolution (1000 evals) after retraining*: holds" in text
    assert "searched > random after retraining*: holds" in text and "Degenerate" not in text
    text = "\n".join(_observations(_summary_for_observations(1.0, 4.0, distinct=1)))
    assert "evolution (1000 evals) after retraining*: does not hold in this run (1.00 vs 4.00)" in text
    assert "searched > random after retraining*: holds" in text  # mean 2.5 > 2.0
    assert "Degenerate supernet" in text and "all 40 architectures" in text
    assert text.count("by tie-breaking only") == 2
