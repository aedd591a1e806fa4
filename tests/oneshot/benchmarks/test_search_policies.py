import json

from click.testing import CliRunner

from oneshot.benchmarks.cli import benchmark
from oneshot.benchmarks.search_policies import (
    SECTION_TITLE,
    available_modes,
    write_markdown_section,
)


def test_markdown_section_replaces_only_its_own(tmp_path):
    md = tmp_path / "docs" / "benchmarks.md"
    write_markdown_section(md, "first")
    assert md.read_text() == f"# Benchmarks\n\n{SECTION_TITLE}\n\nfirst\n"
    md.write_text("# Benchmarks\n\n## Other\n\nkeep me\n\n" + md.read_text().split("\n\n", 1)[1] + "\n## Later\n\nme too\n")
    write_markdown_section(md, "second")
    text = md.read_text()
    assert "keep me" in text and "me too" in text and "second" in text and "first" not in text
    other = tmp_path / "other.md"
    other.write_text("# Benchmarks\n\n## Speed\n\nx\n")
    write_markdown_section(other, "third")
    assert other.read_text() == f"# Benchmarks\n\n## Speed\n\nx\n\n{SECTION_TITLE}\n\nthird\n"


def test_cli_runs_the_comparison_and_writes_the_section(synthetic_table, tmp_path):
    docs = tmp_path / "docs" / "benchmarks.md"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        benchmark,
        ["search-policies", "--table", str(synthetic_table), "--seeds", "2", "--out", str(out), "--docs", str(docs), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert "nas-bench-macro" in available_modes()
    runs = json.loads((out / "runs.json").read_text())
    labels = {r["label"] for r in runs}
    assert "path-priority, 5 cycles (15 evals)" in labels and "path-priority-verify (new)" in labels
    assert len(runs) == len(labels) * 2 * 2  # seeds x sigmas
    budgets = {r["label"]: r["evaluations"] for r in runs}
    assert budgets["evolution 50 x 20"] == 1000 and budgets["random 300"] == 300 and budgets["random"] == 60
    assert all(r["evaluations"] <= 60 for r in runs if r["group"] == "equal budget")
    text = docs.read_text()
    assert SECTION_TITLE in text and "--seeds 2" in text
    for name in ("search_heatmap.png", "search_explored.png", "search_best_so_far.png"):
        assert (docs.parent / "img" / name).stat().st_size > 1000


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(benchmark, ["search-policies", "--table", str(tmp_path / "none.json"), "--out", str(tmp_path)])
    assert result.exit_code != 0 and "cannot read NAS-Bench-Macro table" in result.output
    result = runner.invoke(benchmark, ["search-policies", "--task", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown benchmark mode 'nope'" in result.output
    result = runner.invoke(benchmark, ["search-policies", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "--table" in result.output
