"""The ``oneshot`` command line.

Core commands live here; each plug-in adds its own group of commands through the
``oneshot.commands`` entry-point group (``oneshot panoptic ...``), so the core never imports a
plug-in directly and two plug-ins cannot shadow each other's commands.

(A little over 400 lines: one thin click command per pipeline stage, each only parsing options
and calling the pipeline; splitting them would scatter the command reference.)
"""

from __future__ import annotations

import json
import logging
import sys
from importlib.metadata import entry_points
from typing import Any

import click

from oneshot.errors import OneshotError
from oneshot.interrupts import install as install_interrupt_handler

__all__ = ["cli", "main"]


class _OneshotGroup(click.Group):
    """A click group that loads plug-in commands lazily and reports user errors on one line."""

    def _plugin_commands(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for ep in entry_points(group="oneshot.commands"):
            if ep.name in found and found[ep.name].value != ep.value:
                found[ep.name] = _Clash(ep.name, (found[ep.name].value, ep.value))
            elif ep.name not in found:
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
            return _moved_command(cmd_name) if cmd_name in MOVED_COMMANDS else None
        if isinstance(ep, _Clash):
            return _broken_command(cmd_name, " and ".join(ep.targets), ValueError("two plug-ins register this command"))
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
            _log_to_run(logging.ERROR, str(exc))
            raise click.ClickException(str(exc)) from None
        except FileNotFoundError as exc:
            _log_to_run(logging.ERROR, f"file not found: {exc.filename or exc}")
            raise click.ClickException(f"file not found: {exc.filename or exc}") from None
        except PermissionError as exc:
            _log_to_run(logging.ERROR, f"permission denied: {exc.filename or exc}")
            raise click.ClickException(f"permission denied: {exc.filename or exc}") from None
        except KeyboardInterrupt:
            # click would turn it into "Aborted!" and exit 1; scripts must tell it from an error
            _log_to_run(logging.WARNING, INTERRUPTED)
            raise _Interrupted() from None
        except Exception:  # a bug: the traceback goes to the terminal and to the run's log.txt
            _log_to_run(logging.ERROR, "failed with an unexpected error", exc_info=True)
            raise


#: What an interrupted command says (exit status 130, as for a shell's SIGINT).
INTERRUPTED = "interrupted; run the same command again to resume"


class _Interrupted(click.ClickException):
    exit_code = 130

    def __init__(self) -> None:
        super().__init__(INTERRUPTED)

    def show(self, file: Any = None) -> None:
        click.echo(INTERRUPTED, err=True)


def _log_to_run(level: int, message: str, *, exc_info: bool = False) -> None:
    """Write a line to the open run's ``log.txt`` only (the terminal gets its own one line)."""
    logger = logging.getLogger("oneshot")
    handlers = [h for h in logger.handlers if getattr(h, "_oneshot_run_log", False)]
    if not handlers:
        return
    record = logger.makeRecord(logger.name, level, __file__, 0, message, (), sys.exc_info() if exc_info else None)
    for handler in handlers:
        handler.handle(record)


class _Clash:
    """Two installed plug-ins register the same command name: neither silently wins."""

    def __init__(self, name: str, targets: tuple[str, str]) -> None:
        self.name, self.targets, self.value = name, targets, " and ".join(targets)


#: Spellings of earlier versions, and what replaced them (each fails with one line naming it).
MOVED_COMMANDS = {
    "evaluate": "oneshot panoptic evaluate",
    "data": "oneshot panoptic data",
    "benchmark": "python -m benchmarks.<name> from a source checkout (see docs/benchmarks.md)",
}


def _moved_command(name: str) -> click.Command:
    message = f"`oneshot {name}` has moved: use `{MOVED_COMMANDS[name]}`"

    @click.command(name=name, hidden=True, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def _cmd(args: tuple[str, ...]) -> None:
        raise click.ClickException(message)

    return _cmd


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


def _run_options(func: Any) -> Any:
    """Options shared by every command that works on a run directory."""
    options = [
        click.option(
            "--task", "task", default=None, envvar="ONESHOT_TASK", show_envvar=True,
            help="task name or module:Class (see `oneshot tasks`); default: $ONESHOT_TASK, else the run's task, else the only installed task",
        ),
        click.option("--preset", default=None, help="named preset of the task (default: the task's first)"),
        click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="YAML config file"),
        click.option("--out", "out", type=click.Path(file_okay=False), default=None, help="run directory [default: runs/TASK-PRESET]"),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a config field, e.g. --set train.iterations=200"),
        click.option("--device", default=None, help="cpu, cuda or cuda:N (default: the config's)"),
        click.option("--quiet", is_flag=True, help="no progress bars or messages (errors still go to stderr)"),
    ]
    if getattr(func, "_validates_data", False):
        options.append(
            click.option("--no-validate", "no_validate", is_flag=True, help="skip the task's full check of the data files before working (e.g. data.validate_files)")
        )
    for option in reversed(options):
        func = option(func)
    return func


def _resolve_task(task: str | None, out: str | None = None) -> str:
    """The task to run: the one given, else the task of an existing run directory ``out``, else
    the only installed task besides the core's ``toy`` (several: a one-line error listing them)."""
    if task:
        return task
    from oneshot.run import RunDir
    from oneshot.tasks import available_tasks

    if out is not None:
        saved, _ = RunDir(out).saved_config()
        if saved:
            return saved

    names = [n for n in available_tasks() if n != "toy"]  # the toy task ships with the core for tests
    if len(names) == 1:
        return names[0]
    raise click.UsageError(f"--task is required; installed tasks: {', '.join(available_tasks()) or 'none'}")


def _open(
    task: str | None, preset: str | None, config_path: str | None, out: str | None, overrides: tuple[str, ...],
    device: str | None, quiet: bool, *, read_only: bool = False, validate: bool = True,
) -> Any:
    from oneshot.pipeline import open_run

    if not quiet:
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter("[oneshot] %(message)s"))
        logger = logging.getLogger("oneshot")
        if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in logger.handlers):
            logger.addHandler(console)
    pipe = open_run(
        _resolve_task(task, out), run_dir=out, preset=preset, config_path=config_path, overrides=overrides,
        device=device, progress=not quiet, read_only=read_only,
    )
    pipe.task.validate_data = validate
    return pipe


def _validates_data(func: Any) -> Any:
    """Mark a command whose run options include ``--no-validate``."""
    func._validates_data = True
    return func


def _echo(quiet: bool, text: str) -> None:
    """Print a result line (once: on rank 0 of a distributed job)."""
    from oneshot.distributed import is_main

    if not quiet and is_main():
        click.echo(text)


@cli.command("tasks")
def tasks_command() -> None:
    """List the registered tasks."""
    from oneshot.tasks import available_tasks, get_task

    for name in available_tasks():
        try:
            cls = get_task(name)
        except OneshotError as exc:
            click.echo(f"{name}\t(unavailable: {exc})")
            continue
        click.echo(f"{name}\tpresets: {', '.join(cls.presets())}\t{cls.description}")


@cli.command("search")
@_run_options
@_validates_data
@click.option("--searcher", default=None, help="path-priority, evolution, random, ... (default: the config's)")
@click.option("--retrain", is_flag=True, help="also retrain the found architecture (and retrain.random_baselines random ones) from scratch and evaluate on val")
def search_command(task: str | None, preset: str | None, config_path: str | None, out: str | None, overrides: tuple[str, ...], device: str | None, quiet: bool, no_validate: bool, searcher: str | None, retrain: bool) -> None:
    """Run the whole job: data, supernet training, search, report (and --retrain).

    Re-running the same command resumes: finished stages are reused, training continues from its
    last checkpoint and stored evaluations are never repeated.
    """
    if searcher is not None:
        overrides = (*overrides, f"search.searcher={searcher}")
    pipe = _open(task, preset, config_path, out, overrides, device, quiet, validate=not no_validate)
    _echo(quiet, f"run directory: {pipe.run_dir}")
    pipe.check(search=True)  # the searcher and its options, the store, the data: before training
    model = pipe.train_supernet()
    result = pipe.search(model)
    report = pipe.report(model, result)
    found = report.found.metrics
    _echo(quiet, f"found architecture: {json.dumps(result.best.to_json())}")
    _echo(quiet, "metrics on the search split: " + ", ".join(f"{k}={v:.2f}" for k, v in found.items() if isinstance(v, float)))
    if report.random_median_fitness is not None:
        _echo(quiet, f"median fitness of {len(report.random)} random architectures: {report.random_median_fitness:.2f}")
    _echo(quiet, f"report: {pipe.path('report_md')}")
    if retrain:  # the found architecture, and retrain.random_baselines random ones to compare with
        compared = pipe.retrain_compared(report)
        metrics = compared.found.metrics
        _echo(quiet, "retrained, on val: " + ", ".join(f"{k}={v:.2f}" for k, v in metrics.items() if isinstance(v, float)))
        if compared.random:
            _echo(quiet, f"median fitness of {len(compared.random)} retrained random architectures: "
                  f"{compared.random_median_fitness:.2f} (found ranks {compared.found_rank} of {len(compared.random) + 1})")


@cli.command("train-supernet")
@_run_options
@_validates_data
def train_supernet_command(task: str | None, preset: str | None, config_path: str | None, out: str | None, overrides: tuple[str, ...], device: str | None, quiet: bool, no_validate: bool) -> None:
    """Only train the supernet (or resume its training) in the run directory."""
    pipe = _open(task, preset, config_path, out, overrides, device, quiet, validate=not no_validate)
    pipe.train_supernet()
    _echo(quiet, f"supernet: {pipe.path('supernet')}")


@cli.command("retrain")
@_run_options
@_validates_data
@click.option("--arch", "arch_path", type=click.Path(dir_okay=False), default=None, help="architecture JSON [default: the run's architecture.json]")
def retrain_command(task: str | None, preset: str | None, config_path: str | None, out: str | None, overrides: tuple[str, ...], device: str | None, quiet: bool, no_validate: bool, arch_path: str | None) -> None:
    """Train a frozen architecture from scratch and evaluate it on val."""
    pipe = _open(task, preset, config_path, out, overrides, device, quiet, validate=not no_validate)
    click.echo(json.dumps(pipe.retrain(arch_path=arch_path).to_json(), indent=1))


@cli.command("evaluate-arch")
@_run_options
@click.option("--arch", "arch_path", type=click.Path(dir_okay=False), default=None, help="architecture JSON [default: the run's architecture.json]")
@click.option("--split", type=click.Choice(["search", "val"]), default="search", show_default=True)
def evaluate_arch_command(task: str | None, preset: str | None, config_path: str | None, out: str | None, overrides: tuple[str, ...], device: str | None, quiet: bool, arch_path: str | None, split: str) -> None:
    """Evaluate an architecture on the trained supernet (inherited weights, BN recalibrated).

    Reads the run directory without changing its config (it may be read-only)."""
    pipe = _open(task, preset, config_path, out, overrides, device, quiet, read_only=True)
    model = pipe.load_supernet()
    from oneshot.space import SearchSpace

    arch = pipe.found_architecture(SearchSpace.from_module(model), arch_path)
    metrics = pipe.evaluate_archs(model, [arch], split=split)[0]
    click.echo(json.dumps(metrics, indent=1))


@cli.command("export")
@_run_options
@click.option("--arch", "arch_path", type=click.Path(dir_okay=False), default=None, help="architecture JSON [default: the run's architecture.json]")
@click.option("--format", "fmt", type=click.Choice(["state_dict", "torchscript", "onnx"]), default="state_dict", show_default=True, help="see docs/ship.md")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="file to write [default: RUN/exported.pt, exported.ts.pt or exported.onnx]")
def export_command(task: str | None, preset: str | None, config_path: str | None, out: str | None, overrides: tuple[str, ...], device: str | None, quiet: bool, arch_path: str | None, fmt: str, output: str | None) -> None:
    """Export the found network: retrained weights when the run has them, else the supernet's.

    state_dict: weights + architecture + what rebuilds the network (oneshot.export.load_model);
    torchscript / onnx: a program that runs without oneshot (the task says which part; an
    unexportable part fails with one line naming it and the formats that work).

    Reads the run directory without changing its config (it may be read-only with --output elsewhere).
    """
    from pathlib import Path

    from oneshot.space import SearchSpace

    pipe = _open(task, preset, config_path, out, overrides, device, quiet, read_only=True)
    arch = pipe.found_architecture(SearchSpace.from_module(pipe.task.build_supernet()), arch_path)
    suffix = {"state_dict": ".pt", "torchscript": ".ts.pt", "onnx": ".onnx"}[fmt]
    info = pipe.export(arch, Path(output) if output else pipe.run_dir / f"exported{suffix}", fmt=fmt)
    click.echo(json.dumps(info, indent=1))


@cli.command("predict")
@_run_options
@click.option("--images", "images", required=True, type=click.Path(file_okay=False), help="folder of images")
@click.option("--output", "output", required=True, type=click.Path(file_okay=False), help="folder for the predictions")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None, help="a state_dict export [default: the run's found network, retrained when present]")
@click.option("--arch", "arch_path", type=click.Path(dir_okay=False), default=None, help="architecture JSON [default: the run's architecture.json]")
@click.option("--on-bad-image", type=click.Choice(["skip", "fail"]), default="skip", show_default=True, help="an unreadable image: skip it (one warning line) or stop")
def predict_command(task: str | None, preset: str | None, config_path: str | None, out: str | None, overrides: tuple[str, ...], device: str | None, quiet: bool, images: str, output: str, model_path: str | None, arch_path: str | None, on_bad_image: str) -> None:
    """Run the found network on a folder of images and write the task's predictions
    (panoptic: COCO-panoptic PNGs + JSON, and colour overlays).

    Reads the run directory without changing its config (it may be read-only)."""
    from oneshot.ship import found_model, load_for_predict, predict_folder
    from oneshot.space import SearchSpace

    pipe = _open(task, preset, config_path, out, overrides, device, quiet, read_only=True)
    pipe.prepare_data()
    if model_path is not None:
        model, source = load_for_predict(pipe.task, model_path), model_path
    else:
        arch = pipe.found_architecture(SearchSpace.from_module(pipe.task.build_supernet()), arch_path)
        model, source = found_model(pipe, arch)
    summary = predict_folder(pipe.task, model.to(pipe.device), images, output, on_bad_image=on_bad_image,  # type: ignore[arg-type]
                             progress=not quiet, warn=lambda line: click.echo(line, err=True))
    _echo(quiet, f"weights: {source}")
    click.echo(json.dumps(summary, indent=1))


@cli.command("repair-store")
@_run_options
def repair_store_command(task: str | None, preset: str | None, config_path: str | None, out: str | None, overrides: tuple[str, ...], device: str | None, quiet: bool) -> None:
    """Rewrite a damaged header of the run's evaluation store, keeping every readable record.

    The new header records this run's search space and the provenance of its supernet."""
    from oneshot.search.store import EvaluationStore

    pipe = _open(task, preset, config_path, out, overrides, device, quiet)
    model = pipe.load_supernet()
    from oneshot.space import SearchSpace

    path = pipe.path("store")
    if not path.exists():
        raise click.ClickException(f"no evaluation store at {path}")
    kept = EvaluationStore.repair(path, SearchSpace.from_module(model), provenance=pipe.store_provenance())
    _echo(quiet, f"{path}: header rewritten, {kept} evaluations kept")


@cli.command("latency-table")
@_run_options
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True, help="interleaved timing rounds per candidate")
def latency_table_command(task: str | None, preset: str | None, config_path: str | None, out: str | None, overrides: tuple[str, ...], device: str | None, quiet: bool, rounds: int) -> None:
    """Time every candidate of every choice layer in place on the run's device (RUN/latency_table.json).

    Resumable: an interrupted build continues where it stopped. Once the table exists, latency
    objectives and constraints (search.objectives, search.constraints.max_latency_ms) use its
    prediction instead of running each architecture.
    """
    from oneshot.latency_table import latency_table_for_task

    pipe = _open(task, preset, config_path, out, overrides, device, quiet)
    table = latency_table_for_task(pipe.task, pipe.run_dir / "latency_table.json", rounds=rounds)
    _echo(quiet, f"latency table: {pipe.run_dir / 'latency_table.json'} ({len(table.layers)} layers, fixed part {table.fixed_ms or 0.0:.2f} ms)")


@cli.command("graph")
@_run_options
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="picture to write [default: RUN/components.png]")
def graph_command(task: str | None, preset: str | None, config_path: str | None, out: str | None, overrides: tuple[str, ...], device: str | None, quiet: bool, output: str | None) -> None:
    """Draw how the supernet's components feed each other, traced from one forward pass."""
    from pathlib import Path

    from oneshot.graph import component_graph, layer_graph, plot_component_graph

    pipe = _open(task, preset, config_path, out, overrides, device, quiet)
    model = pipe.task.build_supernet().eval()
    graph = component_graph(layer_graph(model, pipe.task.example_input()))
    target = Path(output) if output else pipe.run_dir / "components.png"
    plot_component_graph(graph, path=str(target), title=f"{pipe.task_cls.name}: components and their connections")
    for a, b, d in graph.edges(data=True):
        if d["inter_modular"]:
            _echo(quiet, f"{a} -> {b}: {d['connections']} layer connections")
    _echo(quiet, f"picture: {target}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    install_interrupt_handler()
    try:
        cli.main(args=argv, prog_name="oneshot", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted; run the same command again to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
