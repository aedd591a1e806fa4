"""docs/cli.md is generated from the click commands (scripts/gen_cli_docs.py) and must be current."""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import click

ROOT = Path(__file__).resolve().parents[1]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_cli_docs", module)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date():
    generated = _generator().render()
    current = (ROOT / "docs" / "cli.md").read_text()
    if current != generated:
        diff = "\n".join(list(difflib.unified_diff(current.splitlines(), generated.splitlines(),
                                                   "docs/cli.md", "generated", lineterm=""))[:40])
        raise AssertionError(f"docs/cli.md is stale; run `python scripts/gen_cli_docs.py`\n{diff}")


def test_cli_reference_documents_every_command_and_option():
    from oneshot.cli import cli

    text = _generator().render()

    def walk(command: click.Command, ctx: click.Context) -> None:
        assert f"## `{ctx.command_path}`" in text, f"{ctx.command_path} is missing from the reference"
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden and param is not command.get_help_option(ctx):
                for opt in param.opts:
                    assert f"`{opt}" in text or f", {opt}" in text, f"{ctx.command_path} {opt} is undocumented"
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), click.Context(command.get_command(ctx, name), info_name=name, parent=ctx))

    walk(cli, click.Context(cli, info_name="oneshot", **cli.context_settings))


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    generator = _generator()
    stale = tmp_path / "cli.md"
    stale.write_text(generator.render().replace("List the registered tasks.", "Lists nothing."))
    assert generator.main(["--output", str(stale), "--check"]) == 1
    assert "is stale" in capsys.readouterr().err
    assert generator.main(["--output", str(stale)]) == 0
    assert generator.main(["--output", str(stale), "--check"]) == 0
