"""Supernet trust of other training settings, against a finished benchmark's retrained candidates."""

import json

import pytest
from click.testing import CliRunner

from benchmarks.sampler_trust import main as sampler_trust_main
from benchmarks.sampler_trust import parse_variant, trust_rows
from benchmarks.search_policies import main as search_policies_main


def test_a_variant_is_a_name_and_overrides():
    assert parse_variant("fair=train.sampler=fair, train.iterations=20") == ("fair", ["train.sampler=fair", "train.iterations=20"])
    for bad in ("fair", "=a=b", "fair=", "fair=nokey"):
        with pytest.raises(ValueError, match="NAME=KEY=VALUE"):
            parse_variant(bad)


def test_trust_rows_rank_each_supernet_over_all_and_random_candidates():
    cands = [{"key": k, "kind": kind, "retrained": {"fitness": f}}
             for k, kind, f in [("a", "random", 1.0), ("b", "random", 2.0), ("c", "random", 3.0), ("d", "found", 4.0)]]
    scores = {"same": {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}, "reversed": {"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1}}
    rows = {(r["supernet"], r["candidates"]): r for r in trust_rows(cands, scores)}
    assert rows[("same", "all")]["n"] == 4 and rows[("same", "all")]["kendall_tau_b"] == pytest.approx(1.0)
    assert rows[("reversed", "all")]["spearman_rho"] == pytest.approx(-1.0)
    assert rows[("same", "random")]["n"] == 3


def test_on_a_toy_benchmark_a_second_supernet_is_trained_scored_and_reported(tmp_path):
    bench = tmp_path / "bench"
    result = CliRunner().invoke(search_policies_main, ["--task", "toy", "--preset", "tiny", "--budget-scale", "0.05",
                                                       "--random-archs", "4", "--bn-batches", "", "--quiet", "--out", str(bench)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "trust"
    sampler_trust_main(["--bench", str(bench), "--variant", "seed1=seed=1", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    n = len(json.loads((bench / "summary.json").read_text())["candidates"])
    assert set(results["scores"]) == {"benchmark", "seed1"} and len(results["scores"]["seed1"]) == n
    assert {(r["supernet"], r["candidates"]) for r in results["rows"]} >= {("benchmark", "all"), ("seed1", "all")}
    assert (out / "sampler_trust.png").exists() and "seed1" in (out / "report.md").read_text()
    with pytest.raises(SystemExit, match="no summary.json"):
        sampler_trust_main(["--bench", str(tmp_path / "nothing"), "--variant", "x=seed=2", "--out", str(out)])
