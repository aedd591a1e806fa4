import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from oneshot import CheckpointError, FairSampler, SearchSpace, activate, freeze, recalibrate_bn
from oneshot.data import ResumableBatches
from oneshot.testing import ToySupernet
from oneshot.train import SupernetTrainer, component_param_groups, load_checkpoint, warmup_multistep


def _dataset():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + (x[:, 0].mean(dim=(1, 2)) > 0.2).long()
    return TensorDataset(x, y)


class Flip:
    """A random augmentation using the global torch RNG, as real transforms do."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        x, y = self.ds[i]
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, y


def _loss(model, batch):
    # Consumes the global RNG, as detection losses do (anchor/RoI sampling), so a resume that
    # disturbs the global RNG state (e.g. a DataLoader drawing its base seed) is caught.
    x, y = batch
    x = x + 0.1 * torch.randn_like(x)
    return nn.functional.cross_entropy(model(x), y)


def _trainer(run_dir, *, seed=0):
    torch.manual_seed(seed)
    model = ToySupernet()
    space = SearchSpace.from_module(model)
    groups = component_param_groups(model, lr=0.1, weight_decay=1e-4)
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    sched = warmup_multistep(opt, warmup_steps=2, milestones=(5,))
    batches = ResumableBatches(Flip(_dataset()), batch_size=8, seed=seed)
    return SupernetTrainer(
        model,
        sampler=FairSampler(space, seed=seed),
        batches=batches,
        loss_fn=_loss,
        optimizer=opt,
        scheduler=sched,
        run_dir=run_dir,
        checkpoint_every=1,
        grad_clip=5.0,
        progress=False,
    )


def test_fair_lr_multipliers_match_reference_rule(toy_supernet):
    model = toy_supernet  # body: 3 choices, head: 2 choices, window 6
    groups = {g["component"]: g["lr_multiplier"] for g in component_param_groups(model, lr=1.0)}
    assert groups == {"shared": pytest.approx(1 / 6), "body": pytest.approx(3 / 6), "head": pytest.approx(2 / 6)}
    explicit = component_param_groups(model, lr=0.02, multipliers={"shared": 1 / 12, "body": 1 / 3, "head": 1 / 2})
    assert {g["component"]: g["lr"] for g in explicit}["body"] == pytest.approx(0.02 / 3)
    with pytest.raises(ValueError, match="no learning-rate multiplier for component 'head'"):
        component_param_groups(model, lr=1.0, multipliers={"shared": 1, "body": 1})


def test_lr_multipliers_average_over_the_paths_that_used_a_parameter(toy_supernet):
    def mults(window_size):
        groups = component_param_groups(toy_supernet, lr=1.0, window_size=window_size)
        return {g["component"]: g["lr_multiplier"] for g in groups}

    # A doubled fair window halves every factor; single-path steps (SPOS) use plain SGD.
    assert mults(12) == {"shared": pytest.approx(1 / 12), "body": pytest.approx(3 / 12), "head": pytest.approx(2 / 12)}
    assert mults(1) == {"shared": 1.0, "body": 1.0, "head": 1.0}
    assert mults(2) == {"shared": 0.5, "body": 1.0, "head": 1.0}


def test_training_learns_and_one_step_per_window(tmp_path):
    trainer = _trainer(tmp_path)
    steps_seen = []
    trainer.on_step = lambda step, loss, arch: steps_seen.append(step)
    result = trainer.fit(12)
    assert result.steps == 12 and len(result.losses) == 12
    assert steps_seen == [s for s in range(12) for _ in range(6)]  # 6 paths per optimizer step
    assert sum(result.losses[-3:]) < sum(result.losses[:3])


def test_resume_is_bit_identical(tmp_path):
    reference = _trainer(tmp_path / "ref")
    reference.fit(8)

    interrupted = _trainer(tmp_path / "run")
    interrupted.fit(3)  # "killed" after step 3 (a checkpoint exists for every step)
    del interrupted
    resumed = _trainer(tmp_path / "run", seed=0)
    result = resumed.fit(8)
    assert result.resumed_from == 3
    assert result.history == reference.losses
    # what this call trained: steps 3..7 only, and the time they took
    assert result.losses == reference.losses[3:] and result.steps_this_run == 5 and result.seconds > 0
    done = _trainer(tmp_path / "run", seed=0).fit(8)  # nothing left to train
    assert done.resumed_from == 8 and done.losses == [] and done.history == reference.losses
    for (k, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_toy_supernet_trains_freezes_and_recalibrates(tmp_path):
    trainer = _trainer(None)
    trainer.fit(10)
    model = trainer.model
    space = SearchSpace.from_module(model)
    arch = space.sample(0)
    data = _dataset()
    with activate(model, arch):
        recalibrate_bn(model, (data.tensors[0][i : i + 16] for i in range(0, 64, 16)))
        model.eval()
        expected = model(data.tensors[0][:8])
    frozen = freeze(model, arch).eval()
    torch.testing.assert_close(frozen(data.tensors[0][:8]), expected)


def test_corrupted_checkpoint_is_detected(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.fit(1)
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupted"):
        _trainer(tmp_path).fit(2)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(ckpt)


def test_batches_resume_position():
    ds = Flip(_dataset())
    a = ResumableBatches(ds, batch_size=8, seed=3)
    ref = [next(a)[0] for _ in range(11)]  # crosses an epoch boundary (8 batches per epoch)
    b = ResumableBatches(ds, batch_size=8, seed=3)
    first = [next(b)[0] for _ in range(5)]
    c = ResumableBatches(ds, batch_size=8, seed=99)
    c.load_state_dict(b.state_dict())
    rest = [next(c)[0] for _ in range(6)]
    for x, y in zip(ref, first + rest):
        assert torch.equal(x, y)


def test_sharded_batches_partition_each_epoch():
    ds = TensorDataset(torch.arange(40))
    shards = [ResumableBatches(ds, batch_size=4, seed=1, shard=(r, 2)) for r in range(2)]
    seen = [next(s)[0] for _ in range(5) for s in shards]
    assert sorted(torch.cat(seen).tolist()) == list(range(40))


def _standalone(run_dir):
    torch.manual_seed(0)
    model = freeze(ToySupernet(), SearchSpace.from_module(ToySupernet()).sample(0))
    from oneshot.train import StandaloneTrainer

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = ResumableBatches(Flip(_dataset()), batch_size=8, seed=0)
    return StandaloneTrainer(model, batches=batches, loss_fn=_loss, optimizer=opt, run_dir=run_dir, checkpoint_every=1, progress=False)


def test_standalone_trainer_learns_and_resumes_exactly(tmp_path):
    from oneshot.train import StandaloneTrainer

    reference = _standalone(tmp_path / "ref").fit(8)
    assert reference.steps == 8 and len(reference.losses) == 8 and reference.resumed_from is None
    assert sum(reference.losses[-3:]) < sum(reference.losses[:3])
    _standalone(tmp_path / "run").fit(3)
    resumed = _standalone(tmp_path / "run")
    result = resumed.fit(8)
    assert result.resumed_from == 3 and result.losses == reference.losses[3:] and result.history == reference.history
    with pytest.raises(TypeError, match="no sampler"):
        StandaloneTrainer(resumed.model, sampler=None, batches=iter([]), loss_fn=_loss, optimizer=resumed.optimizer)
