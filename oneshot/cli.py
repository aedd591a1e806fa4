"""The ``oneshot`` command line.

Core commands live here; plug-ins add commands through the ``oneshot.commands`` entry-point group
(a click command or group per entry), so the core never imports a plug-in directly.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

import click

from oneshot.errors import OneshotError

__all__ = ["cli", "main"]


class _OneshotGroup(click.Group):
    """A click group that loads plug-in commands lazily and reports user errors on one line."""

    def _plugin_commands(self) -> dict[str, Any]:
        found = {}
        for ep in entry_points(group="oneshot.commands"):
            found[ep.name] = ep
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | set(self._plugin_commands())
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        ep = self._plugin_commands().get(cmd_name)
        if ep is None:
            return None
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plug-in must not break the whole CLI
            return _broken_command(cmd_name, ep.value, exc)
        if not isinstance(loaded, click.Command):
            raise click.ClickException(f"plug-in command {cmd_name!r} ({ep.value}) is not a click command")
        return loaded

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OneshotError as exc:
            raise click.ClickException(str(exc)) from None
        except FileNotFoundError as exc:
            raise click.ClickException(f"file not found: {exc.filename or exc}") from None


def _broken_command(name: str, target: str, exc: Exception) -> click.Command:
    message = f"plug-in command {name!r} ({target}) failed to load: {type(exc).__name__}: {exc}"

    @click.command(name=name, help=f"(unavailable: {message})", context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def _cmd(args: tuple[str, ...]) -> None:
        raise click.ClickException(message)

    return _cmd


@click.group(cls=_OneshotGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="oneshot")
def cli() -> None:
    """oneshot: one-shot NAS over several network components at once."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="oneshot", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted; run the same command again to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
