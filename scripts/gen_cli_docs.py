"""Generate docs/cli.md, the command-line reference, from the click commands themselves.

Usage::

    python scripts/gen_cli_docs.py            # rewrite docs/cli.md
    python scripts/gen_cli_docs.py --check    # exit 1 if docs/cli.md is stale (tests/test_cli_docs.py does this)

Every command of ``oneshot`` is documented, the core ones and those that installed packages add
through the ``oneshot.commands`` entry points, groups recursively. Options are rendered with
click's own help records, so the page says exactly what ``--help`` says.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import entry_points
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "docs" / "cli.md"
REGENERATE = "python scripts/gen_cli_docs.py"

HEADER = f"""# Command-line reference

<!-- Generated from the click commands by scripts/gen_cli_docs.py; do not edit by hand.
     Regenerate with `{REGENERATE}`; tests/test_cli_docs.py fails when this page is stale. -->

Every command accepts `-h` / `--help`, which prints the same text as this page. Commands
marked *plug-in* come from the `oneshot.commands` entry points of installed packages; tasks
(`--task NAME`) come from the `oneshot.tasks` entry points (`oneshot tasks` lists them; see
[tutorial.md](tutorial.md#8-wrap-it-as-a-task-for-the-cli) to add one). Errors in what you give
(config, data, architecture file, checkpoint) are reported on one line on stderr, with exit
status 1, and written to the run's `log.txt`; Ctrl-C exits with status 130 and says to run the
same command again to resume. One process at a time works in a run directory (see
[pipeline.md](pipeline.md#nothing-silently-wrong)).
"""


def _walk(command: click.Command, ctx: click.Context) -> Iterator[tuple[click.Command, click.Context]]:
    """``command`` and, for groups, every subcommand (sorted by name), depth first."""
    yield command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            yield from _walk(sub, click.Context(sub, info_name=name, parent=ctx))


def _help_text(command: click.Command) -> str:
    """The command's full help, as ``--help`` shows it (``\\f`` cuts, ``\\b`` markers dropped)."""
    text = inspect.cleandoc(command.help or "").split("\f")[0]
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(path: str) -> str:
    return path.lower().replace(" ", "-")


def render() -> str:
    """The Markdown reference for the ``oneshot`` command line."""
    from oneshot.cli import cli

    plugins = {ep.name: ep.value for ep in entry_points(group="oneshot.commands")}
    root = click.Context(cli, info_name="oneshot", **cli.context_settings)
    commands = list(_walk(cli, root))

    lines = [HEADER, "| command | what it does |", "|---|---|"]
    for command, ctx in commands[1:]:
        path = ctx.command_path
        lines.append(f"| [`{path}`](#{_anchor(path)}) | {_cell(command.get_short_help_str(limit=200))} |")
    lines.append("")

    for command, ctx in commands:
        path = ctx.command_path
        lines.append(f"## `{path}`")
        lines.append("")
        top = path.split(" ")[1] if " " in path else None
        if top in plugins:
            lines.append(f"*plug-in* (`{plugins[top]}`)")
            lines.append("")
        usage = " ".join(command.collect_usage_pieces(ctx))
        lines.append(f"```\n{path} {usage}\n```")
        lines.append("")
        help_text = _help_text(command)
        if help_text:
            lines.append(help_text)
            lines.append("")
        help_option = command.get_help_option(ctx)
        records: list[tuple[str, str]] = []
        for param in command.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) and param is not help_option else None
            if record is not None:
                records.append(record)
        if records:
            lines.append("| option | description |")
            lines.append("|---|---|")
            for opts, description in records:
                lines.append(f"| `{_cell(opts)}` | {_cell(description)} |")
            lines.append("")
        if isinstance(command, click.Group):
            subs = [name for name in command.list_commands(ctx) if command.get_command(ctx, name) is not None]
            lines.append("Commands: " + ", ".join(f"[`{path} {n}`](#{_anchor(f'{path} {n}')})" for n in subs) + ".")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="file to write [docs/cli.md]")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current == text:
            print(f"{args.output} is up to date")
            return 0
        diff = difflib.unified_diff(current.splitlines(), text.splitlines(), str(args.output), "generated", lineterm="")
        print("\n".join(list(diff)[:60]))
        print(f"{args.output} is stale; regenerate it with `{REGENERATE}`", file=sys.stderr)
        return 1
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
