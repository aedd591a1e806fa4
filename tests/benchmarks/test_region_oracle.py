import json

import numpy as np
import pytest

from benchmarks.region_oracle import additive_pick, main, oracle_run, table_region
from oneshot.search.synthetic_tables import synthetic_table


@pytest.fixture(scope="module")
def table():
    return synthetic_table("5x3", seed=3)


@pytest.fixture(scope="module")
def region(table):
    return table_region(table, 2)


def test_the_region_keeps_the_choices_most_frequent_in_the_top_one_percent(table, region):
    assert len(region.choices) == 2**5
    assert all(len(k) == 2 for k in region.kept)
    for row, acc, pct in zip(region.choices, region.accuracy, region.percentile, strict=True):
        arch = table.space.architecture(row.tolist())
        assert acc == table.accuracy(arch)
        assert pct == table.rank_percentile(arch)
    assert 0.0 < region.top1_inside <= 100.0
    assert region.additive_r2 <= 1.0


def test_keeping_every_choice_is_the_whole_table(table):
    whole = table_region(table, 3)
    assert len(whole.choices) == 3**5 and whole.top1_inside == 100.0


def test_the_additive_pick_recovers_an_additive_signal(region):
    # values that are exactly additive over the kept choices: the pick is their argmax
    rng = np.random.default_rng(0)
    effects = rng.normal(size=(5, 2))
    idx = np.array([[k.index(c) for k, c in zip(region.kept, row, strict=True)] for row in region.choices])
    values = effects[np.arange(5), idx].sum(axis=1)
    rows = rng.choice(len(region.choices), size=20, replace=False)
    assert additive_pick(region, region.choices[rows], values[rows]) == int(np.argmax(values))


def test_without_noise_the_oracle_and_its_true_value_pick_agree(table, region):
    record = oracle_run(table, region, 12, 0.0, 0)
    assert record["oracle"] == record["oracle / true values"]
    assert record["evaluations"] == 12
    noisy = oracle_run(table, region, 12, 1.0, 0)
    assert noisy["oracle / true values"] == record["oracle / true values"]  # same draws for a seed
    assert oracle_run(table, region, 999, 1.0, 0)["evaluations"] == len(region.choices)


def test_main_writes_records_summary_and_markdown(tmp_path):
    main(["--shapes", "5x3", "--table-seed", "3", "--budgets", "8,16", "--sigmas", "0,1", "--seeds", "3",
          "--out", str(tmp_path)])
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 2 * 3
    summary = json.loads((tmp_path / "summary.json").read_text())["summary"]
    assert {s["column"] for s in summary} == {"oracle", "oracle / true values"}
    assert all(s["ci95"][0] <= s["median"] <= s["ci95"][1] and s["region_size"] == 32 for s in summary)
    assert "| synthetic 5x3 (seed 3) | 32 (" in (tmp_path / "results.md").read_text()


def test_a_table_too_large_to_enumerate_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="region_oracle: the table has 243 architectures"):
        main(["--shapes", "5x3", "--table-seed", "3", "--max-size", "100", "--out", str(tmp_path)])
