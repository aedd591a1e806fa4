import json

import pytest

from benchmarks.searcher_diagnosis import DATA, KERNELS, diagnose, main
from oneshot.search.synthetic_tables import synthetic_table


@pytest.fixture(scope="module")
def table():
    return synthetic_table("5x3", seed=3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_default_grid_with_measured_values_is_the_surrogates_own_pick(table, seed):
    record = diagnose(table, "surrogate", 20, 1.0, seed)
    assert record["default grid / measured"] == record["returned"]
    assert record["best evaluated"] <= record["returned"]
    assert record["evaluations"] == 20


def test_without_noise_the_three_data_columns_agree(table):
    record = diagnose(table, "random", 15, 0.0, 0)
    for kernel in KERNELS:
        assert len({record[f"{kernel} / {data}"] for data in DATA}) == 1
    assert record["best evaluated"] == record["returned"]  # random returns its best measured one


def test_main_writes_records_summary_and_markdown(tmp_path):
    main(["--shapes", "5x3", "--table-seed", "3", "--budget", "12", "--seeds", "2", "--workers", "1",
          "--out", str(tmp_path)])
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in records] == [1000, 1001]
    summary = json.loads((tmp_path / "summary.json").read_text())["summary"]
    columns = {s["column"] for s in summary}
    assert {"returned", "best evaluated", "top-1 % evaluated", "additive / true"} <= columns
    assert all(s["ci95"][0] <= s["median"] <= s["ci95"][1] for s in summary)
    assert "| synthetic 5x3 (seed 3) | returned | 2 |" in (tmp_path / "results.md").read_text()
