import importlib.util
import json
import statistics
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("noisy_search", ROOT / "benchmarks" / "noisy_search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_small_run_writes_records_summary_and_markdown(tmp_path):
    ns = _module()
    ns.main(["--shapes", "5x3", "--searchers", "random,surrogate,not-a-searcher", "--budgets", "12",
             "--sigmas", "0,1", "--seeds", "3", "--out", str(tmp_path)])
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 2 * 3
    assert all(0 <= r["percentile"] <= 100 and r["evaluations"] <= 12 for r in records)
    # both searchers return an evaluated architecture: the best evaluated one is at least as good
    assert all(r["best_evaluated"] <= r["percentile"] for r in records)
    summary = json.loads((tmp_path / "summary.json").read_text())["summary"]
    assert all(s["evaluated_top1_share"] >= s["top1_share"] for s in summary)
    assert {s["searcher"] for s in summary} == {"random", "surrogate"}
    assert all(s["ci95"][0] <= s["median_percentile"] <= s["ci95"][1] for s in summary)
    assert "| synthetic 5x3 (seed 0) | 12 | 1 |" in (tmp_path / "results.md").read_text()


def test_bootstrap_interval_contains_the_median():
    ns = _module()
    lo, hi = ns.bootstrap_median_ci([1.0, 2.0, 3.0, 4.0, 100.0])
    assert lo <= 3.0 <= hi


def test_model_select_runs_record_and_count_the_branch_they_took(tmp_path):
    ns = _module()
    ns.main(["--shapes", "5x3", "--searchers", "model-select,random", "--budgets", "16",
             "--sigmas", "1", "--seeds", "2", "--out", str(tmp_path)])
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    branches = {r["searcher"]: r.get("branch") for r in records}
    assert branches["random"] is None
    assert branches["model-select"] in {"surrogate", "saturating-exact", "saturating-noisy"}
    summary = {s["searcher"]: s for s in json.loads((tmp_path / "summary.json").read_text())["summary"]}
    assert sum(summary["model-select"]["branches"].values()) == 2
    assert "branches" not in summary["random"]
    assert "Branches chosen (runs):" in (tmp_path / "results.md").read_text()


def test_runs_split_over_seeds_summarise_like_one_run(tmp_path):
    ns = _module()
    common = ["--shapes", "5x3", "--searchers", "random,path-priority-verify", "--budgets", "10", "--sigmas", "1"]
    ns.main([*common, "--seeds", "4", "--out", str(tmp_path / "all")])
    ns.main([*common, "--seeds", "2", "--out", str(tmp_path / "a")])
    ns.main([*common, "--first-seed", "2", "--seeds", "2", "--out", str(tmp_path / "b")])
    ns.main(["--from-records", str(tmp_path / "a" / "records.jsonl"), "--from-records",
             str(tmp_path / "b" / "records.jsonl"), "--from-records", str(tmp_path / "a" / "records.jsonl"),
             "--out", str(tmp_path / "merged")])

    def summary(name):  # seconds differ between runs; every other figure must not
        rows = json.loads((tmp_path / name / "summary.json").read_text())["summary"]
        return sorted(tuple((k, str(v)) for k, v in row.items() if k != "mean_seconds") for row in rows)

    assert summary("merged") == summary("all")


def test_only_seeds_summarises_a_range_of_seeds_of_the_records(tmp_path):
    ns = _module()
    common = ["--shapes", "5x3", "--searchers", "random", "--budgets", "10", "--sigmas", "1"]
    ns.main([*common, "--seeds", "4", "--out", str(tmp_path / "all")])
    ns.main([*common, "--first-seed", "1", "--seeds", "2", "--out", str(tmp_path / "part")])
    records = str(tmp_path / "all" / "records.jsonl")
    ns.main(["--from-records", records, "--first-seed", "1", "--only-seeds", "2", "--out", str(tmp_path / "kept")])

    def summary(name):
        rows = json.loads((tmp_path / name / "summary.json").read_text())["summary"]
        return [(row["runs"], row["median_percentile"], row["ci95"]) for row in rows]

    assert summary("kept") == summary("part") and summary("kept")[0][0] == 2
    with pytest.raises(SystemExit, match="no run of seeds 10..11"):
        ns.main(["--from-records", records, "--first-seed", "10", "--only-seeds", "2", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit):
        ns.main([*common, "--only-seeds", "2", "--out", str(tmp_path / "y")])


def test_a_bad_records_file_is_a_one_line_error(tmp_path):
    ns = _module()
    bad = tmp_path / "records.jsonl"
    bad.write_text('{"table": "t"}\n')
    try:
        ns.main(["--from-records", str(bad), "--out", str(tmp_path / "out")])
    except SystemExit as exit_:
        assert "records.jsonl:1 is not a noisy-search record" in str(exit_.code)
    else:
        raise AssertionError("a bad records file was accepted")


def test_cell_tables_are_benchmarked_beside_the_synthetic_ones(tmp_path):
    ns = _module()
    ns.main(["--shapes", "", "--cells", "3x3", "--searchers", "random", "--budgets", "8",
             "--sigmas", "1", "--seeds", "2", "--out", str(tmp_path)])
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert {r["table"] for r in records} == {"cell 3x3 (seed 0)"} and len(records) == 2
    with pytest.raises(SystemExit, match="--cells"):
        ns.main(["--shapes", "", "--cells", "3x2", "--out", str(tmp_path / "bad")])


def test_records_of_chosen_searchers_replace_a_rerun_searchers_older_runs(tmp_path):
    ns = _module()
    common = ["--shapes", "4x3", "--budgets", "10", "--sigmas", "1", "--seeds", "2"]
    ns.main([*common, "--searchers", "random,path-priority", "--out", str(tmp_path / "old")])
    old = tmp_path / "old" / "records.jsonl"
    lines = [json.loads(line) for line in old.read_text().splitlines()]
    for rec in lines:
        if rec["searcher"] == "random":
            rec["best"] = "changed since"  # as if random had been changed and rerun
    old.write_text("".join(json.dumps(r) + "\n" for r in lines))
    ns.main([*common, "--searchers", "random", "--out", str(tmp_path / "new")])
    with pytest.raises(SystemExit, match="differs"):
        ns.main(["--from-records", str(tmp_path / "new" / "records.jsonl"), "--from-records", str(old),
                 "--out", str(tmp_path / "merged")])
    ns.main(["--from-records", str(tmp_path / "new" / "records.jsonl"), "--from-records", f"{old}:path-priority",
             "--out", str(tmp_path / "merged")])
    summary = json.loads((tmp_path / "merged" / "summary.json").read_text())["summary"]
    assert {s["searcher"]: s["runs"] for s in summary} == {"random": 2, "path-priority": 2}


def test_records_of_a_searcher_can_be_relabelled_to_pair_it_with_its_rerun(tmp_path):
    ns = _module()
    common = ["--shapes", "4x3", "--budgets", "10", "--sigmas", "1", "--seeds", "3", "--searchers", "random"]
    ns.main([*common, "--out", str(tmp_path / "old")])
    ns.main([*common, "--out", str(tmp_path / "new")])
    old = tmp_path / "old" / "records.jsonl"
    assert ns.parse_records_spec(f"{old}:random=before,path-priority") == (old, {"random": "before", "path-priority": "path-priority"})
    ns.main(["--from-records", str(tmp_path / "new" / "records.jsonl"), "--from-records", f"{old}:random=before",
             "--paired", "random:before", "--out", str(tmp_path / "merged")])
    body = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert {s["searcher"]: s["runs"] for s in body["summary"]} == {"random": 3, "before": 3}
    (row,) = body["paired"]
    assert (row["runs"], row["equal"]) == (3, 3)  # the same searcher and seeds: identical runs


def test_relabelled_tables_permute_each_layers_choices_and_keep_everything_else(tmp_path):
    ns = _module()
    (name, table), = ns.load_tables(None, ["6x3"], 0).items()
    relabelled = ns.RelabelledTable(table, seed=1)
    assert relabelled.space == table.space
    assert any(list(p) != sorted(p) for p in relabelled.permutations)  # some layer is relabelled
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = table.space.validate([int(rng.integers(k)) for k in table.space.num_choices])
        original = relabelled.original(arch)
        assert [int(p[c]) for p, c in zip(relabelled.permutations, arch.choices)] == list(original.choices)
        assert relabelled.rank_percentile(arch) == table.rank_percentile(original)
        assert relabelled.fitness(1.0, seed=3)(arch) == table.fitness(1.0, seed=3)(original)
    ns.main(["--shapes", "5x3", "--searchers", "random", "--budgets", "8", "--sigmas", "1", "--seeds", "2",
             "--relabel-choices", "4", "--out", str(tmp_path)])
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert {r["table"] for r in records} == {"synthetic 5x3 (seed 0) relabelled (seed 4)"}


def test_variants_run_a_searcher_with_other_options_under_their_own_label(tmp_path):
    ns = _module()
    ns.main(["--shapes", "5x3", "--searchers", "surrogate", "--variant", "small=surrogate:init_fraction=0.2,model_average=false",
             "--budgets", "12", "--sigmas", "1", "--seeds", "2", "--out", str(tmp_path)])
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert sorted(r["searcher"] for r in records) == ["small", "small", "surrogate", "surrogate"]
    assert ns.parse_variant("a=surrogate:init_fraction=0.2,model_average=false") == (
        "a", "surrogate", {"init_fraction": 0.2, "model_average": False})


def test_a_bad_variant_is_a_one_line_error_before_any_run(tmp_path):
    ns = _module()
    for spec, words in (("small", "LABEL=NAME"), ("x=surrogate:init_fraction", "not key=value"),
                        ("x=surrogate:init_fraction=7", "init_fraction"), ("x=no-such:beta=1", "no-such")):
        with pytest.raises(SystemExit) as err:
            ns.main(["--shapes", "5x3", "--searchers", "", "--variant", spec, "--budgets", "12", "--seeds", "1",
                     "--out", str(tmp_path)])
        assert words in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "records.jsonl").exists()


def test_seed_blocks_report_the_median_of_each_full_block(tmp_path):
    ns = _module()
    ns.main(["--shapes", "5x3", "--searchers", "random", "--budgets", "8", "--sigmas", "1", "--seeds", "5",
             "--seed-block", "2", "--out", str(tmp_path)])
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    by_seed = {r["seed"]: r["percentile"] for r in records}
    (row,) = json.loads((tmp_path / "summary.json").read_text())["summary"]
    # seeds 0-1 and 2-3 are full blocks; seed 4 alone is not reported
    assert row["block_medians"] == {"0-1": (by_seed[0] + by_seed[1]) / 2, "2-3": (by_seed[2] + by_seed[3]) / 2}
    assert "Median of each block of seeds" in (tmp_path / "results.md").read_text()
    with pytest.raises(SystemExit):
        ns.main(["--shapes", "5x3", "--seed-block", "0", "--out", str(tmp_path)])


def test_paired_compares_two_searchers_on_the_seeds_both_ran(tmp_path):
    ns = _module()
    ns.main(["--shapes", "5x3", "--searchers", "random,path-priority", "--budgets", "8", "--sigmas", "1",
             "--seeds", "4", "--out", str(tmp_path / "a")])
    ns.main(["--shapes", "5x3", "--searchers", "random", "--budgets", "8", "--sigmas", "1", "--first-seed", "4",
             "--seeds", "2", "--out", str(tmp_path / "b")])
    ns.main(["--from-records", str(tmp_path / "a" / "records.jsonl"), "--from-records", str(tmp_path / "b" / "records.jsonl"),
             "--paired", "random:path-priority", "--out", str(tmp_path / "merged")])
    records = [json.loads(line) for line in (tmp_path / "a" / "records.jsonl").read_text().splitlines()]
    pct = {(r["searcher"], r["seed"]): r["percentile"] for r in records}
    (row,) = json.loads((tmp_path / "merged" / "summary.json").read_text())["paired"]
    diffs = [pct["random", s] - pct["path-priority", s] for s in range(4)]  # seeds 4-5: random only
    assert row["runs"] == 4
    assert (row["better"], row["equal"], row["worse"]) == (sum(d < 0 for d in diffs), sum(d == 0 for d in diffs),
                                                           sum(d > 0 for d in diffs))
    assert row["median_a"] == statistics.median([pct["random", s] for s in range(4)])
    assert "Paired on the same seeds" in (tmp_path / "merged" / "results.md").read_text()
    with pytest.raises(SystemExit):
        ns.main(["--from-records", str(tmp_path / "a" / "records.jsonl"), "--paired", "random", "--out", str(tmp_path / "x")])


def test_blas_threads_are_capped_for_runs_side_by_side(tmp_path):
    from threadpoolctl import threadpool_info, threadpool_limits

    ns = _module()
    with threadpool_limits(limits=2, user_api="blas"):  # restores the session's limits afterwards
        ns.main(["--shapes", "4x3", "--searchers", "random", "--budgets", "6", "--sigmas", "0", "--seeds", "1",
                 "--out", str(tmp_path)])
        blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
        assert blas and all(pool["num_threads"] == 1 for pool in blas)  # the default, --blas-threads 1
    with pytest.raises(SystemExit):
        ns.main(["--blas-threads", "0", "--out", str(tmp_path)])
