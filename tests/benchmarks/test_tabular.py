import json
from pathlib import Path

import pytest

from benchmarks.tabular import load_nas_bench_macro
from oneshot.errors import DatasetError

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nas_bench_macro" / "nas-bench-macro_cifar10.json"


def test_loads_a_table_as_a_categorical_space(synthetic_table):
    bench = load_nas_bench_macro(synthetic_table.parent)  # the folder works too
    assert len(bench) == 6561 and bench.space.size == 6561 and bench.space.window_size == 3
    assert list(bench.space.components) == ["stage1", "stage2", "stage3"]
    arch = bench.space.validate([2, 1, 0, 0, 1, 2, 2, 0])
    raw = json.loads(synthetic_table.read_text())
    assert bench.key(arch) == "21001220" and bench.accuracy(arch) == raw["21001220"]["mean_acc"]


def test_noise_is_deterministic_per_seed_and_architecture(synthetic_table):
    bench = load_nas_bench_macro(synthetic_table)
    a, b = bench.space.validate([0] * 8), bench.space.validate([1] * 8)
    noisy = bench.fitness(1.0, seed=3)
    assert noisy(a) == bench.fitness(1.0, seed=3)(a)
    assert noisy(a)["fitness"] != bench.fitness(1.0, seed=4)(a)["fitness"]
    assert noisy(a)["noise"] != noisy(b)["noise"]
    assert noisy(a)["mean_acc"] == bench.accuracy(a) == bench.fitness(0.0)(a)["fitness"]
    with pytest.raises(ValueError):
        bench.fitness(-1.0)


def test_rank_percentile(synthetic_table):
    bench = load_nas_bench_macro(synthetic_table)
    archs = sorted(bench.records, key=lambda k: -bench.records[k]["mean_acc"])
    best = bench.space.validate([int(c) for c in archs[0]])
    tenth = bench.space.validate([int(c) for c in archs[10]])
    assert bench.rank_percentile(best) == 0.0
    assert bench.rank_percentile(tenth) == pytest.approx(100 * 10 / 6561)
    assert bench.rank_percentile(-1.0) == 100.0


@pytest.mark.parametrize(
    "content, message",
    [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"0000000": {"mean_acc": 1}}', "8 characters"),
     ('{"00000000": {"mean_acc": 1}}', "expected all 6561")],
)
def test_malformed_tables_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_nas_bench_macro(path)
    with pytest.raises(DatasetError, match="cannot read"):
        load_nas_bench_macro(tmp_path / "missing.json")


@pytest.mark.skipif(not REAL.exists(), reason="NAS-Bench-Macro table not present in ../shared/data")
def test_real_table_matches_its_documented_statistics():
    bench = load_nas_bench_macro(REAL)
    assert bench.best_accuracy == pytest.approx(93.127, abs=1e-3)
    assert bench.accuracy(bench.space.validate([2, 2, 2, 1, 2, 2, 2, 0])) == pytest.approx(93.127, abs=1e-3)
    assert bench.accuracy(bench.space.validate([0] * 8)) == pytest.approx(45.363, abs=1e-3)
