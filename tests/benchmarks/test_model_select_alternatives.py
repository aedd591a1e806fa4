import json

import pytest

from benchmarks import model_select_alternatives as msa
from oneshot.search import ModelSelectSearcher
from oneshot.search.cell_tables import cell_table
from oneshot.search.synthetic_tables import synthetic_table


def test_every_variant_on_one_seed_then_a_rerun_skips_it(tmp_path, capsys):
    args = ["--shapes", "6x3", "--table-seed", "3", "--first-seed", "7", "--seeds", "1", "--out", str(tmp_path)]
    msa.main(args)
    (record,) = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    results = record["results"]
    keys = {"model-select", "saturating-additive", "surrogate", "surrogate-first", "r36", "fair36", "cv_all", "cv_top", "last-test",
            "residual-gp", "residual-gp-pairs", "duel-never", "duel-0.25", "duel-0.5",
            "early-test-1.5", "early-test-2", "early-test-2.5", "early-test-3", "hedged", "hedged-runs", "model-select-no-clip", "surrogate-no-clip", "model-select-no-quick"}
    assert set(results) == keys
    assert results["surrogate-first"] == (results["fair36"] if results["r36"] < 1.0 else results["surrogate"])
    table = synthetic_table("6x3", seed=3)
    alone = ModelSelectSearcher(table.space, budget=60, seed=7).run(table.fitness(1.0, seed=7))
    assert results["model-select"] == table.rank_percentile(alone.best)
    assert all(0 <= v <= 100 for k, v in results.items() if not k.startswith(("r36", "cv_")))
    assert "synthetic 6x3 (seed 3): 1 seeds" in capsys.readouterr().out
    msa.main(args)  # everything is on record: nothing is run again
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 1


def test_the_duel_measures_three_architectures_and_never_acts_with_an_infinite_margin():
    table = synthetic_table("6x3", seed=0, pair_scale=0.0, dead_layers_per_component=0)  # saturating branch
    searcher = msa.DuelSearcher(table.space, budget=60, seed=1, margin=1e9)
    result = searcher.run(table.fitness(1.0, seed=1))
    assert result.extras["branch"] == "saturating-noisy" and searcher.gap is not None
    assert len(searcher._duel) == 3 and all(a in {h.arch for h in result.history} for a in searcher._duel)
    assert result.num_evaluated <= 60


def test_a_hedged_surrogate_branch_draws_fair_windows_and_a_plain_one_does_not():
    table = synthetic_table("6x4", seed=3, pair_scale=1.5, pair_density=0.6)  # goes to the surrogate
    fitness = table.fitness(1.0, seed=0)
    plain = ModelSelectSearcher(table.space, budget=60, seed=0).run(fitness)
    assert plain.extras["branch"] == "surrogate"
    never = msa.HedgedSearcher(table.space, budget=60, seed=0, noise=1e9)
    assert [h.arch for h in never.run(fitness).history] == [h.arch for h in plain.history] and not never.hedged
    always = msa.HedgedSearcher(table.space, budget=60, seed=0, ratio=1e9, noise=0.0)
    hedged = always.run(fitness)
    assert always.hedged and hedged.extras["branch"] == "surrogate"
    archs = [h.arch for h in hedged.history]
    assert len(archs) == len(set(archs)) == hedged.num_evaluated <= 60
    windows = ModelSelectSearcher(table.space, budget=60, seed=0)._sampler  # the same windows, drawn alone
    drawn = {a for _ in range(40) for a in windows.next_window()}
    assert sum(a in drawn for a in archs) >= sum(h.arch in drawn for h in plain.history) + 2 * table.space.window_size


def test_unknown_variants_and_large_spaces_are_one_line_errors(tmp_path):
    with pytest.raises(SystemExit, match="unknown variant"):
        msa.main(["--shapes", "6x3", "--variants", "nope", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="enumerate the space"):
        msa.main(["--shapes", "10x3", "--seeds", "1", "--variants", "last-test", "--out", str(tmp_path)])


def test_no_clip_runs_both_searchers_with_and_without_clipping_on_a_cell_table(tmp_path, capsys):
    msa.main(["--shapes", "", "--cells", "4x3", "--table-seed", "5", "--first-seed", "1", "--seeds", "1",
              "--variants", "no-clip", "--out", str(tmp_path)])
    (record,) = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert set(record["results"]) == {"model-select", "model-select-no-clip", "surrogate", "surrogate-no-clip"}
    table = cell_table("4x3", seed=5)
    raw = ModelSelectSearcher(table.space, budget=60, seed=1, clip_outliers=None).run(table.fitness(1.0, seed=1))
    assert record["results"]["model-select-no-clip"] == table.rank_percentile(raw.best)
    assert "cell 4x3 (seed 5): 1 seeds" in capsys.readouterr().out
