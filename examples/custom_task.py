"""Your own task behind ``oneshot search --task NAME``: the digits task of ``examples/digits_task``.

A task (``oneshot.tasks.Task``) tells the pipeline what is problem-specific: its pydantic config
and presets, the data, the supernet, the training loss and how to evaluate an architecture. The
pipeline does the rest: strictly fair supernet training with exact resume, search through a
resumable evaluation store, report, retraining. ``examples/digits_task/oneshot_digits/task.py``
is a complete task (about 150 lines, config included).

There are two ways to make ``--task digits`` known to oneshot:

1. **Entry point** (what a package does). ``examples/digits_task/pyproject.toml`` declares::

       [project.entry-points."oneshot.tasks"]
       digits = "oneshot_digits.task:DigitsTask"

   After ``pip install -e examples/digits_task`` the shell command
   ``oneshot search --task digits`` works, and ``oneshot tasks`` lists it.
2. **In-process** (scripts, notebooks, tests): ``oneshot.tasks.register_task(DigitsTask)``,
   then call the CLI in-process (``oneshot.cli.main([...])``) or the pipeline
   (``oneshot.pipeline.open_run(...)``).

This script uses the entry point when the package is installed, and registers the task
in-process otherwise. Then it runs, in-process, exactly what you would type in a shell::

    oneshot tasks
    oneshot search --task digits --preset default --out runs/digits-task --retrain
    oneshot search --task digits --preset default --out runs/digits-task --searcher evolution

The second search reuses the trained supernet and every stored evaluation of the first. Run it
again and everything is reused (the run directory resumes). ``--smoke`` uses the task's
``smoke`` preset (seconds).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch

import oneshot.cli
from oneshot.tasks import ENTRY_POINT_GROUP, register_task

PACKAGE_DIR = Path(__file__).resolve().parent / "digits_task"


def make_task_available() -> str:
    """Make the ``digits`` task known to oneshot; returns how (``"entry point"`` or ``"in-process"``)."""
    if "digits" in {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}:
        return "entry point"  # `pip install -e examples/digits_task` was run
    if importlib.util.find_spec("oneshot_digits") is None:
        sys.path.insert(0, str(PACKAGE_DIR))  # not installed: import it from its source folder
    from oneshot_digits import DigitsTask

    register_task(DigitsTask)
    return "in-process"


def oneshot_command(*args: str) -> None:
    """Run ``oneshot ARGS...`` in this process, as the shell command would (a non-zero exit raises)."""
    print(f"\n$ oneshot {' '.join(args)}", flush=True)
    try:
        oneshot.cli.main(list(args))
    except SystemExit as exc:  # click ends every command with SystemExit
        if exc.code not in (0, None):
            raise


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the task's smoke preset (seconds)")
    parser.add_argument("--out", type=Path, default=None, help="run directory [runs/digits-task or runs/digits-task-smoke]")
    parser.add_argument("--quiet", action="store_true", help="pass --quiet to oneshot (no progress bars or messages)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads; tiny convolutions run fastest on one [1]")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the example; returns the run's ``report.json`` after both searches."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The three commands for parsed command-line arguments."""
    preset = "smoke" if args.smoke else "default"
    out = args.out or Path("runs") / ("digits-task-smoke" if args.smoke else "digits-task")
    quiet = ["--quiet"] if args.quiet else []
    print(f"task 'digits' registered through: {make_task_available()}")

    oneshot_command("tasks")
    oneshot_command("search", "--task", "digits", "--preset", preset, "--out", str(out), "--retrain", *quiet)
    # Same run directory: the trained supernet and the stored evaluations are reused. (--preset is
    # repeated because `--searcher` on its own would be applied on top of the *default* preset.)
    oneshot_command("search", "--task", "digits", "--preset", preset, "--out", str(out), "--searcher", "evolution", *quiet)

    report = json.loads((out / "report.json").read_text())
    print(f"\n{out / 'report.md'}:\n")
    print((out / "report.md").read_text())
    return report


if __name__ == "__main__":
    main()
