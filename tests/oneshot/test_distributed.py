"""Multi-process training and search (``torchrun --nproc_per_node 2``, gloo on CPU) against one process.

The two-process runs start this file as a ``torchrun`` worker (see ``_worker`` at the bottom); the
single-process references are computed here. Helpers are also checked in a plain process, where
they must behave as if there were one rank.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from oneshot import SearchSpace, UniformSampler
from oneshot.data import ResumableBatches
from oneshot.distributed import (
    all_gather_object,
    all_reduce_gradients,
    broadcast_object,
    get_rank,
    get_world_size,
    init_distributed,
    is_main,
    shard_bounds,
    sync_batchnorm,
)
from oneshot.pipeline import open_run
from oneshot.search import EvaluationStore, EvolutionSearcher, HistoryEntry, PathPrioritySearcher
from oneshot.study import ShardedExecutor, StoreReplica, Study, sharded_map
from oneshot.testing import ToySupernet
from oneshot.train import SupernetTrainer, component_param_groups

WORLD = 2
PER_RANK_BATCH = 4
STEPS = 3
SEARCH_SPACE = {"backbone": [4] * 5, "head": [3] * 3}  # fair window lcm(4, 3) = 12


# ----------------------------------------------------------------------------- shared set-up
@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Like the workers (OMP_NUM_THREADS=1): faster on shared cores, and the same kernels."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + (x[:, 0].mean(dim=(1, 2)) > 0.2).long()
    return TensorDataset(x, y)


def _mean_loss(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def _ghost_loss(model: nn.Module, batch) -> torch.Tensor:
    """One process emulating WORLD processes: each rank's part of the batch normalised on its own
    (per-process BatchNorm), the losses averaged (the gradient all-reduce averages)."""
    x, y = batch
    parts = [_mean_loss(model, (xs, ys)) for xs, ys in zip(x.chunk(WORLD), y.chunk(WORLD), strict=True)]
    return sum(parts) / WORLD


def _noisy_loss(model: nn.Module, batch) -> torch.Tensor:
    """Consumes the global RNG, so a resume that does not restore each rank's own RNG is caught."""
    x, y = batch
    return _mean_loss(model, (x + 0.1 * torch.randn_like(x), y))


def _trainer(*, batch_size: int, shard: tuple[int, int], loss_fn, run_dir=None, init_seed: int = 0) -> SupernetTrainer:
    torch.manual_seed(init_seed)
    model = ToySupernet()
    space = SearchSpace.from_module(model)
    groups = component_param_groups(model, lr=0.2, weight_decay=1e-2)
    optimizer = torch.optim.SGD(groups, lr=0.2, momentum=0.9)
    return SupernetTrainer(
        model,
        # windows of 3 paths leave some candidates unused: their grad must stay None everywhere
        sampler=UniformSampler(space, seed=0, window_size=3),
        batches=ResumableBatches(_dataset(), batch_size=batch_size, seed=0, shard=shard),
        loss_fn=loss_fn,
        optimizer=optimizer,
        run_dir=run_dir,
        checkpoint_every=1,
        grad_clip=1.0,
        progress=False,
    )


def _search_fitness(arch) -> dict[str, float]:
    """A deterministic, non-additive fitness of a categorical architecture."""
    w = np.random.default_rng(7).normal(size=(len(arch), 4))
    value = sum(w[i, c] for i, c in enumerate(arch.choices)) + 0.3 * np.sin(sum(arch.choices))
    return {"fitness": float(value), "choices": float(sum(arch.choices))}


def _searchers(space: SearchSpace):
    return {
        "path-priority": PathPrioritySearcher(space, cycles=3, seed=0),
        "evolution": EvolutionSearcher.with_budget(space, 40, seed=0),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str], *, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD),
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=240)
    if check and proc.returncode != 0:
        raise AssertionError(f"torchrun failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


# ----------------------------------------------------------------------------- one process
def test_helpers_are_single_rank_without_a_process_group():
    assert (get_rank(), get_world_size(), is_main()) == (0, 1, True)
    assert broadcast_object({"a": 1}) == {"a": 1}
    assert all_gather_object(3) == [3]
    assert sharded_map(lambda xs: [x * 2 for x in xs], [1, 2, 3]) == [2, 4, 6]
    p = nn.Parameter(torch.ones(2))
    p.grad = torch.full((2,), 3.0)
    assert all_reduce_gradients([p], scalars=[1.5]) == [1.5]
    assert torch.equal(p.grad, torch.full((2,), 3.0))


def test_init_distributed_reads_the_torchrun_environment(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert init_distributed() is False
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(Exception, match="missing MASTER_ADDR, MASTER_PORT"):
        init_distributed()


def test_shard_bounds_partition_in_order():
    for n in range(0, 30):
        for world in range(1, 6):
            bounds = [shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
            sizes = [b - a for a, b in bounds]
            assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        shard_bounds(4, 2, 2)


def test_sharded_study_in_one_process_is_the_fitness():
    space = SearchSpace.categorical(SEARCH_SPACE)
    archs = [space.sample(np.random.default_rng(i)) for i in range(5)]
    entries = Study(_search_fitness, executor=ShardedExecutor()).evaluate(archs)
    assert [{"fitness": e.fitness, **e.metrics} for e in entries] == [_search_fitness(a) for a in archs]


def test_trainer_refuses_distributed_without_a_process_group():
    with pytest.raises(ValueError, match="initialised process group"):
        SupernetTrainer(ToySupernet(), sampler=None, batches=iter([]), loss_fn=_mean_loss,
                        optimizer=torch.optim.SGD(ToySupernet().parameters(), lr=0.1), distributed=True)


def test_sync_batchnorm_swaps_modules_but_shares_tensors(toy_supernet):
    model = toy_supernet
    before = {k: v for k, v in model.state_dict().items()}
    params = {id(p) for p in model.parameters()}
    x = torch.randn(4, 3, 8, 8)
    with sync_batchnorm(model):
        bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert bns and all(isinstance(m, nn.SyncBatchNorm) for m in bns)
        assert {id(p) for p in model.parameters()} == params
        model.train()
        model.head.set_active(0)
        for layer in model.body:
            layer.set_active(0)
        model(x)  # no process group: plain batch norm, updating the shared running statistics
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert not torch.equal(after["stem.1.running_mean"], torch.zeros_like(after["stem.1.running_mean"]))
    assert int(after["stem.1.num_batches_tracked"]) == 1


def test_store_replica_reads_once_and_never_writes(tmp_path):
    space = SearchSpace.categorical(SEARCH_SPACE)
    path = tmp_path / "evals.jsonl"
    with pytest.raises(Exception, match="rank 0 must create it first"):
        StoreReplica(path, space=space)
    store = EvaluationStore(path, space=space)
    a, b = space.sample(np.random.default_rng(0)), space.sample(np.random.default_rng(1))
    store.add(HistoryEntry(a, 1.0))
    replica = StoreReplica(path, space=space)
    size = path.stat().st_size
    replica.add(HistoryEntry(b, 2.0))
    assert path.stat().st_size == size
    assert replica.get(a).fitness == 1.0 and replica.get(b).fitness == 2.0 and len(replica) == 2
    store.add(HistoryEntry(space.sample(np.random.default_rng(2)), 3.0))
    assert len(replica) == 2  # another process's later appends are not mixed in


# ----------------------------------------------------------------------------- two processes
@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    _torchrun([__file__, str(out)])
    return out, [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]


def test_every_rank_trains_the_same_architectures(two_rank_run):
    _, ranks = two_rank_run
    assert ranks[0]["all_ranks_archs"][0] == ranks[0]["all_ranks_archs"][1]  # all-gathered on rank 0
    assert ranks[0]["archs"] == ranks[1]["archs"]
    assert len(ranks[0]["archs"]) == STEPS * 3


def test_two_ranks_equal_one_process_over_the_union_of_the_shards(two_rank_run):
    out, ranks = two_rank_run
    # One process, batch 2b: each step's batch is exactly rank 0's followed by rank 1's
    # (ResumableBatches shards interleave batches), and the loss averages the ranks' halves.
    ref = _trainer(batch_size=WORLD * PER_RANK_BATCH, shard=(0, 1), loss_fn=_ghost_loss)
    archs = []
    ref.on_step = lambda step, loss, arch: archs.append(arch.key)
    result = ref.fit(STEPS)
    assert archs == ranks[0]["archs"]
    # some candidate is unused in some window: a zero gradient there would move it (weight decay)
    assert any(len({a.split("-")[i] for a in archs[s * 3 : s * 3 + 3]}) < 3 for s in range(STEPS) for i in range(3))
    assert ranks[0]["losses"] == pytest.approx(result.losses, rel=1e-5)
    ddp = torch.load(out / "weights.pt", weights_only=True)
    mine = ref.model.state_dict()
    for name, _ in ref.model.named_parameters():
        torch.testing.assert_close(ddp[name], mine[name], rtol=1e-5, atol=1e-6, msg=name)
    # and the weights really moved (the test would notice a no-op)
    torch.manual_seed(0)
    init = ToySupernet().state_dict()
    assert not torch.allclose(ddp["stem.0.weight"], init["stem.0.weight"])


def test_gradients_are_reduced_once_per_window_and_ranks_stay_identical(two_rank_run):
    _, ranks = two_rank_run
    assert [r["all_reduce_calls"] for r in ranks] == [STEPS, STEPS]
    assert ranks[0]["weights_digest"] == ranks[1]["weights_digest"]
    assert ranks[0]["started_from_rank0_weights"] and ranks[1]["started_from_rank0_weights"]


def test_checkpoints_are_written_by_rank_0_and_resume_exactly(two_rank_run):
    _, ranks = two_rank_run
    assert ranks[0]["checkpoints_written"] > 0
    assert ranks[1]["checkpoints_written"] == 0
    for r in ranks:  # killed after STEPS and resumed == uninterrupted, with each rank's RNG
        assert r["resumed_from"] == STEPS
        assert r["resume_identical"]


@pytest.mark.parametrize("name", ["path-priority", "evolution"])
def test_sharded_search_equals_one_process(two_rank_run, name):
    _, ranks = two_rank_run
    space = SearchSpace.categorical(SEARCH_SPACE)
    ref = _searchers(space)[name].run(_search_fitness)
    for r in ranks:
        got = r["search"][name]
        assert got["result"]["best_key"] == ref.best.key
        assert [h["fitness"] for h in got["result"]["history"]] == ref.fitnesses
        assert got["result"]["score_table"] == ref.score_table
    # each candidate was evaluated once, by one rank, and the ranks shared the work
    evaluated = [r["search"][name]["evaluated_here"] for r in ranks]
    assert sorted(sum(evaluated, [])) == sorted({h.arch.key for h in ref.history})
    assert all(len(e) >= ref.num_evaluated // (2 * WORLD) for e in evaluated)
    assert ranks[0]["search"][name]["store_keys"] == sorted({h.arch.key for h in ref.history})
    assert all(r["search"][name]["rerun_evaluated"] == [] for r in ranks)


def test_torchrun_cli_search_equals_one_process(two_rank_run, tmp_path):
    # the workers ran `oneshot search --task toy --preset tiny --out OUT/cli` (oneshot.cli in-process)
    out, _ = two_rank_run
    two = out / "cli"
    writers = set()
    keys = []
    for line in (two / "evaluations.jsonl").read_text().splitlines()[1:]:
        rec = json.loads(line)
        writers.add(rec["writer"])
        keys.append(rec["key"])
    assert len(keys) == len(set(keys))  # every evaluation stored once
    assert len(writers) == WORLD  # each rank stored what it evaluated
    assert not list(two.glob(".*tmp*"))  # no half-written files from concurrent writers
    # one process searching the same trained supernet finds the same, with the same numbers
    one = tmp_path / "one"
    one.mkdir()
    for name in ("config.yaml", "supernet.pt"):
        (one / name).write_bytes((two / name).read_bytes())
    pipe = open_run("toy", run_dir=one, progress=False)
    model = pipe.train_supernet()
    result = pipe.search(model)
    pipe.report(model, result)
    report = json.loads((one / "report.json").read_text())
    res = json.loads((two / "search_result.json").read_text())
    assert res["best_key"] == result.best.key
    assert res["score_table"] == result.score_table
    assert [h["fitness"] for h in res["history"]] == result.fitnesses
    rep = json.loads((two / "report.json").read_text())
    for r in (rep, report):
        r.pop("search_cost")
    assert report == rep


def _stored(run: Path) -> dict[str, float]:
    return {
        rec["key"]: rec["fitness"]
        for rec in map(json.loads, (run / "evaluations.jsonl").read_text().splitlines()[1:])
    }


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["train:7", "search:3"])
def test_killed_torchrun_job_resumes_to_identical_results(two_rank_run, tmp_path, kill_at):
    reference = two_rank_run[0] / "cli"  # the same command, uninterrupted, 2 ranks
    out = tmp_path / "run"
    args = ["-m", "oneshot.cli", "search", "--task", "toy", "--preset", "tiny", "--out", str(out), "--quiet"]
    killed = _torchrun(args, env={"ONESHOT_KILL_AFTER": kill_at}, check=False)
    assert killed.returncode != 0
    if kill_at.startswith("train"):
        assert not (out / "supernet.pt").exists() and (out / "checkpoint.pt").exists()
    else:
        assert len(_stored(out)) == 6 and not (out / "architecture.json").exists()  # 3 per rank
    _torchrun(args)
    ref_w = torch.load(reference / "supernet.pt", weights_only=False)["model"]
    new_w = torch.load(out / "supernet.pt", weights_only=False)["model"]
    assert all(torch.equal(ref_w[k], new_w[k]) for k in ref_w)
    assert _stored(out) == _stored(reference)
    assert (out / "architecture.json").read_text() == (reference / "architecture.json").read_text()
    log = (out / "log.txt").read_text()
    assert ("resumed from step 5" in log) if kill_at.startswith("train") else ("6 already stored" in log)


# ----------------------------------------------------------------------------- the torchrun worker
def _digest(model: nn.Module) -> str:
    return repr([round(float(t.double().sum()), 12) for t in model.state_dict().values()])


def _worker(out: Path) -> None:
    """Run by every rank of ``torchrun --nproc_per_node 2 test_distributed.py OUT``."""
    import torch.distributed as dist

    import oneshot.train.checkpoint

    assert init_distributed()
    rank, world = get_rank(), get_world_size()
    report: dict = {}

    # Training: every rank starts from different weights (rank 0's are broadcast) and its own shard.
    calls = [0]
    real_all_reduce = dist.all_reduce

    def counting_all_reduce(*args, **kwargs):
        calls[0] += 1
        return real_all_reduce(*args, **kwargs)

    dist.all_reduce = counting_all_reduce
    trainer = _trainer(batch_size=PER_RANK_BATCH, shard=(rank, world), loss_fn=_mean_loss, init_seed=rank)
    torch.manual_seed(0)
    report["started_from_rank0_weights"] = _digest(trainer.model) == _digest(ToySupernet())
    archs: list[str] = []
    trainer.on_step = lambda step, loss, arch: archs.append(arch.key)
    result = trainer.fit(STEPS)
    dist.all_reduce = real_all_reduce
    report.update(archs=archs, losses=result.losses, all_reduce_calls=calls[0], weights_digest=_digest(trainer.model))
    report["all_ranks_archs"] = all_gather_object(archs)
    if rank == 0:
        torch.save(trainer.model.state_dict(), out / "weights.pt")

    # Resume: STEPS steps, "crash", resume to 2 * STEPS == 2 * STEPS uninterrupted. The loss draws
    # from the global RNG, seeded differently per rank.
    written = [0]
    real_save = oneshot.train.checkpoint.save_checkpoint

    def counting_save(*args, **kwargs):
        written[0] += 1
        return real_save(*args, **kwargs)

    oneshot.train.checkpoint.save_checkpoint = counting_save
    runs = {}
    for name, stops in (("interrupted", (STEPS, 2 * STEPS)), ("straight", (2 * STEPS,))):
        run_dir = out / f"ckpt-{name}"
        for stop in stops:
            t = _trainer(batch_size=PER_RANK_BATCH, shard=(rank, world), loss_fn=_noisy_loss, run_dir=run_dir, init_seed=5)
            torch.manual_seed(100 + rank)
            res = t.fit(stop)
        runs[name] = (t.model.state_dict(), res)
    oneshot.train.checkpoint.save_checkpoint = real_save
    report["checkpoints_written"] = written[0]
    report["resumed_from"] = runs["interrupted"][1].resumed_from
    report["resume_identical"] = all(
        torch.equal(runs["interrupted"][0][k], runs["straight"][0][k]) for k in runs["straight"][0]
    ) and runs["interrupted"][1].history == runs["straight"][1].history

    # Search: every rank runs the same searcher; batches are split across ranks.
    space = SearchSpace.categorical(SEARCH_SPACE)
    report["search"] = {}
    for name in ("path-priority", "evolution"):
        evaluated_here: list[str] = []
        store_path = out / f"store-{name}.jsonl"
        def fitness(arch, evaluated_here=evaluated_here):
            evaluated_here.append(arch.key)
            return _search_fitness(arch)

        res = Study(fitness, store=store_path, space=space).optimize(_searchers(space)[name])
        # a rerun on the same store evaluates nothing again
        rerun: list[str] = []

        def never(arch, rerun=rerun):
            rerun.append(arch.key)
            return _search_fitness(arch)

        Study(never, store=store_path, space=space).optimize(_searchers(space)[name])
        keys = [json.loads(line)["key"] for line in store_path.read_text().splitlines()[1:]]
        report["search"][name] = {
            "result": res.to_json(),
            "evaluated_here": evaluated_here,
            "rerun_evaluated": rerun,
            "store_keys": sorted(keys) if len(keys) == len(set(keys)) else ["duplicates"],
        }
    (out / f"rank{rank}.json").write_text(json.dumps(report))

    # The whole pipeline through the command line, as `torchrun -m oneshot.cli search ...` runs it.
    from oneshot.cli import cli

    cli.main(args=["search", "--task", "toy", "--preset", "tiny", "--out", str(out / "cli"), "--quiet"],
             prog_name="oneshot", standalone_mode=False)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
