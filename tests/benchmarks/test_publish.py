"""``benchmarks.publish``: the one step that copies a benchmark report into a docs page."""

import pytest
from click import ClickException

from benchmarks.publish import publish_report, write_markdown_section

SECTION_TITLE = "## Search policies on NAS-Bench-Macro"


def test_markdown_section_replaces_only_its_own(tmp_path):
    md = tmp_path / "docs" / "benchmarks.md"
    write_markdown_section(md, "first", title=SECTION_TITLE)
    assert md.read_text() == f"# Benchmarks\n\n{SECTION_TITLE}\n\nfirst\n"
    md.write_text("# Benchmarks\n\n## Other\n\nkeep me\n\n" + md.read_text().split("\n\n", 1)[1] + "\n## Later\n\nme too\n")
    write_markdown_section(md, "second", title=SECTION_TITLE)
    text = md.read_text()
    assert "keep me" in text and "me too" in text and "second" in text and "first" not in text
    other = tmp_path / "other.md"
    other.write_text("# Benchmarks\n\n## Speed\n\nx\n")
    write_markdown_section(other, "third", title=SECTION_TITLE)
    assert other.read_text() == f"# Benchmarks\n\n## Speed\n\nx\n\n{SECTION_TITLE}\n\nthird\n"


def test_publish_copies_the_linked_figures_and_rewrites_their_links(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"png")
    (out / "report.md").write_text("## Speed\n\ntext ![a](a.png) and ![web](https://x.org/b.png)\n")
    page = tmp_path / "docs" / "benchmarks.md"
    page.parent.mkdir()
    page.write_text("# Benchmarks\n\n## Speed\n\nold\n\n## Other\n\nkeep me\n")
    title, copied = publish_report(out, page)
    assert title == "## Speed" and copied == [page.parent / "img" / "a.png"]
    assert page.read_text() == (
        "# Benchmarks\n\n## Speed\n\ntext ![a](img/a.png) and ![web](https://x.org/b.png)\n\n## Other\n\nkeep me\n"
    )
    (out / "report.md").write_text("no title\n")
    with pytest.raises(ClickException, match="section title"):
        publish_report(out / "report.md", page)
    (out / "report.md").write_text("## Speed\n\n![missing](m.png)\n")
    with pytest.raises(ClickException, match="m.png"):
        publish_report(out, page)
