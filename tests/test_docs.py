"""The code shown in README.md and docs/ runs as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("doc", ["README.md", "docs/index.md"])
def test_library_example_runs(doc):
    blocks = _python_blocks(ROOT / doc)
    assert blocks, f"{doc} has no python example"
    exec(compile(blocks[0], doc, "exec"), {})


def test_readme_shows_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()
