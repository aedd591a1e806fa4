"""The documentation is navigable: index.md links every page, and the links of the guide pages
(quickstart, tutorial, panoptic, cli, index) point at files and headings that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDE_PAGES = ["index.md", "quickstart.md", "tutorial.md", "panoptic.md", "cli.md"]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_index_links_every_page():
    index = (DOCS / "index.md").read_text()
    for page in sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md"):
        assert f"]({page})" in index, f"docs/index.md does not link {page}"


@pytest.mark.parametrize("page", GUIDE_PAGES)
def test_relative_links_resolve(page):
    text = (DOCS / page).read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", re.sub(r"```.*?```", "", text, flags=re.S))
    assert links, f"{page} links nothing"
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        target, _, anchor = link.partition("#")
        path = (DOCS / target).resolve() if target else DOCS / page
        assert path.exists(), f"docs/{page}: broken link {link}"
        if anchor and path.suffix == ".md":
            assert anchor in _anchors(path.read_text()), f"docs/{page}: no heading for #{anchor} in {path.name}"
