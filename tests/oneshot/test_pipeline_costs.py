"""Costs, constraints, objectives and the component graph through `oneshot search` on the toy task."""

import json

from click.testing import CliRunner

from oneshot.cli import cli

TINY = ["--task", "toy", "--preset", "tiny", "--quiet", "--set", "train.iterations=4"]


def _run(args):
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_multi_objective_search_with_a_constraint_writes_a_pareto_front(tmp_path):
    out = tmp_path / "run"
    _run(["search", *TINY, "--out", str(out), "--searcher", "nsga2",
          "--set", "search.options.nsga2.budget=12", "--set", "search.objectives=[fitness, flops]",
          "--set", "search.constraints.max_flops=300000"])
    front = json.loads((out / "search" / "nsga2" / "pareto.json").read_text())
    assert [o["name"] for o in front["objectives"]] == ["fitness", "flops"]
    assert front["front"] and all(f["metrics"]["flops"] <= 300000 for f in front["front"])
    assert (out / "search" / "nsga2" / "pareto.png").exists()
    result = json.loads((out / "search_result.json").read_text())
    constraint = result["extras"]["constraint"]
    assert constraint["limits"] == {"max_flops": 300000.0} and constraint["rejected"] > 0
    stored = [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()[1:]]
    assert stored and all(r["metrics"]["flops"] <= 300000 for r in stored)


def test_single_objective_searcher_refuses_several_objectives(tmp_path):
    result = CliRunner().invoke(cli, ["search", *TINY, "--out", str(tmp_path / "r"),
                                      "--set", "search.objectives=[fitness, flops]"])
    assert result.exit_code != 0
    assert "optimises the fitness alone" in result.output and "nsga2" in result.output


def test_graph_command_draws_the_components(tmp_path):
    result = _run(["graph", "--task", "toy", "--preset", "tiny", "--out", str(tmp_path / "r")])
    assert "body -> head: 1 layer connections" in result.output
    assert (tmp_path / "r" / "components.png").stat().st_size > 1000


def test_racing_through_oneshot_search_records_partial_evaluations(tmp_path):
    out = tmp_path / "run"
    _run(["search", *TINY, "--out", str(out), "--searcher", "random", "--set", "search.options.random.num_samples=24",
          "--set", "search.racing.fraction=0.25", "--set", "search.racing.min_pairs=3"])
    result = json.loads((out / "search_result.json").read_text())
    racing = result["extras"]["racing"]
    assert racing["fraction"] == 0.25 and racing["partial_only"] > 0
    assert racing["cost_in_full_evaluations"] < 24
    assert 0.25 <= racing["partial_share"] < 0.5  # the share of examples really scored (rounded up)
    records = [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()[1:]]
    partial_keys = {r["key"] for r in records if r["type"] == "partial"}
    assert len(partial_keys) == 24  # every candidate was scored on the share first
    report = json.loads((out / "report.json").read_text())
    assert report["found"]["architecture"] == result["best"]  # evaluated in full for the report


def test_reference_architectures_are_marked_on_the_pareto_front(tmp_path):
    from oneshot.tasks import register_task
    from oneshot.testing import ToyTask

    @register_task
    class ToyWithReference(ToyTask):
        name = "toy-with-reference"

        def reference_architectures(self):
            return {"published": {"body": [0, 0, 0], "head": [1]}, "wrong space": {"body": [0], "head": [0]}}

    out = tmp_path / "run"
    _run(["search", "--task", "toy-with-reference", "--preset", "tiny", "--quiet", "--set", "train.iterations=2",
          "--out", str(out), "--searcher", "mo-random", "--set", "search.options.mo-random.budget=6",
          "--set", "search.objectives=[fitness, flops]"])
    front = json.loads((out / "search" / "mo-random" / "pareto.json").read_text())
    lines = front["reference_architectures"]
    assert set(lines) == {"flops", "params"} and set(lines["flops"]) == {"published"}
    assert lines["flops"]["published"] > 0


def test_panoptic_marks_the_published_architectures_only_at_their_width():
    from oneshot.config import load_config
    from oneshot_panoptic.config import PRESETS, PanopticConfig
    from oneshot_panoptic.task import PanopticTask

    tiny = PanopticTask(load_config(PanopticConfig, preset=PRESETS["tiny"]))
    assert tiny.reference_architectures() == {}
    wide = PanopticTask(load_config(PanopticConfig, preset=PRESETS["tiny"], overrides=["model.preset=1.3G"]))
    refs = wide.reference_architectures()
    assert set(refs) == {"published coco", "published ade20k"} and len(refs["published coco"]["backbone"]) == 40
