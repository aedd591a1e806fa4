"""The task benchmark's statistics: intervals, claim verdicts, supernet trust, the spread of
architectures over supernet scores, retraining seeds, and resume of the benchmark after a kill."""

import json
from pathlib import Path

import pytest

from benchmarks.task_benchmark import mean_metrics, run_task_benchmark, spread_by_score
from benchmarks.task_stats import claim_verdict, comparison_stats, interval, trust_stats
from oneshot.search import HistoryEntry, SearchResult
from oneshot.space import SearchSpace
from oneshot.stats import (
    bootstrap_mean_ci,
    bootstrap_mean_difference_ci,
    kendall_tau_b,
    spearman_rho,
)


def test_claim_verdict_follows_the_stated_rule():
    assert claim_verdict({"low": 0.1, "high": 2.0}) == "supported"
    assert claim_verdict({"low": -2.0, "high": -0.1}) == "contradicted"
    assert claim_verdict({"low": -1.0, "high": 1.0}) == "open"
    assert claim_verdict({"low": 0.0, "high": 1.0}) == "open"  # touching 0 is not above it
    assert claim_verdict({"low": None, "high": None}) == "open"


def test_interval_and_differences_by_hand():
    assert interval([]) == {"n": 0, "estimate": None, "low": None, "high": None}
    assert interval([3.0]) == {"n": 1, "estimate": 3.0, "low": None, "high": None}
    # all values equal: every resample has the same mean
    assert interval([2.0, 2.0, 2.0]) == {"n": 3, "estimate": 2.0, "low": 2.0, "high": 2.0}
    # two values 0 and 1: resample means are 0, 0.5 or 1 -> the 95% interval is [0, 1]
    r = interval([0.0, 1.0])
    assert (r["estimate"], r["low"], r["high"]) == (0.5, 0.0, 1.0)
    ci = bootstrap_mean_ci([1.0, 4.0, 2.0, 8.0], n_boot=10_000, seed=0)
    assert interval([1.0, 4.0, 2.0, 8.0])["low"] == ci.low


def test_comparison_pools_searched_and_judges_the_three_claims():
    per_policy = {"path-priority": [10.0, 10.0, 10.0], "evolution": [5.0, 5.0, 5.0], "random": [10.0, 20.0, 0.0]}
    randoms = [1.0, 2.0, 3.0]
    st = comparison_stats(per_policy, randoms, labels={"path-priority": "pp (60)"})
    assert st["policies"]["path-priority"]["label"] == "pp (60)"
    assert st["policies"]["path-priority"]["minus_random"]["estimate"] == pytest.approx(8.0)
    assert st["searched"]["n"] == 9 and st["searched"]["estimate"] == pytest.approx(75.0 / 9)
    claims = {c["id"]: c for c in st["claims"]}
    assert claims["pp>=evolution"]["difference"] == {"estimate": 5.0, "low": 5.0, "high": 5.0}
    assert claims["pp>=evolution"]["verdict"] == "supported"
    # path-priority 10 vs random search {0, 10, 20}: the interval holds 0
    assert claims["pp>=random-search"]["verdict"] == "open"
    diff = bootstrap_mean_difference_ci([v for vs in per_policy.values() for v in vs], randoms, seed=0)
    assert claims["searched>random"]["difference"]["low"] == diff.low
    assert claims["searched>random"]["verdict"] == "supported"
    worse = comparison_stats({"path-priority": [1.0, 1.0], "evolution": [3.0, 3.0]}, [])
    assert {c["id"]: c["verdict"] for c in worse["claims"]} == {
        "pp>=evolution": "contradicted", "pp>=random-search": "not measured", "searched>random": "not measured"}


def test_trust_stats_with_paired_intervals():
    sup, ret = [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 3.0, 2.0, 5.0, 4.0]
    t = trust_stats(sup, ret)
    assert t["n"] == 5 and t["kendall_tau_b"] == pytest.approx(kendall_tau_b(sup, ret))
    assert t["spearman_rho"] == pytest.approx(spearman_rho(sup, ret))
    ci = t["kendall_tau_b_ci"]
    assert -1.0 <= ci["low"] <= ci["high"] <= 1.0
    perfect = trust_stats(sup, [2 * v for v in sup])
    assert perfect["spearman_rho_ci"]["low"] == perfect["spearman_rho_ci"]["high"] == 1.0
    assert trust_stats([1.0, 2.0], [2.0, 1.0])["kendall_tau_b_ci"]["low"] is None


SPACE = SearchSpace.categorical({"a": [4, 4, 4]})


def _runs(scores):
    history = [HistoryEntry(SPACE.validate([i % 4, (i // 4) % 4, 0]), fitness=f, wall_time=0.0)
               for i, f in enumerate(scores)]
    return [{"result": SearchResult("x", history[0].arch, 0.0, history)}]


def test_spread_by_score_picks_quantiles_of_the_stored_scores():
    runs = _runs([float(v) for v in range(10)])  # architecture i has score i
    archs = [h.arch for h in runs[0]["result"].history]
    assert spread_by_score(runs, 5, exclude=set()) == [archs[i] for i in (1, 3, 5, 7, 9)]
    # 9 left (0, 1, 3, ..., 9): positions int(2.25) = 2 and int(6.75) = 6, i.e. architectures 3 and 7
    assert spread_by_score(runs, 2, exclude={archs[2]}) == [archs[3], archs[7]]
    assert len(spread_by_score(runs, 50, exclude=set())) == 10 and spread_by_score(runs, 0, exclude=set()) == []


def test_mean_metrics_averages_over_retraining_seeds():
    m = mean_metrics({0: {"fitness": 1.0, "pq": 2.0, "retrain_steps": 30},
                      1: {"fitness": 3.0, "pq": 4.0, "retrain_steps": 30}})
    assert m == {"fitness": 2.0, "pq": 3.0, "retrain_steps": 30, "seeds": [0, 1], "fitness_by_seed": [1.0, 3.0]}
    assert mean_metrics({}) is None


# --------------------------------------------------------------------------- toy runs: seeds and resume
OPTIONS = dict(preset="tiny", seeds=2, budget_scale=0.05, random_archs=2, retrain_seeds=2, trust_archs=2,
               bn_counts=(), policies=["path-priority", "random"])


class Killed(Exception):
    pass


def _kill_at_retraining(n: int):
    def progress(msg: str) -> None:
        if msg.startswith(f"[benchmark] retrain {n}/"):
            raise Killed(msg)
    return progress


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if not k.endswith("_s")}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    return out, run_task_benchmark("toy", out=out, **OPTIONS)


def test_every_candidate_is_retrained_with_each_seed_in_its_own_folder(straight):
    out, summary = straight
    assert summary["retrain_seeds"] == [0, 1]
    for c in summary["candidates"]:
        assert sorted(c["retrained_runs"]) == ["0", "1"]
        by_seed = [c["retrained_runs"][k]["fitness"] for k in ("0", "1")]
        assert c["retrained"]["fitness"] == pytest.approx(sum(by_seed) / 2)
        folder = Path(summary["run_dir"]) / "retrain" / c["key"][:64]
        assert (folder / "metrics.json").exists() and (folder / "seed-1" / "metrics.json").exists()
    kinds = {c["kind"] for c in summary["candidates"]}
    assert {"found", "random", "spread"} <= kinds
    for p in summary["policies"]:  # every search seed's architecture is retrained
        assert len(p["seeds"]) == 2 and all(s["retrained"] for s in p["seeds"])
    assert set(summary["stats"]["policies"]) == {"path-priority", "random"}
    assert summary["trust"]["n"] == len(summary["candidates"]) and "kendall_tau_b_ci" in summary["trust"]
    report = (out / "report.md").read_text()
    assert "Table 5 as a statistic" in report and "Verdict rule" in report and "Paired bootstrap" in report
    assert sum(k.startswith("retrain ") for k in summary["costs"]) == 2 * len(summary["candidates"])


def test_a_killed_benchmark_resumes_to_the_same_summary(straight, tmp_path):
    _, expected = straight
    with pytest.raises(Killed):
        run_task_benchmark("toy", out=tmp_path, progress=_kill_at_retraining(5), **OPTIONS)
    assert not (tmp_path / "summary.json").exists()
    done = list((Path(tmp_path) / "run" / "retrain").rglob("metrics.json"))
    assert len(done) == 4  # retrainings 1-4 finished before the kill
    again = run_task_benchmark("toy", out=tmp_path, **OPTIONS)
    for key in ("policies", "candidates", "stats", "trust"):  # everything but measured times
        assert json.dumps(_untimed(again[key]), sort_keys=True) == json.dumps(_untimed(expected[key]), sort_keys=True), key
    assert sum(not e.get("measured", True) for k, e in again["costs"].items() if k.startswith("retrain ")) == 0
