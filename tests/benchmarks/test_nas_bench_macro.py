import json

from click.testing import CliRunner

from benchmarks.nas_bench_macro_report import SECTION_TITLE
from benchmarks.publish import publish
from benchmarks.search_policies import MODES, main


def test_cli_runs_the_comparison_and_writes_the_report(synthetic_table, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["--table", str(synthetic_table), "--seeds", "2", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "nas-bench-macro" in MODES
    runs = json.loads((out / "runs.json").read_text())
    labels = {r["label"] for r in runs}
    assert "path-priority, 5 cycles (15 evals)" in labels and "path-priority-verify (new)" in labels
    assert len(runs) == len(labels) * 2 * 2  # seeds x sigmas
    budgets = {r["label"]: r["evaluations"] for r in runs}
    assert budgets["evolution 50 x 20"] == 1000 and budgets["random 300"] == 300 and budgets["random"] == 60
    assert all(r["evaluations"] <= 60 for r in runs if r["group"] == "equal budget")
    report = (out / "report.md").read_text()
    assert report.startswith(SECTION_TITLE) and "--seeds 2" in report and "python -m benchmarks.search_policies" in report
    for name in ("search_heatmap.png", "search_explored.png", "search_best_so_far.png"):
        assert (out / name).stat().st_size > 1000 and f"]({name})" in report
    # the docs change only through the separate publish step
    docs = tmp_path / "docs" / "benchmarks.md"
    result = CliRunner().invoke(publish, [str(out), str(docs)])
    assert result.exit_code == 0, result.output
    text = docs.read_text()
    assert SECTION_TITLE in text and "--seeds 2" in text and "](img/search_heatmap.png)" in text
    for name in ("search_heatmap.png", "search_explored.png", "search_best_so_far.png"):
        assert (docs.parent / "img" / name).stat().st_size > 1000


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["--table", str(tmp_path / "none.json"), "--out", str(tmp_path)])
    assert result.exit_code != 0 and "cannot read NAS-Bench-Macro table" in result.output
    result = runner.invoke(main, ["--task", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown benchmark mode 'nope'" in result.output
    result = runner.invoke(main, ["--out", str(tmp_path)])
    assert result.exit_code != 0 and "--table" in result.output
