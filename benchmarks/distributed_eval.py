"""Candidate-evaluation throughput with 1 vs N processes (docs/benchmarks.md, "Distributed evaluation").

Each configuration is a real ``torchrun`` job (``python -m torch.distributed.run``): every process
builds the task and the same supernet, and :class:`oneshot.study.Study` with a :class:`~oneshot.study.ShardedExecutor`
splits the candidates across the processes exactly as ``oneshot search`` does under
``torchrun`` (each process evaluates a contiguous slice, the results are all-gathered). The
timed region is the whole batch, from a barrier to the gathered results, after one untimed
warm-up candidate per process. The job also checks that the fitness values equal those of the
one-process run.

On CPU every process gets ``--threads`` intra-op threads (default 1), so the comparison is
"1 core vs N cores". With CUDA (``--device cuda``) each process takes its own GPU
(``cuda:LOCAL_RANK``) and the default is ``1`` and all GPUs of the machine. Examples::

    python benchmarks/distributed_eval.py                       # toy task, CPU, 1 and 2 processes
    python benchmarks/distributed_eval.py --task panoptic --preset tiny --candidates 12
    python benchmarks/distributed_eval.py --task panoptic --preset small --device cuda   # 1 and all GPUs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# A toy config whose evaluation is not trivially short: wider net, bigger images, more data.
TOY_DEFAULTS = ["data.num_val=1024", "data.image_size=16", "model.width=32", "model.num_layers=4", "eval.bn_batches=8"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- one job (a worker)
def worker(args: argparse.Namespace) -> None:
    """One process of a ``torchrun`` job: evaluate ``args.candidates`` candidates, split by rank."""
    import numpy as np
    import torch

    from oneshot.config import load_config
    from oneshot.distributed import (
        all_gather_object,
        barrier,
        get_rank,
        get_world_size,
        init_distributed,
        is_main,
        local_device,
    )
    from oneshot.space import SearchSpace
    from oneshot.study import ShardedExecutor, Study, sharded_map
    from oneshot.tasks import get_task
    from oneshot.train import load_checkpoint

    init_distributed()
    task_cls = get_task(args.task)
    preset = task_cls.presets()[args.preset or task_cls.default_preset()]
    config = load_config(task_cls.config_class, preset=preset, overrides=args.set)
    device = local_device(args.device)
    task = task_cls(config, device=device, progress=False)
    if is_main():
        task.prepare_data()
    barrier()
    if not is_main():
        task.prepare_data()
    torch.manual_seed(config.seed)
    model = task.build_supernet()
    if args.supernet:
        model.load_state_dict(load_checkpoint(args.supernet, map_location=device)["model"])
    space = SearchSpace.from_module(model)
    rng = np.random.default_rng(0)
    candidates = [space.sample(rng) for _ in range(args.candidates)]

    def fitness(arch: Any) -> dict[str, float]:
        return task.evaluate(model, [arch], split="search")[0]

    # warm-up: one candidate per process (kernels, data and BN-batch caches), untimed
    sharded_map(lambda archs: [fitness(a) for a in archs], [space.sample(np.random.default_rng(99 + i)) for i in range(get_world_size())])
    barrier()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    values = [e.fitness for e in Study(fitness, executor=ShardedExecutor()).evaluate(candidates)]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = max(all_gather_object(time.perf_counter() - start))
    cpu_seconds = sum(all_gather_object(time.process_time() - cpu_start))
    if is_main():
        Path(args.result).write_text(json.dumps({
            "processes": get_world_size(),
            "candidates": len(candidates),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "fitness": values,
            "device": str(device if device.type == "cpu" else torch.cuda.get_device_name(device)),
        }))
    if get_rank() == 0:
        print(f"{get_world_size()} process(es): {len(candidates)} candidates in {seconds:.2f} s", flush=True)


# ----------------------------------------------------------------------------- the driver
def run_job(nproc: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    result = workdir / f"result-{nproc}.json"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        __file__, "--worker", "--result", str(result), "--run-dir", str(workdir / "run"),
        "--task", args.task, "--candidates", str(args.candidates), "--device", args.device,
    ]
    if args.preset:
        cmd += ["--preset", args.preset]
    if args.supernet:
        cmd += ["--supernet", args.supernet]
    for s in args.set:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    subprocess.run(cmd, check=True, env=env)
    return json.loads(result.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="toy")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--candidates", type=int, default=48, help="candidates per job (a multiple of every process count is fairest)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (one GPU per process)")
    parser.add_argument("--nproc", type=int, nargs="+", default=None, help="process counts [CPU: 1 2; CUDA: 1 and all GPUs]")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per process (OMP_NUM_THREADS)")
    parser.add_argument("--supernet", default=None, help="trained supernet.pt to evaluate (default: freshly initialised)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.set is None:
        args.set = list(TOY_DEFAULTS) if args.task == "toy" else []
    if args.worker:
        worker(args)
        return

    import torch

    from oneshot.tasks import get_task

    preset = args.preset or get_task(args.task).default_preset()
    if args.nproc is None:
        gpus = torch.cuda.device_count() if args.device.startswith("cuda") else 0
        args.nproc = sorted({1, gpus}) if gpus else [1, 2]
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [run_job(n, args, Path(tmp)) for n in args.nproc]
    base = jobs[0]
    base_rate = base["candidates"] / base["seconds"] * 60
    print()
    print(f"task {args.task} (preset {preset}, {' '.join(args.set) or 'no overrides'}), "
          f"{args.candidates} candidates, {jobs[0]['device']}, {args.threads} thread(s) per process; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print()
    print("| processes | seconds | candidates / minute | speed-up | scaling efficiency | CPU s / candidate (all processes) | same fitness as 1 process |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for job in jobs:
        rate = job["candidates"] / job["seconds"] * 60
        speedup = rate / base_rate
        efficiency = speedup / (job["processes"] / base["processes"])
        same = "yes" if job["fitness"] == base["fitness"] else "NO"
        cpu = job["cpu_seconds"] / job["candidates"]
        print(f"| {job['processes']} | {job['seconds']:.2f} | {rate:.1f} | {speedup:.2f}x | {100 * efficiency:.0f} % | {cpu:.3f} | {same} |")


if __name__ == "__main__":
    main()
