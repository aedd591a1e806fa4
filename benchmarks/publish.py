"""Copy a benchmark's report into a markdown page of the docs: the one step that edits ``docs/``.

A benchmark writes ``report.md`` into its output folder, starting with its section title
(``## ...``) and linking its figures beside it. ::

    python -m benchmarks.publish runs/benchmarks/search-policies docs/benchmarks.md

replaces that section of ``docs/benchmarks.md`` (or appends it; nothing else in the page
changes) and copies the figures it links into ``img/`` beside the page.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import click

from oneshot.files import atomic_write_text

__all__ = ["publish", "publish_report", "write_markdown_section"]

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)/\s]+\.(?:png|svg|jpg))\)")


def write_markdown_section(path: str | Path, body: str, *, title: str) -> None:
    """Put ``title`` + ``body`` into the markdown file, replacing only that section.

    Creates the file (with a ``# Benchmarks`` heading) when missing; appends the section when the
    file has none; otherwise replaces the text from the title to the next ``## `` heading.
    """
    path = Path(path)
    section = f"{title}\n\n{body.strip()}\n"
    if not path.exists():
        atomic_write_text(path, f"# Benchmarks\n\n{section}")
        return
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == title), None)
    if start is None:
        sep = "" if text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        atomic_write_text(path, text + sep + section)
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    atomic_write_text(path, "".join(lines[:start]) + section + ("\n" + tail if tail else ""))


def publish_report(report: str | Path, page: str | Path, *, images: str = "img") -> tuple[str, list[Path]]:
    """Copy ``report`` (a ``report.md``, or the folder holding it) into the markdown ``page``.

    Returns the section title and the figures copied into ``images/`` beside the page.
    """
    report = Path(report)
    if report.is_dir():
        report = report / "report.md"
    if not report.is_file():
        raise click.ClickException(f"no benchmark report at {report}")
    title, _, body = report.read_text().partition("\n")
    if not title.startswith("## "):
        raise click.ClickException(f"{report} must start with its section title ('## ...'), found {title[:60]!r}")
    page = Path(page)
    copied: list[Path] = []
    for name in dict.fromkeys(m.group(2) for m in _IMAGE.finditer(body)):
        source = report.parent / name
        if not source.is_file():
            raise click.ClickException(f"{report} links the figure {name}, which is not beside it")
        target = page.parent / images / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied.append(target)
    body = _IMAGE.sub(lambda m: f"![{m.group(1)}]({images}/{m.group(2)})", body)
    write_markdown_section(page, body, title=title.rstrip())
    return title.rstrip(), copied


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("report", type=click.Path(exists=True, path_type=Path))
@click.argument("page", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--images", default="img", show_default=True, help="Folder for the figures, relative to the page.")
def publish(report: Path, page: Path, images: str) -> None:
    """Copy the REPORT (a benchmark's output folder or its report.md) into the markdown PAGE,
    replacing only its section, and its figures into IMAGES beside the page."""
    title, copied = publish_report(report, page, images=images)
    click.echo(f"{title[3:]!r} written to {page}" + (f"; {len(copied)} figures in {page.parent / images}" if copied else ""))


if __name__ == "__main__":
    publish(prog_name="python -m benchmarks.publish")
