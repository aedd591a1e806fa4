"""Share the retraining of a task benchmark with more processes: ``python -m benchmarks.retrain_worker --out OUT``.

Retraining dominates the cost of ``python -m benchmarks.search_policies --task ...`` on a CPU, and
one from-scratch training keeps about one core busy. The benchmark writes its retraining queue to
``OUT/retrain_queue.json``: the random architectures as soon as the run is open (they depend only
on the space and the run's seed), every candidate once the searches are done (``final``). Each
worker started beside it with the same ``--out``:

1. takes the task and the run's ``config.yaml`` from the queue (a copy starts its own run directory);
2. walks the queue from its end (the benchmark walks it from its start), claiming each retraining
   in ``OUT/claims/`` (:mod:`benchmarks.claims`) so that no two processes train the same one;
3. trains it in its own run directory ``OUT/workers/<name>`` (a run directory admits one process)
   with :meth:`Pipeline.retrain`, then copies the result into the benchmark run's
   ``retrain/<key>/[seed-N/]`` folder, ``metrics.json`` last, with its measured cost beside it
   (``worker_cost.json``, which the benchmark puts into ``costs.json``);
4. waits for the final queue when it has run out of work, and stops when nothing is left.

Start it with ``OMP_NUM_THREADS=1``, the benchmark too, one process per core. Stop it at any time:
its claim lapses when it dies; started again with the same ``--name`` it resumes its interrupted
retraining from the last checkpoint in its run directory (another process that takes the
retraining over starts it from scratch). Workers and benchmark must share the machine (claims
hold process ids).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.claims import claim
from oneshot.files import atomic_write_json, read_json

__all__ = ["QUEUE_FILE", "claim_name", "copy_result", "main", "queue_items", "write_queue"]

QUEUE_FILE = "retrain_queue.json"
WORKER_COST_FILE = "worker_cost.json"


def claim_name(key: str, seed: int) -> str:
    """The claim file name of retraining ``key`` with ``seed``."""
    return f"retrain-{key[:64]}-seed{int(seed)}"


def write_queue(out: Path, *, task: str, config_path: Path, run_dir: Path, items: Sequence[tuple[Any, int]], final: bool) -> None:
    """Write the retraining queue: ``items`` are ``(Architecture, seed)`` in the benchmark's order."""
    atomic_write_json(out / QUEUE_FILE, {
        "task": task,
        "config": str(Path(config_path).resolve()),
        "run_dir": str(Path(run_dir).resolve()),
        "final": final,
        "items": [{"arch": arch.to_json(), "key": arch.key, "seed": int(seed)} for arch, seed in items],
    })


def queue_items(queue: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
    """``(architecture JSON, seed)`` pairs of a queue, in the benchmark's order."""
    return [(item["arch"], int(item["seed"])) for item in queue["items"]]


def copy_result(src: Path, dst: Path, cost: dict[str, float] | None = None) -> None:
    """Copy a finished retraining's files (not its sub-folders) from ``src`` to ``dst``, with
    ``metrics.json`` last so that a reader never sees a result without its files."""
    dst.mkdir(parents=True, exist_ok=True)
    files = [p for p in src.iterdir() if p.is_file() and p.name != "metrics.json"]
    for path in files:
        tmp = dst / f".{path.name}.part"
        shutil.copy2(path, tmp)
        os.replace(tmp, dst / path.name)
    if cost is not None:
        atomic_write_json(dst / WORKER_COST_FILE, cost)
    tmp = dst / ".metrics.json.part"
    shutil.copy2(src / "metrics.json", tmp)
    os.replace(tmp, dst / "metrics.json")


def run_worker(out: Path, *, name: str | None = None, poll_s: float = 20.0, say: Callable[[str], None] = print) -> int:
    """Retrain from ``out``'s queue until it is final and nothing is left; returns how many this
    worker trained."""
    from oneshot.pipeline import open_run
    from oneshot.space import Architecture, SearchSpace

    queue_path = out / QUEUE_FILE
    while not queue_path.exists():
        say(f"[worker] waiting for {queue_path}")
        time.sleep(poll_s)
    queue = read_json(queue_path, what="retraining queue")
    name = name or f"w{os.getpid()}"
    run_dir = out / "workers" / name
    if not (run_dir / "config.yaml").exists():  # the benchmark run's own config, as if resuming it
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(queue["config"], run_dir / "config.yaml")
    pipe = open_run(queue["task"], run_dir=run_dir, progress=False)
    space = SearchSpace.from_module(pipe.task.build_supernet())
    target = Path(queue["run_dir"])
    trained = 0
    while True:
        queue = read_json(queue_path, what="retraining queue")
        did_one = False
        for arch_json, seed in reversed(queue_items(queue)):
            arch = Architecture.from_json(space, arch_json)
            # the benchmark run's folder for this retraining: the same layout as the worker's own
            dst = target / pipe.retrain_dir(arch, seed=seed).relative_to(pipe.run_dir)
            if (dst / "metrics.json").exists() or not claim(out / "claims", claim_name(arch.key, seed)):
                continue
            say(f"[worker {name}] retrain {arch.key} seed {seed}")
            wall, cpu = time.perf_counter(), time.process_time()
            result = pipe.retrain(arch, seed=seed)
            cost = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "worker": name}
            copy_result(pipe.retrain_dir(arch, seed=seed), dst, cost)
            say(f"[worker {name}] done {arch.key} seed {seed}: fitness {float(result.metrics['fitness']):.4f} "
                f"({cost['wall_s']:.0f} s)")
            trained += 1
            did_one = True
            break  # reread the queue: it may have become final meanwhile
        if did_one:
            continue
        if queue["final"]:
            say(f"[worker {name}] nothing left; trained {trained}")
            return trained
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.retrain_worker", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="the --out folder of the running task benchmark")
    ap.add_argument("--name", default=None, help="this worker's run directory OUT/workers/NAME [default: w<pid>]; "
                    "the same name resumes an interrupted retraining")
    ap.add_argument("--poll", type=float, default=20.0, help="seconds between looks at the queue when there is no work")
    args = ap.parse_args(argv)
    from oneshot.errors import OneshotError

    try:
        run_worker(args.out, name=args.name, poll_s=args.poll)
    except OneshotError as exc:
        raise SystemExit(f"error: {exc}") from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
