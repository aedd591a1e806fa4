import json

import numpy as np
import pytest

from benchmarks import router_statistics as rs
from oneshot.search import build_searcher
from oneshot.search.cell_tables import cell_table
from oneshot.search.synthetic_tables import synthetic_table


def test_records_every_statistic_at_whole_windows_and_a_rerun_skips_them(tmp_path, capsys):
    args = ["--shapes", "6x3", "--cells", "4x3", "--table-seed", "3", "--first-seed", "5", "--seeds", "2",
            "--sizes", "7,12", "--reference", "synthetic 6x3 (seed 3)", "--out", str(tmp_path)]
    rs.main(args)
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert [(r["table"], r["seed"]) for r in records] == [
        ("synthetic 6x3 (seed 3)", 5), ("synthetic 6x3 (seed 3)", 6), ("cell 4x3 (seed 3)", 5), ("cell 4x3 (seed 3)", 6)
    ]
    # keyed by the size asked for; 6x3 and the cell 4x3 (6 edges x 3 operations) have windows of 3: 7 -> 6
    assert all(set(r["statistics"]) == {"7", "12"} for r in records)
    assert all(r["statistics"]["7"]["evaluations"] == 6 and r["statistics"]["12"]["evaluations"] == 12 for r in records)
    assert all(set(s) == {*rs.STATISTICS, "evaluations"} for r in records for s in r["statistics"].values())
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("| cv |") == 2 and "cell 4x3 (seed 3) (2 runs)" in summary
    assert summary in capsys.readouterr().out + "\n"
    rs.main(args)  # everything is on record: nothing is run again
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 4


def test_the_ratio_is_model_selects_test_on_its_fair_design():
    table = synthetic_table("6x3", seed=2)
    design = rs.fair_design(table, 4, 12)
    assert len(set(design)) == 12
    fitness = table.fitness(1.0, seed=4)
    stats = rs.run_one(table, 1.0, 4, [12])["12"]
    x = np.array([a.choices for a in design])
    assert stats == {**rs.statistics_of(table.space.num_choices, x, [fitness(a) for a in design]), "evaluations": 12}
    assert 0.0 <= stats["interaction-weight"] < 1.0


def test_the_balanced_design_is_model_selects_default_design():
    table = synthetic_table("6x3", seed=2)
    result = build_searcher("model-select", table.space, budget=60, seed=4).run(table.fitness(1.0, seed=4))
    assert [h.arch for h in result.history][:12] == rs.fair_design(table, 4, 12, "fair-balanced")
    assert rs.fair_design(table, 4, 12, "fair-balanced") != rs.fair_design(table, 4, 12)


def test_clipped_counts_chance_level_measurements():
    table = cell_table("4x3", seed=0)
    x = np.array([a.choices for a in rs.fair_design(table, 0, 12)])
    measured = [90.0 + 0.1 * i for i in range(12)]
    measured[3] = 10.0  # a network that did not train
    assert rs.statistics_of(table.space.num_choices, x, measured)["clipped"] == 1.0


def test_separation_of_disjoint_and_identical_samples():
    low, high = np.arange(10.0), np.arange(100.0, 110.0)
    assert rs.separation(low, [high]) == (1.0, 1.0)
    accuracy, below = rs.separation(low, [low.copy()])
    assert accuracy == pytest.approx(0.5, abs=0.05) and below == 0.0


def test_bad_sizes_and_a_missing_reference_are_reported(tmp_path):
    with pytest.raises(SystemExit, match="--sizes"):
        rs.main(["--shapes", "6x3", "--sizes", "3", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--sizes"):
        rs.main(["--shapes", "6x3", "--sizes", "a,b", "--out", str(tmp_path)])
    rs.main(["--shapes", "6x3", "--seeds", "1", "--sizes", "6", "--out", str(tmp_path)])
    assert "need runs of the reference table" in (tmp_path / "summary.md").read_text()


def test_reads_the_nas_bench_macro_file_with_its_default_reference(tmp_path, synthetic_table):
    rs.main(["--macro", str(synthetic_table), "--shapes", "8x3", "--cells", "4x4", "--seeds", "2", "--sizes", "9",
             "--out", str(tmp_path)])
    summary = (tmp_path / "summary.md").read_text()
    header = summary.splitlines()[2]
    assert header.index("NAS-Bench-Macro (8x3) (2 runs)") < header.index("synthetic 8x3 (seed 0) (2 runs)")  # reference first
    assert summary.count("| 9 |") == len(rs.STATISTICS)  # one row per statistic, the cell's 8 evaluations included
    assert "cell 4x4 (seed 0) (2 runs)" in header
