"""The racing benchmark on the toy task (seconds): honest image-evaluation counts from each
search's own store, racing spending less where it must, the report, and resume after a kill."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from benchmarks.racing import main, run_racing_benchmark
from oneshot.study import Racing
from oneshot.testing import ToyTask

# 42 search examples: a quarter rounds up to 11 of them, not 10.5
OPTIONS = dict(preset="tiny", overrides=["data.num_val=42"], searchers=["random", "path-priority"], seeds=2,
               budget_scale=0.1, racing=Racing(fraction=0.25), retrain_seeds=1, rank_archs=6)


def _records(path: Path) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r.get("type") in ("eval", "partial")]


def _untimed(value):
    """Everything but measured times and where they were measured."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items()
                if not (k.endswith("_s") or k in ("wall_time", "eval_s_ratio", "resumed", "run_dir", "costs", "command"))}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("racing")
    return SimpleNamespace(out=out, results=run_racing_benchmark("toy", out=out, **OPTIONS))


def test_image_evaluations_are_counted_from_each_searchs_own_store(straight):
    res = straight.results
    assert res["images"] == {"full": 42, "partial": 11}
    assert len(res["runs"]) == 2 * 2 * 2  # searchers x seeds x arms
    for run in res["runs"]:
        records = _records(straight.out / "stores" / f"{run['searcher']}-seed{run['seed']}-{run['arm']}.jsonl")
        confirmed = run["found"]["confirm_image_evaluations"] > 0  # evaluated in full after the search was counted
        full = sum(r["type"] == "eval" for r in records) - confirmed
        partial = sum(r["type"] == "partial" for r in records)
        assert (run["full_evaluations"], run["partial_evaluations"]) == (full, partial)
        assert run["image_evaluations"] == 42 * full + 11 * partial
        distinct = {h["key"] for h in run["result"]["history"]}
        if run["arm"] == "full":
            assert partial == 0 and full == len(distinct)
        else:
            assert partial == len(distinct)  # racing scores every candidate on the fraction first
    # the two arms of a seed are the same search: same seed, same budget
    for searcher in ("random", "path-priority"):
        arms = {r["arm"]: r for r in res["runs"] if r["searcher"] == searcher and r["seed"] == 0}
        assert arms["full"]["settings"]["spec"] == arms["racing"]["settings"]["spec"]


def test_racing_spends_fewer_image_evaluations_on_random_search(straight):
    rows = {r["searcher"]: r for r in straight.results["summary"]["searchers"]}
    random = rows["random"]
    assert random["racing"]["partial_evaluations"] == 60 and random["racing"]["full_evaluations"] < 45
    assert random["racing"]["image_evaluations_total"] < random["full"]["image_evaluations_total"]
    assert random["ratio"] == pytest.approx(random["full"]["image_evaluations_total"]
                                            / random["racing"]["image_evaluations_total"])
    assert random["ratio"] > 1.2


def test_found_architectures_have_full_scores_and_are_retrained(straight):
    res = straight.results
    for run in res["runs"]:
        records = _records(straight.out / "stores" / f"{run['searcher']}-seed{run['seed']}-{run['arm']}.jsonl")
        full = {r["key"]: r["fitness"] for r in records if r["type"] == "eval"}
        assert run["found"]["fitness"] == full[run["found"]["key"]]  # the full score, never a partial one
        assert run["retrained"]["seeds"] == [0] and "fitness" in run["retrained"]
    rank = res["rank"]
    assert rank["all"]["n"] == 6 and {a["group"] for a in rank["archs"]} == {"visited", "random"}
    report = (straight.out / "report.md").read_text()
    for heading in ("Image-evaluations", "What is found", "Does the fraction rank like the full split", "Time"):
        assert heading in report
    assert (straight.out / "racing.png").stat().st_size > 1000
    assert json.loads((straight.out / "results.json").read_text())["summary"] == json.loads(json.dumps(res["summary"]))


class Killed(Exception):
    pass


def test_a_benchmark_killed_mid_search_resumes_to_the_same_results(straight, tmp_path, monkeypatch):
    calls = {"n": 0}
    evaluate = ToyTask.evaluate

    def dying(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 40:  # inside the racing arm of random search, seed 0
            raise Killed
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(ToyTask, "evaluate", dying)
    with pytest.raises(Killed):
        run_racing_benchmark("toy", out=tmp_path, **OPTIONS)
    monkeypatch.setattr(ToyTask, "evaluate", evaluate)
    assert not (tmp_path / "results.json").exists()
    assert _records(tmp_path / "stores" / "random-seed0-racing.jsonl")  # it died part-way through
    again = run_racing_benchmark("toy", out=tmp_path, **OPTIONS)
    for key in ("runs", "rank", "summary"):
        assert json.dumps(_untimed(again[key]), sort_keys=True) == json.dumps(_untimed(straight.results[key]),
                                                                              sort_keys=True), key
    assert next(r for r in again["runs"] if r["searcher"] == "random" and r["arm"] == "racing")["resumed"] is True


def test_the_command_runs_and_refuses_other_settings_in_the_same_folder(straight):
    args = ["--task", "toy", "--preset", "tiny", "--set", "data.num_val=42", "--searchers", "random,path-priority",
            "--seeds", "2", "--budget-scale", "0.1", "--retrain-seeds", "1", "--rank-archs", "6", "--quiet",
            "--out", str(straight.out)]
    result = CliRunner().invoke(main, args)  # everything done: read back
    assert result.exit_code == 0, result.output
    assert "## Cheaper candidate evaluation (racing) on the toy supernet" in result.output
    assert "--fraction 0.25" in result.output
    result = CliRunner().invoke(main, [*args, "--fraction", "0.5"])
    assert result.exit_code != 0 and "other settings" in result.output
