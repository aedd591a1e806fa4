"""Cost of architectures on the toy supernet: FLOPs/params, latency, the latency table, constraints."""

import json

import pytest
import torch

from oneshot.config import RunConfig, load_config
from oneshot.cost import CostModel, batch_example, build_constraint, measure_latency, with_costs
from oneshot.errors import ConfigError, OneshotError
from oneshot.latency_table import (
    LatencyTable,
    build_latency_table,
    capture_layer_inputs,
    predictor_error,
)
from oneshot.search import BatchFitness, batch_fitness, build_searcher
from oneshot.space import SearchSpace
from oneshot.supernet import count_flops_params
from oneshot.tasks import Task
from oneshot.testing import ToyConfig, ToyTask


@pytest.fixture
def toy(toy_supernet, tmp_path):
    task = ToyTask(ToyConfig(), run_dir=tmp_path)
    return toy_supernet, task.example_input(), SearchSpace.from_module(toy_supernet)


def test_example_input_hook(tmp_path):
    x = ToyTask(ToyConfig(), run_dir=tmp_path).example_input()
    assert x.shape == (1, 3, 8, 8)

    class NoExample(ToyTask):
        name = "no-example"
        example_input = Task.example_input

    with pytest.raises(OneshotError, match="task 'no-example' does not provide an example input"):
        NoExample(ToyConfig(), run_dir=tmp_path).example_input()


def test_batch_example():
    x = torch.ones(1, 3, 4, 4)
    assert batch_example(x, 3).shape == (3, 3, 4, 4)
    assert len(batch_example([x[0]], 4)) == 4
    assert batch_example((x, "a"), 2)[0].shape[0] == 2


def test_flops_params_cached_and_equal_to_count(toy):
    model, x, space = toy
    costs = CostModel(model, x)
    arch = space.validate([0, 1, 2, 1])
    fp = costs.flops_params(arch)
    assert fp == count_flops_params(model, arch, x)
    assert costs.flops_params(arch) is fp  # cached
    skip = space.validate([2, 2, 2, 0])
    assert costs.flops_params(skip).flops < fp.flops


def test_measure_latency_records_device_and_batches(toy):
    model, x, space = toy
    m1 = measure_latency(model, x, arch=space.validate([0, 0, 0, 0]), warmup=1, repeats=5)
    assert m1.median_ms > 0 and len(m1.times_ms) == 5 and m1.batch_size == 1
    assert m1.device.startswith("cpu") and m1.torch_version == torch.__version__
    m8 = measure_latency(model, x, arch=space.validate([0, 0, 0, 0]), batch_size=8, warmup=1, repeats=3)
    assert m8.batch_size == 8
    assert json.loads(json.dumps(m8.to_json()))["repeats"] == 3
    costs = CostModel(model, x, batch_size=4, warmup=1, repeats=3)
    metrics = costs.metrics(space.validate([0, 1, 2, 0]), ["flops", "latency_ms", "latency_ms_batch"])
    assert set(metrics) == {"flops", "latency_ms", "latency_ms_batch", "latency_source"}
    assert metrics["latency_source"] == "measured"
    with pytest.raises(ValueError, match="unknown cost metric 'gpu_ms'"):
        costs.metrics(space.validate([0, 1, 2, 0]), ["gpu_ms"])


def test_capture_layer_inputs(toy):
    model, x, space = toy
    inputs = capture_layer_inputs(model, space.validate([0, 2, 1, 1]), x)
    assert set(inputs) == set(space.labels)
    assert inputs["body.0"][0][0][0].shape == (1, 8, 8, 8)
    assert inputs["head.0"][0][0][0].shape == (1, 8)


def test_latency_table_builds_resumes_and_predicts(toy, tmp_path):
    model, x, space = toy
    path = tmp_path / "latency.json"
    table = build_latency_table(model, x, path, warmup=1, repeats=3, progress=False)
    assert set(table.layers) == set(space.labels)
    assert set(table.layers["body.1"]) == {"conv3", "conv5", "skip"}
    assert table.fixed_ms is not None and table.shape_dependent == []
    arch = space.validate([1, 0, 2, 1])
    expected = table.fixed_ms + sum(table.layers[label][name] for label, name in
                                    zip(space.labels, ["conv5", "conv3", "skip", "mlp"], strict=True))
    assert table.predict(arch) == pytest.approx(expected)
    # resuming a complete table measures nothing more and gives the same table
    again = build_latency_table(model, x, path, warmup=1, repeats=3, progress=False)
    assert again.to_json() == LatencyTable.load(path).to_json() == table.to_json()
    # an interrupted build (only some layers written) is completed, the others kept
    partial = LatencyTable.load(path)
    partial.layers = {"body.0": partial.layers["body.0"]}
    partial.rounds_ms = {"body.0": partial.rounds_ms["body.0"], "body.1": {"conv3": [1.0]}}
    partial.fixed_ms = None
    partial.save(path)
    resumed = build_latency_table(model, x, path, warmup=1, repeats=3, progress=False)
    assert resumed.layers["body.0"] == table.layers["body.0"] and len(resumed.layers) == 4
    assert all(len(v) == 1 for row in resumed.rounds_ms.values() for v in row.values())
    assert resumed.layers["body.1"]["conv3"] != 1.0  # the interrupted layer was timed again
    # several rounds: every entry is the median over rounds
    three = build_latency_table(model, x, tmp_path / "three.json", warmup=1, repeats=3, rounds=3, progress=False)
    assert all(len(v) == 3 for row in three.rounds_ms.values() for v in row.values())
    assert three.layers["body.2"]["conv5"] == sorted(three.rounds_ms["body.2"]["conv5"])[1]
    with pytest.raises(OneshotError, match="other settings.*repeats"):
        build_latency_table(model, x, path, warmup=1, repeats=5, progress=False)
    err = predictor_error(table, model, x, [space.sample(s) for s in range(3)], warmup=1, repeats=3)
    assert err["num_architectures"] == 3 and err["median_abs_pct_error"] >= 0
    costs = CostModel(model, x, table=table)
    assert costs.metrics(arch, ["latency_ms"]) == {"latency_ms": table.predict(arch), "latency_source": "predicted"}


def test_with_costs_keeps_the_fitness_kind(toy):
    model, x, space = toy
    costs = CostModel(model, x)
    per = with_costs(lambda a: {"fitness": 1.0, "acc": 2.0}, costs, ["flops", "params"])
    out = per(space.validate([0, 0, 0, 0]))
    assert out["fitness"] == 1.0 and out["acc"] == 2.0 and out["flops"] > 0 and out["params"] > 0
    batch = with_costs(batch_fitness(lambda archs: [0.5] * len(archs)), costs, ["params"])
    assert isinstance(batch, BatchFitness)
    assert [v["fitness"] for v in batch([space.sample(0), space.sample(1)])] == [0.5, 0.5]


def test_constraint_rejects_and_counts_and_searchers_honour_it(toy):
    model, x, space = toy
    costs = CostModel(model, x)
    flops = sorted({costs.flops_params(space.sample(s)).flops for s in range(20)})
    limit = flops[len(flops) // 2]
    constraint = build_constraint(costs, {"max_flops": limit, "max_params": None})
    result = build_searcher("nsga2", space, budget=20, seed=0, objectives=["fitness", "flops"]).run(
        with_costs(lambda a: float(sum(a.choices)), costs, ["flops"]), constraint=constraint
    )
    assert all(h.metrics["flops"] <= limit for h in result.history)
    assert constraint.rejected > 0 and constraint.to_json()["rejected_by"] == {"max_flops": len(constraint.rejected_archs)}
    assert build_constraint(costs, {"max_flops": None}) is None
    with pytest.raises(ValueError, match="unknown constraint 'max_flop'"):
        build_constraint(costs, {"max_flop": 3})


@pytest.mark.parametrize(
    "override, message",
    [
        ("search.constraints.max_flopz=1", "search.constraints.max_flopz: unknown key"),
        ("search.constraints.max_latency_ms=0", "search.constraints.max_latency_ms: Input should be greater than 0"),
        ("search.constraints.max_params=many", "search.constraints.max_params: Input should be a valid number"),
        ("search.objectives=[fitness, fitness]", "search.objectives: .*listed twice"),
    ],
)
def test_bad_constraints_and_objectives_are_one_line_config_errors(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(RunConfig, overrides=[override])
    assert "\n" not in str(info.value)


def test_constraints_and_objectives_config():
    c = load_config(RunConfig, overrides=["search.constraints.max_latency_ms=40", "search.objectives=[fitness, latency_ms]"])
    assert c.search.constraints.max_latency_ms == 40.0 and c.search.objectives == ["fitness", "latency_ms"]


def test_latency_table_for_the_toy_task(tmp_path):
    from oneshot.latency_table import latency_table_for_task

    task = ToyTask(ToyConfig(), run_dir=tmp_path, progress=False)
    table = latency_table_for_task(task, tmp_path / "t.json", warmup=1, repeats=2)
    assert len(table.layers) == 4 and table.meta["device"].startswith("cpu")
